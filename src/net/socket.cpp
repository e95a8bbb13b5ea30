#include <corio/socket.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corio {
namespace {

constexpr unsigned bit(Direction d) { return d == Direction::read ? kReadable : kWritable; }
constexpr int idx(Direction d) { return static_cast<int>(d); }

std::atomic<std::size_t> g_default_limit{std::size_t{1} << 20};

// A forsaken loop has its Sockets (use_forsake) let go of their descriptors.
[[maybe_unused]] const bool g_forsake_registered =
    (ListedHandle::on_forsake(HandleKind::socket, [](ListedHandle& h) noexcept { static_cast<Socket&>(h).forsake(); }),
     true);

}  // namespace

IoOp::~IoOp() {
  if (sock_) sock_->cancel(*this);
}

int Socket::open(int family, int type) noexcept {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

std::size_t Socket::default_limit() noexcept { return g_default_limit.load(std::memory_order_relaxed); }
void Socket::set_default_limit(std::size_t bytes) noexcept { g_default_limit.store(bytes, std::memory_order_relaxed); }

Socket::Socket(Loop& loop, int fd) : ListedHandle(loop.handles(), HandleKind::socket) {
  unref();
  use_forsake();
  if (fd >= 0) adopt(fd);
}

Socket::~Socket() {
  unlink_all();
  release_fd();
}

void Socket::unlink_all() noexcept {
  for (Direction d : {Direction::read, Direction::write})
    while (IoOp* op = head_[idx(d)]) unlink(*op);
}

// Lets go of the descriptor: the poller first (while it is still open), then close it
// unless it is borrowed (or detached).
void Socket::release_fd(bool close_it) noexcept {
  watch_.reset();
  interest_ = 0;
  if (fd_ >= 0 && transport_ && close_it) transport_->closing(fd_);
  if (fd_ >= 0 && !owner_ && close_it) ::close(fd_);
  fd_ = -1;
  stop_handle();
}

void Socket::adopt(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  release_fd();
  fd_ = fd;
  start_handle();
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  family_ = ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 ? ss.ss_family : AF_UNSPEC;
  drained_ = false;
  watch_.emplace(loop(), fd, [this](unsigned ev) { on_ready(ev); });
  // The interest outlives the op that wanted it (see on_ready); what keeps the loop running
  // is a queued op (submit/unlink), not an idle socket's lingering interest.
  watch_->unref();
}

std::error_code Socket::renew(int family, int type) {
  int old = fd_;
  release_fd();
  if (old >= 0 && owner_) ::close(old);
  int fd = open(family, type);
  if (fd < 0) {
    if (owner_) owner_->replaced(-1);
    return {-fd, std::generic_category()};
  }
  if (family == AF_INET6) {
    int on = 1;  // as LuaSocket: an inet6 socket is IPv6 only
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  }
  if (owner_) owner_->replaced(fd);
  adopt(fd);
  if (setup_) {
    for (const auto& o : setup_->options)  // one that does not fit the new family is skipped
      ::setsockopt(fd, o.level, o.name, o.value.data(), static_cast<socklen_t>(o.value.size()));
    if (setup_->bound && setup_->bound->family() == family &&
        ::bind(fd, setup_->bound->data(), setup_->bound->size()) != 0)
      return {errno, std::generic_category()};
  }
  return {};
}

Socket::Setup& Socket::setup() {
  if (!setup_) setup_ = std::make_unique<Setup>();
  return *setup_;
}

void Socket::set_limit(std::size_t bytes, bool all) {
  setup().limit = bytes;
  limit_all_ = all;
}

std::error_code Socket::set_option(int level, int name, const void* value, socklen_t len) {
  if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);  // as setsockopt says
  if (::setsockopt(fd_, level, name, value, len) != 0) return {errno, std::generic_category()};
  // Only a socket that may still connect renews its descriptor: a connected one (accepted,
  // say: most sockets) keeps nothing, so it costs no memory.
  Address peer;
  if (::getpeername(fd_, peer.data(), peer.size_ptr()) == 0) return {};
  const char* p = static_cast<const char*>(value);
  for (auto& o : setup().options)
    if (o.level == level && o.name == name) {
      o.value.assign(p, p + len);
      return {};
    }
  setup_->options.push_back({level, name, std::vector<char>(p, p + len)});
  return {};
}

std::error_code Socket::bind(const Address& a) {
  if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
  if (::bind(fd_, a.data(), a.size()) != 0) return {errno, std::generic_category()};
  setup().bound = a;
  return {};
}

bool Socket::submit(IoOp& op, Direction d, std::optional<Duration> timeout) {
  const bool first = !head_[idx(d)];
  // A call that must not wait tries for real: the drained hint may predate the bytes.
  if (timeout && *timeout <= Duration::zero()) drained_ = false;
  IoOp::Status st = IoOp::Status::wait;
  if (first && (st = op.step(*this)) == IoOp::Status::done) return true;
  if (!head_[0] && !head_[1]) loop().hold();  // released when the last op leaves (unlink)
  op.sock_ = this;
  op.dir_ = d;
  op.next_ = nullptr;
  if (tail_[idx(d)])
    tail_[idx(d)]->next_ = &op;
  else
    head_[idx(d)] = &op;
  tail_[idx(d)] = &op;
  if (timeout) rearm(op, timeout);  // unlink stopped any earlier one
  if (first) park(d, op, st);  // the step just failed: wait before trying again
  return false;
}

void Socket::rearm(IoOp& op, std::optional<Duration> timeout) {
  if (!timeout) {
    if (op.timer_) op.timer_->stop();
    return;
  }
  if (!op.timer_ || &op.timer_->loop() != &loop()) op.timer_ = std::make_unique<Timer>(loop());
  op.timer_->start(*timeout, [&op] { op.sock_->time_out(op); });  // small enough not to allocate
}

void Socket::time_out(IoOp& op) {
  if (op.timed_out(*this)) return;
  Direction d = op.dir_;
  bool was_head = head_[idx(d)] == &op;
  if (complete(op, Error::timeout) && was_head) run(d);  // op may be gone
}

void Socket::wake(IoOp& op) {
  if (op.sock_ == this && head_[idx(op.dir_)] == &op) run(op.dir_, true);
}

Socket::Pacing& Socket::pacing() {
  if (!pacing_) pacing_ = std::make_unique<Pacing>(loop());
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
  if (!head_[0] && !head_[1]) loop().release();
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
    if (st != IoOp::Status::done) return park(d, *op, st);
    if (!complete(*op, {})) return;
  }
}

// The head op cannot go on: wait for readiness, for its time (throttled, backing off), or
// for its wake(), with the interest off meanwhile so a level-triggered poller does not spin.
void Socket::park(Direction d, IoOp& op, IoOp::Status st) {
  op.parked_ = true;
  if (st == IoOp::Status::wait) {
    want(d, true);
    return;
  }
  want(d, false);
  if (st == IoOp::Status::pending) return;
  // An op backing off on its own (accept under EMFILE) says when; else the rate limit does.
  // Throttled without a rate limit: a transport wants the other direction (TLS reading
  // wants to write, rarely): look again in a millisecond rather than at once.
  TimePoint at = op.resume_at != TimePoint{} ? op.resume_at
                 : limited(d)                 ? throttle(d).ready_at(kReadChunk)
                                              : Loop::now() + std::chrono::milliseconds(1);
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

// What was received stays readable after a local close, as in LuaSocket: a waiting reader
// gets it as its partial result, a later one finds it buffered.
void Socket::end(bool close_fd) noexcept {
  if (fd_ < 0 && !head_[0] && !head_[1]) return;
  release_fd(close_fd);
  for (Direction d : {Direction::read, Direction::write}) {
    if (pacing_) pacing_->timer[idx(d)].stop();
    while (IoOp* op = head_[idx(d)])
      if (!complete(*op, Error::closed)) return;
  }
}

void Socket::close() noexcept { end(true); }
void Socket::detach() noexcept { end(false); }

void Socket::destroy() noexcept {
  if (depth_ == 0) return delete this;
  unlink_all();
  doomed_ = true;
  release_fd();
}

void Socket::consume(std::size_t n) {
  input_.consume(n);
  bytes_in += n;
  if (input_.empty()) input_.shrink();  // an idle connection keeps no buffer
}

// Bytes read into input() are counted (bytes_in) when consumed, as LuaSocket counts them.
IoOp::Status Socket::fill(std::size_t want_bytes, std::error_code& ec) {
  if (fd_ >= 0 && drained_ && !transport_) return IoOp::Status::wait;  // before growing the buffer for nothing
  std::size_t n = want_bytes < kReadChunk ? want_bytes : kReadChunk;
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
  if (transport_) [[unlikely]]
    return transported(buf, n, got, ec);
  if (drained_) return IoOp::Status::wait;
  ssize_t r;
  do r = ::read(fd_, buf, n);
  while (r < 0 && errno == EINTR);
  if (r > 0) {
    got = static_cast<std::size_t>(r);
    drained_ = got < n;
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

// Through the transport, which knows what it has buffered beside the drained hint.
IoOp::Status Socket::transported(char* buf, std::size_t n, std::size_t& got, std::error_code& ec) {
  IoOp::Status st = transport_->read(fd_, buf, n, got, ec, drained_);
  if (got > 0 && pacing_) pacing_->throttle[idx(Direction::read)].spend(got);
  return st;
}

IoOp::Status Socket::write(const char* data, std::size_t len, std::size_t& written, std::error_code& ec) {
  written = 0;
  if (fd_ < 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  std::size_t n = limited(Direction::write) ? throttle(Direction::write).allow(len, Loop::now()) : len;
  if (n == 0 && len > 0) return IoOp::Status::throttled;
  IoOp::Status st = IoOp::Status::done;
  if (!transport_) [[likely]] {
    ssize_t r;
    do r = ::send(fd_, data, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoOp::Status::wait;
      ec = (errno == EPIPE || errno == ECONNRESET) ? std::error_code(Error::closed)
                                                   : std::error_code(errno, std::generic_category());
      return st;
    }
    written = static_cast<std::size_t>(r);
  } else {
    st = transport_->write(fd_, data, n, written, ec);
  }
  bytes_out += written;
  if (pacing_) pacing_->throttle[idx(Direction::write)].spend(written);
  return st;
}

IoOp::Status Socket::take_buffered(char* buf, std::size_t len, std::size_t& got) {
  got = std::min(len, input_.size());
  if (got > 0) std::memcpy(buf, input_.view().data(), got);
  consume(got);
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
