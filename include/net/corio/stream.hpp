// Stream: a TCP (or Unix) connection for C++ coroutines, on the Socket engine the Lua
// sockets use. Every operation is awaited and yields an error code, never throws:
//
//   corio::Stream s(loop);
//   if (auto ec = co_await s.connect("example.org", 80, 5s)) ...;
//   auto ec = co_await s.write_all("GET / HTTP/1.0\r\n\r\n");
//   auto [err, line] = co_await s.read_line(5s);
//
// Operations of one direction run one at a time in the order they were awaited, so a
// write_all is never interleaved with another. A timeout (nullopt: none) ends the wait
// with Error::timeout; close() ends every pending wait with Error::closed. The end of the
// stream is Error::closed too: a successful read always yields bytes.
#pragma once
#include <corio/address.hpp>
#include <corio/awaitable_op.hpp>
#include <corio/chunk.hpp>
#include <corio/connect_op.hpp>
#include <corio/read_rule.hpp>
#include <corio/resolver.hpp>
#include <corio/result.hpp>
#include <corio/tls.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corio {

class Stream {
 public:
  class Connect;
  class Handshake;
  class ReadChunk;
  class ReadSome;
  class ReadString;
  class WriteAll;

  Stream() noexcept = default;  // empty: every operation fails with Error::closed
  explicit Stream(Loop& loop);  // not connected yet: connect() gives it a descriptor
  Stream(Loop& loop, int fd);   // adopts a connected descriptor (made non-blocking)
  ~Stream();  // cancels pending operations without resuming them: close() first to wake them
  Stream(Stream&& o) noexcept;
  Stream& operator=(Stream&& o) noexcept;

  // Connects to host:port, trying each address in turn (as LuaSocket does, ConnectOp) until
  // one accepts. A numeric host is used as is; a name is resolved by `resolver` (default:
  // the loop's). The timeout covers it all. ECONNREFUSED is Error::refused. Start reading
  // and writing once it has completed.
  [[nodiscard]] Connect connect(std::string host, std::uint16_t port, std::optional<Duration> timeout = std::nullopt,
                                Resolver* resolver = nullptr);
  [[nodiscard]] Connect connect(const Address& to, std::optional<Duration> timeout = std::nullopt);  // also Unix

  // At most n bytes into buf, as soon as any are available -> Result<std::size_t>
  // (n == 0 completes at once with 0).
  [[nodiscard]] ReadSome read_some(char* buf, std::size_t n, std::optional<Duration> timeout = std::nullopt);
  // At most max bytes (and at most ChunkPool::kBufferSize), as soon as any are available,
  // in a buffer from the loop's pool -> Result<Chunk>. While it waits it holds no buffer:
  // the way for many mostly idle connections to stay small (max == 0: at once, empty).
  [[nodiscard]] ReadChunk read_chunk(std::size_t max = ChunkPool::kBufferSize,
                                     std::optional<Duration> timeout = std::nullopt);
  // Exactly n bytes -> Result<std::string>. On an error nothing is consumed.
  [[nodiscard]] ReadString read_exactly(std::size_t n, std::optional<Duration> timeout = std::nullopt);
  // One line, without its "\n" (nor a "\r" before it) -> Result<std::string>. A line longer
  // than socket().limit() is refused with Error::line_too_long before it is buffered whole;
  // on any error nothing is consumed (the bytes stay for read_some).
  [[nodiscard]] ReadString read_line(std::optional<Duration> timeout = std::nullopt);
  // Everything until the peer closes -> Result<std::string> (Error::closed if nothing came
  // before the end). Bounded by socket().limit() when socket().limit_all().
  [[nodiscard]] ReadString read_all(std::optional<Duration> timeout = std::nullopt);
  // All of data, as one operation -> std::error_code. data must stay valid until it completes.
  [[nodiscard]] WriteAll write_all(std::string_view data, std::optional<Duration> timeout = std::nullopt);

  // TLS from now on, the side ctx's mode says (host: the name the server's certificate must
  // carry, sent as SNI; an IP literal is checked against its IP entries), then the handshake
  // -> std::error_code (verify_category() for a certificate refused). A failed handshake
  // closes the stream. Reads and writes awaited meanwhile wait for it.
  std::error_code start_tls(std::shared_ptr<TlsContext> ctx, std::string_view host = {});
  [[nodiscard]] Handshake handshake(std::optional<Duration> timeout = std::nullopt);
  TlsInfo tls_info() const;  // what the handshake agreed on; empty without TLS

  void close() noexcept;  // pending operations end with Error::closed
  bool is_open() const noexcept { return socket_ && !socket_->closed(); }
  int fd() const noexcept { return socket_ ? socket_->fd() : -1; }
  Address local_address() const;  // family AF_UNSPEC if unknown
  Address peer_address() const;
  std::error_code set_nodelay(bool on = true);  // TCP_NODELAY
  Loop& loop() const noexcept;
  // The engine object, for its throttle(), limit and statistics. Not for an empty stream.
  Socket& socket() const noexcept { return *socket_; }

 private:
  Loop* loop_ = nullptr;
  ChunkPool* chunks_ = nullptr;  // the loop's, once read_chunk has been called: a lookup less per read
  Socket* socket_ = nullptr;  // released with Socket::destroy()
};

class Stream::Connect final : public AwaitableOp<ConnectOp> {
 public:
  Connect(Socket* so, ConnectOp::Target target, std::optional<Duration> timeout, Resolver* resolver) noexcept
      : AwaitableOp(so, Direction::write, timeout), target_(std::move(target)), resolver_(resolver) {}

  bool await_ready();
  std::error_code await_resume() const noexcept { return error; }

 private:
  ConnectOp::Target target_;
  Resolver* resolver_;
};

class Stream::Handshake final : public AwaitableOp<TlsHandshake> {
 public:
  Handshake(Socket* so, std::optional<Duration> timeout) noexcept : AwaitableOp(so, Direction::read, timeout) {}
  std::error_code await_resume() noexcept {
    if (error && socket_) socket_->close();
    return error;
  }
};

class Stream::ReadSome final : public AwaitableOp<> {
 public:
  ReadSome(Socket* so, char* buf, std::size_t n, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::read, timeout), buf_(buf), len_(n) {}
  Result<std::size_t> await_resume() const noexcept { return {error, error ? 0 : got_}; }
  Status step(Socket& so) override;

 private:
  char* buf_;
  std::size_t len_;
  std::size_t got_ = 0;
};

class Stream::ReadChunk final : public AwaitableOp<> {
 public:
  ReadChunk(Socket* so, ChunkPool* pool, std::size_t max, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::read, timeout), pool_(pool), max_(max) {}
  Result<Chunk> await_resume() noexcept { return {error, std::move(chunk_)}; }
  Status step(Socket& so) override;

 private:
  ChunkPool* pool_;
  std::size_t max_;
  Chunk chunk_;
};

class Stream::ReadString final : public AwaitableOp<> {
 public:
  ReadString(Socket* so, ReadRule rule, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::read, timeout), rule_(rule) {}
  Result<std::string> await_resume() noexcept { return {error, std::move(out_)}; }
  Status step(Socket& so) override;

 private:
  ReadRule rule_;
  std::string out_;
};

class Stream::WriteAll final : public AwaitableOp<> {
 public:
  WriteAll(Socket* so, std::string_view data, std::optional<Duration> timeout) noexcept
      : AwaitableOp(so, Direction::write, timeout), data_(data) {}
  std::error_code await_resume() const noexcept { return error; }
  Status step(Socket& so) override;

 private:
  std::string_view data_;
  std::size_t sent_ = 0;
};

}  // namespace corio
