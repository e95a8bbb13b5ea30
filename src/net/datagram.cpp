#include <corio/datagram.hpp>

#include <cerrno>
#include <unistd.h>
#include <utility>

namespace corio {

Datagram::Datagram(Loop& loop, int fd) : loop_(&loop), socket_(new Socket(loop, fd)) {}

Datagram::~Datagram() {
  if (socket_) socket_->destroy();
}

Datagram::Datagram(Datagram&& o) noexcept : loop_(o.loop_), socket_(std::exchange(o.socket_, nullptr)) {}

Datagram& Datagram::operator=(Datagram&& o) noexcept {
  if (this != &o) {
    if (socket_) socket_->destroy();
    loop_ = o.loop_;
    socket_ = std::exchange(o.socket_, nullptr);
  }
  return *this;
}

Result<Datagram> Datagram::open(Loop& loop, int family) {
  int fd = Socket::open(family, SOCK_DGRAM);
  if (fd < 0) return {{-fd, std::generic_category()}, {}};
  return {{}, Datagram(loop, fd)};
}

std::error_code Datagram::bind(const Address& address) {
  if (fd() < 0) return Error::closed;
  if (::bind(fd(), address.data(), address.size()) != 0) return {errno, std::generic_category()};
  return {};
}

Datagram::RecvFrom Datagram::recv_from(char* buf, std::size_t n, std::optional<Duration> timeout) {
  return RecvFrom(socket_, buf, n, timeout);
}

Datagram::SendTo Datagram::send_to(std::string_view data, const Address& to, std::optional<Duration> timeout) {
  return SendTo(socket_, data, to, timeout);
}

Address Datagram::address() const {
  Address a;
  if (fd() < 0 || ::getsockname(fd(), a.data(), a.size_ptr()) != 0) return {};
  return a;
}

void Datagram::close() noexcept {
  if (socket_) socket_->close();
}

Loop& Datagram::loop() const noexcept { return loop_ ? *loop_ : Loop::current(); }

IoOp::Status Datagram::RecvFrom::step(Socket& so) {
  return so.receive_datagram(buf_, len_, &got_.from, got_.size, error);
}

IoOp::Status Datagram::SendTo::step(Socket& so) {
  return so.send_datagram(data_.data(), data_.size(), &to_, sent_, error);
}

}  // namespace corio
