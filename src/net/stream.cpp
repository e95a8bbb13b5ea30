#include <corio/stream.hpp>

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <utility>

namespace corio {

// ---- Stream ----

Stream::Stream(Loop& loop) : loop_(&loop), socket_(new Socket(loop, -1)) {}

Stream::Stream(Loop& loop, int fd) : loop_(&loop), socket_(new Socket(loop, fd)) {}

Stream::~Stream() {
  if (socket_) socket_->destroy();
}

Stream::Stream(Stream&& o) noexcept
    : loop_(o.loop_), chunks_(o.chunks_), socket_(std::exchange(o.socket_, nullptr)) {}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    if (socket_) socket_->destroy();
    loop_ = o.loop_;
    chunks_ = o.chunks_;
    socket_ = std::exchange(o.socket_, nullptr);
  }
  return *this;
}

Loop& Stream::loop() const noexcept { return loop_ ? *loop_ : Loop::current(); }

Stream::Connect Stream::connect(std::string host, std::uint16_t port, std::optional<Duration> timeout,
                                Resolver* resolver) {
  ConnectOp::Target t;
  t.host = std::move(host);
  t.port = port;
  if (socket_ && socket_->fd() >= 0) t.family = socket_->family();  // a descriptor given is kept
  return Connect(socket_, std::move(t), timeout, resolver);
}

Stream::Connect Stream::connect(const Address& to, std::optional<Duration> timeout) {
  ConnectOp::Target t;
  t.address = to;
  return Connect(socket_, std::move(t), timeout, nullptr);
}

std::error_code Stream::start_tls(std::shared_ptr<TlsContext> ctx, std::string_view host) {
  if (!socket_) return Error::closed;
  return corio::start_tls(*socket_, std::move(ctx), host);
}

Stream::Handshake Stream::handshake(std::optional<Duration> timeout) { return Handshake(socket_, timeout); }

TlsInfo Stream::tls_info() const {
  auto* t = socket_ ? dynamic_cast<TlsSession*>(socket_->transport()) : nullptr;
  return t && t->established() ? t->info() : TlsInfo{};
}

Stream::ReadChunk Stream::read_chunk(std::size_t max, std::optional<Duration> timeout) {
  if (!chunks_ && loop_) chunks_ = &ChunkPool::of(*loop_);
  return ReadChunk(socket_, chunks_, max, timeout);
}

Stream::ReadSome Stream::read_some(char* buf, std::size_t n, std::optional<Duration> timeout) {
  return ReadSome(socket_, buf, n, timeout);
}

Stream::ReadString Stream::read_exactly(std::size_t n, std::optional<Duration> timeout) {
  return ReadString(socket_, ReadRule{ReadRule::Kind::exactly, n}, timeout);
}

Stream::ReadString Stream::read_line(std::optional<Duration> timeout) {
  return ReadString(socket_, ReadRule{ReadRule::Kind::line}, timeout);
}

Stream::ReadString Stream::read_all(std::optional<Duration> timeout) {
  return ReadString(socket_, ReadRule{ReadRule::Kind::all}, timeout);
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
  if (!socket_) return Error::closed;
  return socket_->set_option(IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
}

// ---- connect ----

bool Stream::Connect::await_ready() {
  if (!socket_) {
    error = Error::closed;
    return true;
  }
  std::optional<TimePoint> deadline;
  if (timeout_) deadline = Loop::now() + *timeout_;
  return start(*socket_, std::move(target_), ConnectOp::Action::connect, timeout_, deadline, resolver_);
}

// ---- reads and writes ----

IoOp::Status Stream::ReadSome::step(Socket& so) {
  std::error_code ec;
  Status st = so.read_some(buf_, len_, got_, ec);
  if (st == Status::done && ec) error = ec;
  return st;
}

IoOp::Status Stream::ReadChunk::step(Socket& so) {
  std::size_t max = std::min(max_, ChunkPool::kBufferSize);
  if (max == 0) return Status::done;
  if (so.read_would_wait()) return Status::wait;  // before taking a buffer for nothing
  // Taken for this attempt only: a wait gives it back, so a waiting reader holds nothing.
  Chunk c = pool_->take();
  std::size_t got = 0;
  std::error_code ec;
  Status st = so.read_some(c.data(), max, got, ec);
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
  std::error_code ec;
  Status st = rule_.step(so, ec);
  if (st != Status::done) return st;
  std::string_view v = so.input().view();
  if (rule_.kind == ReadRule::Kind::all && ec == Error::closed && !so.closed() && rule_.take > 0) ec = {};
  if (ec) {  // nothing is consumed: the bytes stay for the next read
    error = ec;
    return st;
  }
  std::size_t len = rule_.take;
  if (rule_.kind == ReadRule::Kind::line && len > 0 && v[len - 1] == '\r') --len;
  out_.assign(v.data(), len);
  so.consume(rule_.skip);
  return st;
}

IoOp::Status Stream::WriteAll::step(Socket& so) {
  std::error_code ec;
  Status st = so.write_all(data_.data(), data_.size(), sent_, ec);
  if (st == Status::done && ec) error = ec;
  return st;
}

}  // namespace corio
