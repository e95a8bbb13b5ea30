// Socket: a non-blocking descriptor with a FIFO of operations per direction. Only the head
// operation of a direction runs, so a send (or a receive) is atomic with respect to the
// others on the same socket; closing the socket finishes every queued operation with
// Error::closed; each operation may carry a timeout. The rules every face shares live here
// and in the engine operations beside it (ConnectOp, ReadRule): the C++ awaiters and the
// Lua sockets only translate arguments and results.
#pragma once
#include <corio/address.hpp>
#include <corio/buffer.hpp>
#include <corio/error.hpp>
#include <corio/handle.hpp>
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/throttle.hpp>
#include <corio/timer.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

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
    pending,    // waiting for something else (a name lookup): call again on Socket::wake()
  };
  IoOp() noexcept = default;
  virtual ~IoOp();  // dequeues itself if still queued
  IoOp(const IoOp&) = delete;
  IoOp& operator=(const IoOp&) = delete;

  virtual Status step(Socket& s) = 0;
  // Called once for a queued operation: it finished, timed out (Error::timeout) or the
  // socket closed (Error::closed). It is no longer queued; it may delete itself.
  virtual void finish() = 0;
  // The timeout passed: true if the op goes on (it called Socket::rearm), false to finish
  // with Error::timeout. A connect moves on to the next address here.
  virtual bool timed_out(Socket&) { return false; }

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

// Where a stream socket's bytes come from and go to: the descriptor itself unless a
// transport is set. A TLS session plugs in here, under every reader and writer.
class Transport {
 public:
  virtual ~Transport() = default;
  // As Socket::read/write on the descriptor: done with bytes (or an error in ec, the end
  // of the stream as Error::closed), or wait. `drained` is the socket's hint that the
  // descriptor holds nothing (cleared on readiness): with nothing of its own buffered a
  // transport may answer wait without a syscall; it sets the hint when a read comes back short.
  virtual IoOp::Status read(int fd, char* buf, std::size_t len, std::size_t& got, std::error_code& ec,
                            bool& drained) = 0;
  virtual IoOp::Status write(int fd, const char* data, std::size_t len, std::size_t& put, std::error_code& ec) = 0;
  // A transport that opens with a handshake (TLS): one step of it, as read() answers.
  virtual IoOp::Status handshake(std::error_code&) { return IoOp::Status::done; }
  // The descriptor is about to be closed (a goodbye, such as TLS's close_notify, goes now).
  virtual void closing(int) noexcept {}
};

// A socket is a handle of its loop while it has a descriptor: Loop::close() reports it as
// live, but an idle socket keeps no run() going; a queued operation does (Loop::hold).
class Socket : public ListedHandle {
 public:
  // The owner of a borrowed descriptor (a LuaSocket object that corio.wrap wraps): told when
  // the socket replaced the descriptor (renew), so it takes the new one.
  class Owner {
   public:
    virtual void replaced(int new_fd) = 0;

   protected:
    ~Owner() = default;
  };

  // The most one read() asks for, and so the most a reader asks fill() for at once.
  static constexpr std::size_t kReadChunk = 64 * 1024;

  // Takes ownership of fd (made non-blocking); -1 for a socket without one yet.
  Socket(Loop& loop, int fd);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // A new non-blocking, close-on-exec descriptor; returns it or -errno.
  static int open(int family, int type) noexcept;

  int fd() const noexcept { return fd_; }
  bool closed() const noexcept { return fd_ < 0; }
  int family() const noexcept { return family_; }  // of the descriptor; AF_UNSPEC without one
  // An operation of direction d is queued: a new one would wait behind it.
  bool busy(Direction d) const noexcept { return head_[static_cast<int>(d)] != nullptr; }
  // Nothing buffered and the kernel's buffer known empty: a read now would only wait.
  bool read_would_wait() const noexcept { return drained_ && fd_ >= 0 && input_.empty() && !transport_; }
  // Gives the socket a descriptor (replacing none); it is borrowed if the socket has an owner.
  void adopt(int fd);
  // Borrowed descriptors from now on: close() and the destructor leave them open, and
  // renew() hands replacements to the owner.
  void set_owner(Owner* owner) noexcept { owner_ = owner; }
  // Replaces the descriptor by a fresh one of family/type, with the options set through
  // set_option() and an explicit bind() applied again. The old one is closed first, borrowed
  // or not, as LuaSocket destroys it (so the new one may get its number). A connect attempt
  // after a failed one needs it: such a socket is not reusable.
  std::error_code renew(int family, int type);
  // setsockopt, remembered for renew().
  std::error_code set_option(int level, int name, const void* value, socklen_t len);
  std::error_code bind(const Address& a);  // remembered for renew()
  void set_transport(std::unique_ptr<Transport> t) { transport_ = std::move(t); }
  Transport* transport() const noexcept { return transport_.get(); }

  // Runs op at once if nothing is queued before it and it finishes without waiting:
  // returns true and finish() is not called. Otherwise queues it and returns false.
  bool submit(IoOp& op, Direction d, std::optional<Duration> timeout = std::nullopt);
  void rearm(IoOp& op, std::optional<Duration> timeout);  // a queued op's new timeout
  void wake(IoOp& op);             // steps a queued op that said Status::pending, if its turn
  void cancel(IoOp& op) noexcept;  // dequeues without finish() (its owner is going away)
  void close() noexcept;           // closes fd; queued operations finish with Error::closed
  // Like close(), but the descriptor is left open, for whoever owns it now (LuaSocket's setfd).
  void detach() noexcept;
  // Like close(), but for an owner that is going away: queued operations are cancelled.
  void destroy() noexcept;         // deletes this, after any dispatch in progress
  // Its loop is forsaken after fork() (Loop::forsake; every handle of kind socket is a
  // Socket): the descriptor is closed (left open if borrowed) and queued operations stay
  // queued, never finished: their owners belong to the parent's side and must not run.
  void forsake() noexcept { release_fd(); }

  // Primitives for step(): `done` with no error means progress was made; the end of the
  // stream is Error::closed. Read into input() / straight into buf / write, within the throttle.
  IoOp::Status fill(std::size_t want, std::error_code& ec);
  IoOp::Status read(char* buf, std::size_t len, std::size_t& got, std::error_code& ec);  // not counted
  IoOp::Status write(const char* data, std::size_t len, std::size_t& written, std::error_code& ec);
  // At most len bytes, as soon as any are available: what input() holds first, else one
  // read straight into buf (no buffer, no copy). len == 0 is done at once.
  IoOp::Status read_some(char* buf, std::size_t len, std::size_t& got, std::error_code& ec) {
    if (!input_.empty() || len == 0) return take_buffered(buf, len, got);
    IoOp::Status st = read(buf, len, got, ec);
    bytes_in += got;
    return st;
  }
  // data[sent, len) for as long as the socket takes it: done when all is sent or on an error.
  IoOp::Status write_all(const char* data, std::size_t len, std::size_t& sent, std::error_code& ec) {
    while (sent < len) {
      std::size_t n = 0;
      IoOp::Status st = write(data + sent, len - sent, n, ec);
      if (st != IoOp::Status::done || ec) return st;
      sent += n;
    }
    return IoOp::Status::done;
  }
  // One connection from a listening socket: done with fd (non-blocking, close-on-exec) or
  // ec; out of descriptors or memory (EMFILE ...), throttled until resume_at, backing off
  // from 10 ms doubling to 1 s (backoff starts at zero and is kept by the op): the
  // connection stays queued, so retrying at once would spin.
  IoOp::Status accept(int& fd, std::error_code& ec, Duration& backoff, TimePoint& resume_at);
  // One datagram out (to == nullptr: the connected peer) or in (from may be nullptr).
  IoOp::Status send_datagram(const char* data, std::size_t len, const Address* to, std::size_t& sent,
                             std::error_code& ec);
  IoOp::Status receive_datagram(char* buf, std::size_t len, Address* from, std::size_t& got, std::error_code& ec);

  ReadBuffer& input() noexcept { return input_; }
  void consume(std::size_t n);  // n bytes of input() delivered: counted, and an empty buffer freed
  Throttle& throttle(Direction d) { return pacing().throttle[static_cast<int>(d)]; }

  // The longest line a reader buffers (and, with limit_all(), the longest "read everything"):
  // the socket's own, else the process-wide default (1 MiB; SIZE_MAX: unbounded).
  std::size_t limit() const noexcept { return setup_ && setup_->limit ? setup_->limit : default_limit(); }
  bool limit_all() const noexcept { return limit_all_; }
  void set_limit(std::size_t bytes, bool all = false);
  static std::size_t default_limit() noexcept;
  static void set_default_limit(std::size_t bytes) noexcept;
  std::uint64_t bytes_in = 0;  // totals, for getstats: bytes delivered to readers, and sent
  std::uint64_t bytes_out = 0;

 private:
  void on_ready(unsigned events);
  void run(Direction d, bool ready = false);
  bool complete(IoOp& op, std::error_code ec);
  void unlink(IoOp& op) noexcept;
  void unlink_all() noexcept;
  void want(Direction d, bool on);
  void park(Direction d, IoOp& op, IoOp::Status st);
  void time_out(IoOp& op);
  void release_fd(bool close_it = true) noexcept;
  IoOp::Status take_buffered(char* buf, std::size_t len, std::size_t& got);
  IoOp::Status transported(char* buf, std::size_t n, std::size_t& got, std::error_code& ec);
  void end(bool close_fd) noexcept;

  // Rarely needed, so made on first use: most sockets are never throttled nor back off.
  struct Pacing {
    explicit Pacing(Loop& loop) : timer{Timer(loop), Timer(loop)} {}
    Timer timer[2];  // steps the head later: rate, back-off, cancel
    Throttle throttle[2];
  };
  Pacing& pacing();
  bool limited(Direction d) const noexcept { return pacing_ && pacing_->throttle[static_cast<int>(d)].limited(); }

  // What the user set up (made on first set_option/bind/set_limit): renew() applies the
  // options and the bind again to a fresh descriptor.
  struct Setup {
    struct Option {
      int level, name;
      std::vector<char> value;
    };
    std::vector<Option> options;
    std::optional<Address> bound;
    std::size_t limit = 0;  // 0: default_limit()
  };
  Setup& setup();

  int fd_ = -1;
  int family_ = 0;  // AF_UNSPEC
  unsigned interest_ = 0;
  int depth_ = 0;  // dispatches in progress on the stack
  Owner* owner_ = nullptr;  // set: the descriptor is borrowed
  std::optional<IoWatch> watch_;
  IoOp* head_[2] = {};
  IoOp* tail_[2] = {};
  std::unique_ptr<Pacing> pacing_;
  std::unique_ptr<Setup> setup_;
  std::unique_ptr<Transport> transport_;
  ReadBuffer input_;
  // A read came back short (or EAGAIN): the kernel buffer is empty, so the next read waits
  // for readiness without trying (a read that would fail costs a syscall per message).
  // Only a hint: with level-triggered epoll a stale one costs a loop iteration, not data.
  bool drained_ = false;
  bool doomed_ = false;  // destroy() was called during a dispatch
  bool limit_all_ = false;
};

}  // namespace corio
