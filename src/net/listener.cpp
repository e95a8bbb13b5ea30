#include <corio/listener.hpp>

#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace corio {

Listener::Listener(Loop& loop, int fd) : loop_(&loop), socket_(new Socket(loop, fd)) {}

Listener::~Listener() {
  if (socket_) socket_->destroy();
}

Listener::Listener(Listener&& o) noexcept : loop_(o.loop_), socket_(std::exchange(o.socket_, nullptr)) {}

Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    if (socket_) socket_->destroy();
    loop_ = o.loop_;
    socket_ = std::exchange(o.socket_, nullptr);
  }
  return *this;
}

Result<Listener> Listener::bind(Loop& loop, std::string_view host, std::uint16_t port, int backlog) {
  auto a = Address::from_ip(host, port);
  if (!a) return {std::make_error_code(std::errc::invalid_argument), {}};
  return bind(loop, *a, backlog);
}

Result<Listener> Listener::bind(Loop& loop, const Address& address, int backlog) {
  int fd = Socket::open(address.family(), SOCK_STREAM);
  if (fd < 0) return {{-fd, std::generic_category()}, {}};
  int on = 1;
  if (address.family() != AF_UNIX) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  // The kernel caps the backlog at its maximum (somaxconn): INT_MAX asks for that.
  if (::bind(fd, address.data(), address.size()) != 0 || ::listen(fd, backlog) != 0) {
    std::error_code ec(errno, std::generic_category());
    ::close(fd);
    return {ec, {}};
  }
  return {{}, Listener(loop, fd)};
}

Listener::Accept Listener::accept(std::optional<Duration> timeout) { return Accept(loop(), socket_, timeout); }

Address Listener::address() const {
  Address a;
  if (fd() < 0 || ::getsockname(fd(), a.data(), a.size_ptr()) != 0) return {};
  return a;
}

void Listener::close() noexcept {
  if (socket_) socket_->close();
}

Loop& Listener::loop() const noexcept { return loop_ ? *loop_ : Loop::current(); }

Listener::Accept::~Accept() {
  if (fd_ >= 0) ::close(fd_);
}

IoOp::Status Listener::Accept::step(Socket& so) { return so.accept(fd_, error, backoff_, resume_at); }

Result<Stream> Listener::Accept::await_resume() {
  if (error) return {error, {}};
  return {{}, Stream(*loop_, std::exchange(fd_, -1))};
}

}  // namespace corio
