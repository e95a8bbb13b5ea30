// Socket: a non-blocking descriptor with a FIFO of operations per direction. Only the head
// operation of a direction runs, so a send (or a receive) is atomic with respect to the
// others on the same socket; closing the socket finishes every queued operation with
// Error::closed; each operation may carry a timeout. Both the C++ awaiters and the Lua
// sockets are built on this.
#pragma once
#include <corio/address.hpp>
#include <corio/buffer.hpp>
#include <corio/error.hpp>
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/throttle.hpp>
#include <corio/timer.hpp>

#include <cstdint>
#include <memory>
#include <optional>

namespace corio {

class Socket;

enum class Direction { read = 0, write = 1 };

// One I/O operation. step() attempts it without blocking; finish() reports a queued one.
class IoOp {
 public:
  enum class Status {
    done,       // finished (see error)
    wait,       // the descriptor is not ready: call again when it is
    throttled,  // the rate limit is reached: call again when it allows more
  };
  IoOp() noexcept = default;
  virtual ~IoOp();  // dequeues itself if still queued
  IoOp(const IoOp&) = delete;
  IoOp& operator=(const IoOp&) = delete;

  virtual Status step(Socket& s) = 0;
  // Called once for a queued operation: it finished, timed out (Error::timeout) or the
  // socket closed (Error::closed). It is no longer queued; it may delete itself.
  virtual void finish() = 0;

  std::error_code error;
  TimePoint resume_at{};  // with Status::throttled: retry then (default: the throttle's time)
  bool queued() const noexcept { return sock_ != nullptr; }

 private:
  friend class Socket;
  IoOp* next_ = nullptr;
  Socket* sock_ = nullptr;
  Direction dir_ = Direction::read;
  bool parked_ = false;  // stepped and told to wait: not stepped again until ready
  std::unique_ptr<Timer> timer_;  // the timeout, made by the first submit that has one
};

class Socket {
 public:
  // Takes ownership of fd (made non-blocking); -1 for a socket without one yet.
  Socket(Loop& loop, int fd);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // A new non-blocking, close-on-exec descriptor; returns it or -errno.
  static int open(int family, int type) noexcept;

  int fd() const noexcept { return fd_; }
  bool closed() const noexcept { return fd_ < 0; }
  // An operation of direction d is queued: a new one would wait behind it.
  bool busy(Direction d) const noexcept { return head_[static_cast<int>(d)] != nullptr; }
  // Nothing buffered and the kernel's buffer known empty: a read now would only wait.
  bool read_would_wait() const noexcept { return drained_ && fd_ >= 0 && input_.empty(); }
  Loop& loop() const noexcept { return *loop_; }
  // Gives a descriptor-less socket its descriptor. Borrowed (own = false): close() and the
  // destructor leave it open, for a descriptor another object (a LuaSocket socket) owns.
  void adopt(int fd, bool own = true);

  // Runs op at once if nothing is queued before it and it finishes without waiting:
  // returns true and finish() is not called. Otherwise queues it and returns false.
  bool submit(IoOp& op, Direction d, std::optional<Duration> timeout = std::nullopt);
  void cancel(IoOp& op) noexcept;  // dequeues without finish() (its owner is going away)
  void close() noexcept;           // closes fd; queued operations finish with Error::closed
  // Like close(), but for an owner that is going away: queued operations are cancelled.
  void destroy() noexcept;         // deletes this, after any dispatch in progress

  // Helpers for step(): read into input() / write, within the throttle. `done` with no
  // error means progress was made; end of stream is Error::closed.
  IoOp::Status fill(std::size_t want, std::error_code& ec);
  IoOp::Status write(const char* data, std::size_t len, std::size_t& written, std::error_code& ec);
  // Reads at most len bytes straight into buf, bypassing input() (serve what it holds
  // first): no buffer allocated and no copy for a reader that has its own.
  IoOp::Status read(char* buf, std::size_t len, std::size_t& got, std::error_code& ec);

  // One datagram out (to == nullptr: the connected peer) or in (from may be nullptr).
  IoOp::Status send_datagram(const char* data, std::size_t len, const Address* to, std::size_t& sent,
                             std::error_code& ec);
  IoOp::Status receive_datagram(char* buf, std::size_t len, Address* from, std::size_t& got, std::error_code& ec);

  ReadBuffer& input() noexcept { return input_; }
  Throttle& throttle(Direction d) { return pacing().throttle[static_cast<int>(d)]; }
  std::size_t limit = 1u << 20;  // longest line a reader may buffer
  bool limit_all = false;        // whether the limit bounds "read everything" too
  std::uint64_t bytes_in = 0;    // totals, for getstats
  std::uint64_t bytes_out = 0;

 private:
  void on_ready(unsigned events);
  void run(Direction d, bool ready = false);
  bool complete(IoOp& op, std::error_code ec);
  void unlink(IoOp& op) noexcept;
  void want(Direction d, bool on);
  void park(Direction d, IoOp& op, IoOp::Status st);
  void time_out(IoOp& op);

  // Rarely needed, so made on first use: most sockets are never throttled nor back off.
  struct Pacing {
    explicit Pacing(Loop& loop) : timer{Timer(loop), Timer(loop)} {}
    Timer timer[2];  // steps the head later: rate, back-off, cancel
    Throttle throttle[2];
  };
  Pacing& pacing();
  bool limited(Direction d) const noexcept { return pacing_ && pacing_->throttle[static_cast<int>(d)].limited(); }

  Loop* loop_;
  int fd_;
  bool owns_ = true;
  std::optional<IoWatch> watch_;
  unsigned interest_ = 0;
  IoOp* head_[2] = {};
  IoOp* tail_[2] = {};
  std::unique_ptr<Pacing> pacing_;
  ReadBuffer input_;
  // A read came back short (or EAGAIN): the kernel buffer is empty, so the next read waits
  // for readiness without trying (a read that would fail costs a syscall per message).
  // Only a hint: with level-triggered epoll a stale one costs a loop iteration, not data.
  bool drained_ = false;
  int depth_ = 0;       // dispatches in progress on the stack
  bool doomed_ = false;  // destroy() was called during one
};

}  // namespace corio
