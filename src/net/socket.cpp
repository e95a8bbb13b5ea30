#include <corio/socket.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corio {
namespace {

constexpr unsigned bit(Direction d) { return d == Direction::read ? kReadable : kWritable; }
constexpr int idx(Direction d) { return static_cast<int>(d); }
constexpr std::size_t kChunk = 64 * 1024;  // most bytes one read() asks for

}  // namespace

IoOp::~IoOp() {
  if (sock_) sock_->cancel(*this);
}

int Socket::open(int family, int type) noexcept {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

Socket::Socket(Loop& loop, int fd) : loop_(&loop), fd_(-1) {
  if (fd >= 0) adopt(fd);
}

Socket::~Socket() {
  for (Direction d : {Direction::read, Direction::write})
    while (IoOp* op = head_[idx(d)]) unlink(*op);
  watch_.reset();
  if (fd_ >= 0 && owns_) ::close(fd_);
}

void Socket::adopt(int fd, bool own) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  fd_ = fd;
  owns_ = own;
  interest_ = 0;
  drained_ = false;
  watch_.emplace(*loop_, fd, [this](unsigned ev) { on_ready(ev); });
  // The interest outlives the op that wanted it (see on_ready); what keeps the loop running
  // is a queued op (submit/unlink), not an idle socket's lingering interest.
  watch_->unref();
}

bool Socket::submit(IoOp& op, Direction d, std::optional<Duration> timeout) {
  const bool first = !head_[idx(d)];
  IoOp::Status st = IoOp::Status::wait;
  if (first && (st = op.step(*this)) == IoOp::Status::done) return true;
  if (!head_[0] && !head_[1]) loop_->hold();  // released when the last op leaves (unlink)
  op.sock_ = this;
  op.dir_ = d;
  op.next_ = nullptr;
  if (tail_[idx(d)])
    tail_[idx(d)]->next_ = &op;
  else
    head_[idx(d)] = &op;
  tail_[idx(d)] = &op;
  if (timeout) {
    if (!op.timer_ || &op.timer_->loop() != loop_) op.timer_ = std::make_unique<Timer>(*loop_);
    op.timer_->start(*timeout, [&op] { op.sock_->time_out(op); });  // small enough not to allocate
  }
  if (first) park(d, op, st);  // the step just failed: wait before trying again
  return false;
}

void Socket::time_out(IoOp& op) {
  Direction d = op.dir_;
  bool was_head = head_[idx(d)] == &op;
  if (complete(op, Error::timeout) && was_head) run(d);  // op may be gone
}

Socket::Pacing& Socket::pacing() {
  if (!pacing_) pacing_ = std::make_unique<Pacing>(*loop_);
  return *pacing_;
}

void Socket::unlink(IoOp& op) noexcept {
  int i = idx(op.dir_);
  IoOp* prev = nullptr;
  for (IoOp* p = head_[i]; p; prev = p, p = p->next_) {
    if (p != &op) continue;
    (prev ? prev->next_ : head_[i]) = op.next_;
    if (tail_[i] == &op) tail_[i] = prev;
    break;
  }
  if (op.timer_) op.timer_->stop();
  if (!head_[0] && !head_[1]) loop_->release();
  op.sock_ = nullptr;
  op.next_ = nullptr;
  op.parked_ = false;
}

void Socket::cancel(IoOp& op) noexcept {
  if (op.sock_ != this) return;
  Direction d = op.dir_;
  bool was_head = head_[idx(d)] == &op;
  unlink(op);
  if (!was_head || !head_[idx(d)]) return;
  // The next one runs soon, from the loop (not inside the caller, often a destructor):
  // waiting for readiness instead would strand a reader whose bytes are already buffered.
  pacing().timer[idx(d)].start(Duration::zero(), [this, d] { run(d); });  // unless it has parked by then
}

// Finishes a queued op. Returns false if that deleted this socket (destroy() from the
// finishing code), so the caller must not touch it.
bool Socket::complete(IoOp& op, std::error_code ec) {
  unlink(op);
  if (ec) op.error = ec;
  ++depth_;
  op.finish();
  --depth_;
  if (!doomed_) return true;
  if (depth_ == 0) delete this;
  return false;
}

// Steps the head of d's queue for as long as operations finish without waiting. `ready`:
// the descriptor (or the throttle) allows the parked head to try again. Without it, a head
// parked meanwhile (submitted from a finish() and told to wait) is left to its wake-up: a
// step is only repeated once ready, so e.g. a connect is not mistaken for done.
void Socket::run(Direction d, bool ready) {
  if (ready && head_[idx(d)]) head_[idx(d)]->parked_ = false;
  while (IoOp* op = head_[idx(d)]) {
    if (op->parked_) return;
    IoOp::Status st = op->step(*this);
    switch (st) {
      case IoOp::Status::done:
        if (!complete(*op, {})) return;
        break;
      default:
        park(d, *op, st);
        return;
    }
  }
}

// The head op cannot go on: wait for readiness, or (throttled, backing off) for its time,
// with the interest off meanwhile so a level-triggered poller does not spin.
void Socket::park(Direction d, IoOp& op, IoOp::Status st) {
  op.parked_ = true;
  if (st == IoOp::Status::wait) {
    want(d, true);
    return;
  }
  want(d, false);
  // An op backing off on its own (accept under EMFILE) says when; else the rate limit does.
  TimePoint at = op.resume_at != TimePoint{} ? op.resume_at : throttle(d).ready_at(kChunk);
  op.resume_at = TimePoint{};
  pacing().timer[idx(d)].start_at(at, [this, d] { run(d, true); });
}

void Socket::want(Direction d, bool on) {
  unsigned interest = on ? interest_ | bit(d) : interest_ & ~bit(d);
  if (interest == interest_ || !watch_) return;
  interest_ = interest;
  if (watch_->start(interest)) interest_ = 0;  // closed behind our back: ops time out or close
}

void Socket::on_ready(unsigned events) {
  // Readiness with no one waiting switches that interest off only now: a reader that
  // comes back before data arrives costs no epoll_ctl.
  ++depth_;
  for (Direction d : {Direction::read, Direction::write}) {
    if (!(events & bit(d)) || doomed_) continue;
    if (d == Direction::read) drained_ = false;
    if (head_[idx(d)])
      run(d, true);
    else
      want(d, false);
  }
  --depth_;
  if (doomed_ && depth_ == 0) delete this;
}

void Socket::close() noexcept {
  if (fd_ < 0 && !head_[0] && !head_[1]) return;
  watch_.reset();
  interest_ = 0;
  if (fd_ >= 0 && owns_) ::close(fd_);
  fd_ = -1;
  // Waiters finish first: a reader gets what was buffered for it as its partial result.
  for (Direction d : {Direction::read, Direction::write}) {
    if (pacing_) pacing_->timer[idx(d)].stop();
    while (IoOp* op = head_[idx(d)])
      if (!complete(*op, Error::closed)) return;
  }
  input_.clear();
  input_.shrink();
}

void Socket::destroy() noexcept {
  for (Direction d : {Direction::read, Direction::write})
    while (IoOp* op = head_[idx(d)]) unlink(*op);
  if (depth_ > 0) {
    doomed_ = true;
    watch_.reset();
    if (fd_ >= 0 && owns_) ::close(fd_);
    fd_ = -1;
    return;
  }
  delete this;
}

IoOp::Status Socket::fill(std::size_t want_bytes, std::error_code& ec) {
  if (fd_ >= 0 && drained_) return IoOp::Status::wait;  // before growing the buffer for nothing
  std::size_t n = want_bytes < kChunk ? want_bytes : kChunk;
  char* p = input_.prepare(n);
  // Unthrottled, take all the room there is: fewer reads for a big transfer.
  std::size_t got = 0;
  IoOp::Status st = read(p, limited(Direction::read) ? n : input_.room(), got, ec);
  input_.commit(got);
  return st;
}

IoOp::Status Socket::read(char* buf, std::size_t len, std::size_t& got, std::error_code& ec) {
  got = 0;
  if (fd_ < 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  std::size_t n = limited(Direction::read) ? throttle(Direction::read).allow(len, Loop::now()) : len;
  if (n == 0 && len > 0) return IoOp::Status::throttled;
  if (drained_) return IoOp::Status::wait;
  ssize_t r;
  do r = ::read(fd_, buf, n);
  while (r < 0 && errno == EINTR);
  if (r > 0) {
    got = static_cast<std::size_t>(r);
    drained_ = got < n;
    bytes_in += got;
    if (pacing_) pacing_->throttle[idx(Direction::read)].spend(got);
    return IoOp::Status::done;
  }
  if (r == 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    drained_ = true;
    return IoOp::Status::wait;
  }
  ec = (errno == ECONNRESET || errno == ECONNABORTED) ? std::error_code(Error::closed)
                                                      : std::error_code(errno, std::generic_category());
  return IoOp::Status::done;
}

IoOp::Status Socket::write(const char* data, std::size_t len, std::size_t& written, std::error_code& ec) {
  written = 0;
  if (fd_ < 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  std::size_t n = limited(Direction::write) ? throttle(Direction::write).allow(len, Loop::now()) : len;
  if (n == 0 && len > 0) return IoOp::Status::throttled;
  ssize_t r;
  do r = ::send(fd_, data, n, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r >= 0) {
    written = static_cast<std::size_t>(r);
    bytes_out += written;
    if (pacing_) pacing_->throttle[idx(Direction::write)].spend(written);
    return IoOp::Status::done;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return IoOp::Status::wait;
  ec = (errno == EPIPE || errno == ECONNRESET) ? std::error_code(Error::closed)
                                               : std::error_code(errno, std::generic_category());
  return IoOp::Status::done;
}

IoOp::Status Socket::send_datagram(const char* data, std::size_t len, const Address* to, std::size_t& sent,
                                   std::error_code& ec) {
  sent = 0;
  if (fd_ < 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  ssize_t n;
  do n = to ? ::sendto(fd_, data, len, MSG_NOSIGNAL, to->data(), to->size()) : ::send(fd_, data, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    sent = static_cast<std::size_t>(n);
    bytes_out += sent;
    return IoOp::Status::done;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return IoOp::Status::wait;
  ec = {errno, std::generic_category()};
  return IoOp::Status::done;
}

IoOp::Status Socket::receive_datagram(char* buf, std::size_t len, Address* from, std::size_t& got,
                                      std::error_code& ec) {
  got = 0;
  if (fd_ < 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  ssize_t n;
  do n = from ? ::recvfrom(fd_, buf, len, 0, from->data(), from->size_ptr()) : ::recv(fd_, buf, len, 0);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    got = static_cast<std::size_t>(n);
    bytes_in += got;
    return IoOp::Status::done;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return IoOp::Status::wait;
  ec = {errno, std::generic_category()};
  return IoOp::Status::done;
}

}  // namespace corio
