// Listener: a listening TCP (or Unix) socket whose connections are awaited as Streams.
//
//   auto [ec, listener] = corio::Listener::bind(loop, "*", 8080);
//   for (;;) {
//     auto [err, stream] = co_await listener.accept();
//     if (err) break;
//     corio::spawn(loop, serve(std::move(stream)));
//   }
//
// Out of descriptors (EMFILE, ENFILE) or memory, accept() keeps the connection queued and
// retries after a back-off (10 ms doubling to 1 s) instead of spinning on a listening
// socket that stays readable.
#pragma once
#include <corio/stream.hpp>

#include <climits>
#include <string_view>

namespace corio {

class Listener {
 public:
  class Accept;

  Listener() noexcept = default;  // empty: accept() fails with Error::closed
  ~Listener();                    // cancels a pending accept without resuming it
  Listener(Listener&& o) noexcept;
  Listener& operator=(Listener&& o) noexcept;

  // Binds (SO_REUSEADDR) a numeric IPv4/IPv6 address or "*" (0.0.0.0) and listens; port 0
  // picks a free port (see address()). The default backlog asks for the system's maximum.
  static Result<Listener> bind(Loop& loop, std::string_view host, std::uint16_t port, int backlog = INT_MAX);
  static Result<Listener> bind(Loop& loop, const Address& address, int backlog = INT_MAX);  // also Unix

  // The next connection -> Result<Stream>.
  [[nodiscard]] Accept accept(std::optional<Duration> timeout = std::nullopt);

  Address address() const;  // where it listens (family AF_UNSPEC if closed)
  void close() noexcept;    // a pending accept ends with Error::closed
  int fd() const noexcept { return socket_ ? socket_->fd() : -1; }
  Loop& loop() const noexcept;
  Socket& socket() const noexcept { return *socket_; }  // not for an empty listener

 private:
  Listener(Loop& loop, int fd);
  Loop* loop_ = nullptr;
  Socket* socket_ = nullptr;  // released with Socket::destroy()
};

class Listener::Accept final : public AwaitableOp<> {
 public:
  Accept(Loop& loop, Socket* so, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::read, timeout), loop_(&loop) {}
  ~Accept() override;
  Result<Stream> await_resume();
  Status step(Socket& so) override;

 private:
  Loop* loop_;
  int fd_ = -1;
  Duration backoff_{};
};

}  // namespace corio
