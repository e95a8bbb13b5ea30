// Handle: an object that, while started, is live on a loop (libuv's uv_handle_t). Timer,
// IoWatch and SignalWatch are handles, and so may a higher layer's objects be (kind
// socket). The loop's HandleCounts is the one place that counts what keeps it running
// (referenced live handles and hold()s) and what is live at all, by kind: run() goes on
// while refs() > 0, and Loop::close() refuses while anything is live.
#pragma once
#include <cstddef>

namespace corio {

class Loop;

enum class HandleKind : unsigned char {
  timer,
  io_watch,
  signal_watch,
  socket,
  internal,  // the loop's own (the signalfd's watch): never reported by Loop::close()
};
inline constexpr std::size_t kHandleKinds = 5;

// "timer", "io_watch", "signal_watch", "socket", "internal".
const char* handle_kind_name(HandleKind kind) noexcept;

// A loop's ledger. Read by anyone; changed only by Handle and Loop::hold()/release().
class HandleCounts {
 public:
  explicit HandleCounts(Loop& owner) noexcept : owner_(&owner) {}
  HandleCounts(const HandleCounts&) = delete;
  HandleCounts& operator=(const HandleCounts&) = delete;

  // Referenced live handles plus holds: run() goes on while this is positive.
  long refs() const noexcept { return refs_; }
  // Live handles of a kind, referenced or not.
  long live(HandleKind kind) const noexcept { return live_[static_cast<std::size_t>(kind)]; }
  long holds() const noexcept { return holds_; }
  Loop& loop() const noexcept { return *owner_; }

 private:
  friend class Handle;
  friend class Loop;
  void start(HandleKind kind, bool ref) noexcept {
    ++live_[static_cast<std::size_t>(kind)];
    if (ref) ++refs_;
  }
  void stop(HandleKind kind, bool ref) noexcept {
    --live_[static_cast<std::size_t>(kind)];
    if (ref) --refs_;
  }
  void ref() noexcept { ++refs_; }
  void unref() noexcept { --refs_; }
  void hold() noexcept {
    ++holds_;
    ++refs_;
  }
  void release() noexcept {
    --holds_;
    --refs_;
  }

  Loop* owner_;
  long refs_ = 0;
  long holds_ = 0;
  long live_[kHandleKinds] = {};
};

// The base of every handle. A derived class calls start_handle() when it becomes live
// (armed, watching) and stop_handle() when it stops; everything else is bookkeeping here.
// A handle is referenced unless unref()'d: an unreferenced live handle does not keep
// Loop::run() going but is still live for Loop::close() (an idle open socket, say).
class Handle {
 public:
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  Loop& loop() const noexcept { return counts_->loop(); }
  HandleKind kind() const noexcept { return kind_; }
  bool active() const noexcept { return active_; }
  bool has_ref() const noexcept { return ref_; }

  // Whether a live handle keeps Loop::run() going; kept across stop and start.
  void ref() noexcept {
    if (ref_) return;
    ref_ = true;
    if (active_) counts_->ref();
  }
  void unref() noexcept {
    if (!ref_) return;
    ref_ = false;
    if (active_) counts_->unref();
  }

 protected:
  Handle(HandleCounts& counts, HandleKind kind) noexcept : counts_(&counts), kind_(kind) {}
  ~Handle() = default;  // the derived destructor stops the handle

  void start_handle() noexcept {
    if (active_) return;
    active_ = true;
    counts_->start(kind_, ref_);
  }
  void stop_handle() noexcept {
    if (!active_) return;
    active_ = false;
    counts_->stop(kind_, ref_);
  }
  // For a loop going away with the handle still started: the handle becomes inactive
  // without touching the (dying) loop, so its destructor is harmless.
  void detach_handle() noexcept { active_ = false; }
  // The loop's own handles (before they start): not reported by Loop::close().
  void make_internal() noexcept { kind_ = HandleKind::internal; }

 private:
  HandleCounts* counts_;
  HandleKind kind_;
  bool active_ = false;
  bool ref_ = true;
};

}  // namespace corio
