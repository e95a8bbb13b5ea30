#include <corio/stream.hpp>

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <utility>

namespace corio {
namespace {

constexpr std::size_t kChunk = 64 * 1024;  // most a line reader asks fill() for at once

// Called after consuming: an idle connection keeps no buffer.
void consumed(ReadBuffer& in, std::size_t n) {
  in.consume(n);
  if (in.empty()) in.shrink();
}

// At most len bytes into buf: what a line reader left buffered first, else one read straight
// into buf (no allocation, no copy). An error is in ec with Status::done.
IoOp::Status read_into(Socket& so, char* buf, std::size_t len, std::size_t& got, std::error_code& ec) {
  ReadBuffer& in = so.input();
  if (!in.empty() || len == 0) {
    got = std::min(len, in.size());
    if (got > 0) std::memcpy(buf, in.view().data(), got);
    consumed(in, got);
    return IoOp::Status::done;
  }
  return so.read(buf, len, got, ec);
}

}  // namespace

// ---- Stream ----

Stream::Stream(Loop& loop) : loop_(&loop), socket_(new Socket(loop, -1)) {}

Stream::Stream(Loop& loop, int fd) : loop_(&loop), socket_(new Socket(loop, fd)) {}

Stream::~Stream() {
  if (socket_) socket_->destroy();
}

Stream::Stream(Stream&& o) noexcept : loop_(o.loop_), socket_(std::exchange(o.socket_, nullptr)) {}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    if (socket_) socket_->destroy();
    loop_ = o.loop_;
    socket_ = std::exchange(o.socket_, nullptr);
  }
  return *this;
}

Loop& Stream::loop() const noexcept { return loop_ ? *loop_ : Loop::current(); }

Stream::Connect Stream::connect(std::string host, std::uint16_t port, std::optional<Duration> timeout,
                                Resolver* resolver) {
  return Connect(socket_, std::move(host), port, timeout, resolver);
}

Stream::Connect Stream::connect(const Address& to, std::optional<Duration> timeout) {
  return Connect(socket_, to, timeout);
}

Stream::ReadChunk Stream::read_chunk(std::size_t max, std::optional<Duration> timeout) {
  return ReadChunk(socket_, max, timeout);
}

Stream::ReadSome Stream::read_some(char* buf, std::size_t n, std::optional<Duration> timeout) {
  return ReadSome(socket_, buf, n, timeout);
}

Stream::ReadString Stream::read_exactly(std::size_t n, std::optional<Duration> timeout) {
  return ReadString(socket_, n, timeout);
}

Stream::ReadString Stream::read_line(std::optional<Duration> timeout) {
  return ReadString(socket_, std::string::npos, timeout);
}

Stream::WriteAll Stream::write_all(std::string_view data, std::optional<Duration> timeout) {
  return WriteAll(socket_, data, timeout);
}

void Stream::close() noexcept {
  if (socket_) socket_->close();
}

Address Stream::local_address() const {
  Address a;
  if (fd() < 0 || ::getsockname(fd(), a.data(), a.size_ptr()) != 0) return {};
  return a;
}

Address Stream::peer_address() const {
  Address a;
  if (fd() < 0 || ::getpeername(fd(), a.data(), a.size_ptr()) != 0) return {};
  return a;
}

std::error_code Stream::set_nodelay(bool on) {
  int v = on ? 1 : 0;
  if (fd() < 0) return Error::closed;
  if (::setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) return {errno, std::generic_category()};
  return {};
}

// ---- connect ----

// While the name is resolved the op is queued on the (descriptor-less) socket, so close()
// and the timeout end it as they end any other wait. Each attempt gets a fresh descriptor:
// a socket whose connect failed cannot portably be reused.

Stream::Connect::Connect(Socket* so, std::string host, std::uint16_t port,
                         std::optional<Duration> timeout, Resolver* resolver)
    : AwaitableOp(so, Direction::write, timeout), host_(std::move(host)), port_(port), resolver_(resolver) {}

Stream::Connect::Connect(Socket* so, const Address& to, std::optional<Duration> timeout)
    : AwaitableOp(so, Direction::write, timeout), addrs_{to} {}

Stream::Connect::~Connect() {
  if (lookup_) resolver_->cancel(lookup_);
}

bool Stream::Connect::await_ready() {
  if (!socket_) {
    error = Error::closed;
    return true;
  }
  if (timeout_) deadline_ = Loop::now() + *timeout_;
  if (addrs_.empty()) {
    std::optional<Address> a;
    if (!host_.empty() && host_ != "*") a = Address::from_ip(host_, port_);  // not a wildcard
    if (a) {
      addrs_.push_back(*a);
    } else {
      return lookup();
    }
  }
  return attempt();
}

bool Stream::Connect::lookup() {
  if (!resolver_) resolver_ = &Resolver::current();
  socket_->close();  // no descriptor while waiting: nothing can report it ready
  resolving_ = true;
  socket_->submit(*this, Direction::write, timeout_);  // step() says wait
  // The callback never runs inside resolve(): the frame is suspended by then.
  lookup_ = resolver_->resolve(host_, port_, AF_UNSPEC, [this](std::error_code ec, std::vector<Address> addrs) {
    lookup_ = 0;
    resolved(ec, std::move(addrs));
  });
  return false;
}

void Stream::Connect::resolved(std::error_code ec, std::vector<Address> addrs) {
  resolving_ = false;
  if (!queued()) return;  // the stream was destroyed meanwhile: nobody waits any more
  socket_->cancel(*this);
  if (ec) {
    error = ec;
  } else {
    addrs_ = std::move(addrs);
    if (!attempt()) return;
  }
  handle_.resume();
}

// Starts the next attempt; true if the connect finished at once (see error).
bool Stream::Connect::attempt() {
  while (next_ < addrs_.size()) {
    const Address& a = addrs_[next_++];
    error = {};
    started_ = false;
    std::optional<Duration> left;  // of the whole connect's timeout
    if (deadline_) {
      left = *deadline_ - Loop::now();
      if (*left <= Duration::zero()) {
        error = Error::timeout;
        return true;
      }
    }
    int fd = Socket::open(a.family(), SOCK_STREAM);
    if (fd < 0) {
      error = {-fd, std::generic_category()};
      continue;
    }
    socket_->close();  // the previous attempt's descriptor (opened first: a new number)
    socket_->adopt(fd);
    if (!socket_->submit(*this, Direction::write, left)) return false;
    if (!error) return true;
  }
  if (!error) error = std::make_error_code(std::errc::address_family_not_supported);
  return true;
}

void Stream::Connect::fail(int err) {
  error = err == ECONNREFUSED ? std::error_code(Error::refused) : std::error_code(err, std::generic_category());
}

IoOp::Status Stream::Connect::step(Socket& so) {
  if (resolving_) return Status::wait;
  if (!started_) {
    started_ = true;
    const Address& a = addrs_[next_ - 1];
    if (::connect(so.fd(), a.data(), a.size()) == 0) return Status::done;
    if (errno == EINPROGRESS || errno == EINTR) return Status::wait;
    fail(errno);
    return Status::done;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(so.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err) {
    fail(err);
    return Status::done;
  }
  Address peer;
  if (::getpeername(so.fd(), peer.data(), peer.size_ptr()) != 0 && errno == ENOTCONN)
    return Status::wait;  // still in progress
  return Status::done;
}

void Stream::Connect::finish() {
  if (resolving_) {  // timed out or closed while resolving
    resolving_ = false;
    if (lookup_) resolver_->cancel(std::exchange(lookup_, 0));
    handle_.resume();
    return;
  }
  // A refused or unreachable address: go on with the next one.
  bool retry = error && error != Error::timeout && error != Error::closed && next_ < addrs_.size();
  if (retry && !attempt()) return;
  handle_.resume();
}

// ---- reads and writes ----

IoOp::Status Stream::ReadSome::step(Socket& so) {
  std::error_code ec;
  Status st = read_into(so, buf_, len_, got_, ec);
  if (st == Status::done && ec) error = ec;
  return st;
}

IoOp::Status Stream::ReadChunk::step(Socket& so) {
  std::size_t max = std::min(max_, ChunkPool::kBufferSize);
  if (max == 0) return Status::done;
  if (so.read_would_wait()) return Status::wait;  // before taking a buffer for nothing
  // Taken for this attempt only: a wait gives it back, so a waiting reader holds nothing.
  Chunk c = ChunkPool::of(so.loop()).take();
  std::size_t got = 0;
  std::error_code ec;
  Status st = read_into(so, c.data(), max, got, ec);
  if (st != Status::done) return st;
  if (ec) {
    error = ec;
  } else {
    c.resize(got);
    chunk_ = std::move(c);
  }
  return st;
}

IoOp::Status Stream::ReadString::step(Socket& so) {
  for (;;) {
    ReadBuffer& in = so.input();
    std::string_view v = in.view();
    std::size_t want;
    if (count_ == std::string::npos) {
      std::size_t nl = v.find('\n', scanned_);
      if (nl != std::string_view::npos) {
        if (nl > so.limit) {
          error = Error::line_too_long;
          return Status::done;
        }
        std::size_t len = nl > 0 && v[nl - 1] == '\r' ? nl - 1 : nl;
        out_.assign(v.data(), len);
        consumed(in, nl + 1);
        return Status::done;
      }
      scanned_ = v.size();
      if (v.size() > so.limit) {  // refuse rather than grow without bound
        error = Error::line_too_long;
        return Status::done;
      }
      want = std::min(so.limit + 1 - v.size(), kChunk);  // just enough to tell
    } else {
      if (v.size() >= count_) {
        out_.assign(v.data(), count_);
        consumed(in, count_);
        return Status::done;
      }
      want = count_ - v.size();
    }
    std::error_code ec;
    Status st = so.fill(want, ec);
    if (st != Status::done) return st;
    if (ec) {
      error = ec;
      return Status::done;
    }
  }
}

IoOp::Status Stream::WriteAll::step(Socket& so) {
  while (sent_ < data_.size()) {
    std::size_t n = 0;
    std::error_code ec;
    Status st = so.write(data_.data() + sent_, data_.size() - sent_, n, ec);
    if (st != Status::done) return st;
    if (ec) {
      error = ec;
      return Status::done;
    }
    sent_ += n;
  }
  return Status::done;
}

}  // namespace corio
