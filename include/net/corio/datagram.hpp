// Datagram: a UDP socket for C++ coroutines, on the Socket engine.
//
//   auto [ec, udp] = corio::Datagram::open(loop, AF_INET);
//   udp.bind(*corio::Address::from_ip("127.0.0.1", 5353));
//   char buf[1500];
//   auto [err, got] = co_await udp.recv_from(buf, sizeof buf, 1s);  // got.size, got.from
//   co_await udp.send_to({buf, got.size}, got.from);
#pragma once
#include <corio/address.hpp>
#include <corio/awaitable_op.hpp>
#include <corio/result.hpp>

#include <string_view>
#include <sys/socket.h>

namespace corio {

class Datagram {
 public:
  class RecvFrom;
  class SendTo;
  struct Received {
    std::size_t size = 0;  // bytes stored (a longer datagram is truncated, as by recvfrom)
    Address from;
  };

  Datagram() noexcept = default;  // empty: every operation fails with Error::closed
  ~Datagram();                    // cancels pending operations without resuming them
  Datagram(Datagram&& o) noexcept;
  Datagram& operator=(Datagram&& o) noexcept;

  static Result<Datagram> open(Loop& loop, int family = AF_INET);  // AF_INET or AF_INET6
  std::error_code bind(const Address& address);

  // One datagram into buf -> Result<Received>.
  [[nodiscard]] RecvFrom recv_from(char* buf, std::size_t n, std::optional<Duration> timeout = std::nullopt);
  // One datagram to `to` -> Result<std::size_t>. data must stay valid until it completes.
  [[nodiscard]] SendTo send_to(std::string_view data, const Address& to,
                               std::optional<Duration> timeout = std::nullopt);

  Address address() const;  // the local address (family AF_UNSPEC if unknown)
  void close() noexcept;    // pending operations end with Error::closed
  int fd() const noexcept { return socket_ ? socket_->fd() : -1; }
  Loop& loop() const noexcept;
  Socket& socket() const noexcept { return *socket_; }  // not for an empty datagram socket

 private:
  Datagram(Loop& loop, int fd);
  Loop* loop_ = nullptr;
  Socket* socket_ = nullptr;  // released with Socket::destroy()
};

class Datagram::RecvFrom final : public AwaitableOp<> {
 public:
  RecvFrom(Socket* so, char* buf, std::size_t n, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::read, timeout), buf_(buf), len_(n) {}
  Result<Received> await_resume() const noexcept { return {error, error ? Received{} : got_}; }
  Status step(Socket& so) override;

 private:
  char* buf_;
  std::size_t len_;
  Received got_;
};

class Datagram::SendTo final : public AwaitableOp<> {
 public:
  SendTo(Socket* so, std::string_view data, const Address& to, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::write, timeout), data_(data), to_(to) {}
  Result<std::size_t> await_resume() const noexcept { return {error, error ? 0 : sent_}; }
  Status step(Socket& so) override;

 private:
  std::string_view data_;
  Address to_;
  std::size_t sent_ = 0;
};

}  // namespace corio
