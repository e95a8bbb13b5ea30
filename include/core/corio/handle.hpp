// Handle: an object that, while started, is live on a loop (libuv's uv_handle_t). Timer,
// IoWatch and SignalWatch are handles, and so may a higher layer's objects be (a socket:
// ListedHandle). The loop's HandleCounts is the one place that counts what keeps it running
// (referenced live handles and hold()s) and what is live at all, by kind: run() goes on
// while refs() > 0, and Loop::close() refuses while anything is live.
#pragma once
#include <cstddef>

namespace corio {

class Loop;
class ListedHandle;

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
  friend class ListedHandle;
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
  ListedHandle* listed_ = nullptr;  // the started ListedHandles, detached by ~Loop
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
  friend class ListedHandle;
  HandleCounts* counts_;
  HandleKind kind_;
  bool active_ = false;
  bool ref_ = true;
  bool forsakable_ = false;  // ListedHandle::use_forsake()
};

// A handle of a higher layer, which no structure of the loop holds (a timer is in the timer
// queue, a watch in its descriptor's list): started, it is also linked into the loop's list,
// so that a loop destroyed first detaches it — its later stop_handle() and destructor then
// touch nothing — as it does its timers and watches. An O(1) link, at start and stop only.
//
// A socket, say: made unreferenced (unref() in its constructor) with kind socket, it calls
// start_handle() when it gets a descriptor and stop_handle() when it closes it; while open
// it is live (Loop::close() reports "socket: n") but keeps no run() going by itself. A
// queued operation holds the loop with ref() (unref() when the last one leaves) or with
// Loop::hold()/release().
class ListedHandle : public Handle {
 public:
  // What a loop forsaken in the child of a fork() (Loop::forsake) does with a started handle
  // of a kind: let go of what it shares with the parent (a socket closes its descriptor).
  // Set once per kind by the layer whose class has that kind, and called only for handles
  // that said they are of that class (use_forsake()): a function per kind and a flag in the
  // base's padding, not a virtual function, so a socket stays within its size budget.
  using Forsake = void (*)(ListedHandle&) noexcept;
  static void on_forsake(HandleKind kind, Forsake fn) noexcept;
  // The kind's function if this handle uses it, else nullptr.
  Forsake forsake_fn() const noexcept;

 protected:
  ListedHandle(HandleCounts& counts, HandleKind kind) noexcept : Handle(counts, kind) {}
  ~ListedHandle() { stop_handle(); }
  void use_forsake() noexcept { forsakable_ = true; }  // see on_forsake()

  void start_handle() noexcept {
    if (active()) return;
    Handle::start_handle();
    next_ = counts_->listed_;
    prev_ = nullptr;
    if (next_) next_->prev_ = this;
    counts_->listed_ = this;
  }
  void stop_handle() noexcept {
    if (!active()) return;
    Handle::stop_handle();
    if (prev_)
      prev_->next_ = next_;
    else
      counts_->listed_ = next_;
    if (next_) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  friend class Loop;
  void detach() noexcept {  // the loop is going away
    detach_handle();
    prev_ = next_ = nullptr;
  }
  ListedHandle* prev_ = nullptr;
  ListedHandle* next_ = nullptr;
};

}  // namespace corio
