#include <corio/loop.hpp>

#include <corio/io_watch.hpp>
#include <corio/timer.hpp>

#include "poller.hpp"
#include "signal_source.hpp"
#include "timer_arming.hpp"
#include "wakeup.hpp"

#include <cstdio>
#include <system_error>
#include <utility>

namespace corio {

Loop::Loop() : poller_(Poller::create()), wakeup_(std::make_unique<Wakeup>()) {
  if (int err = poller_->set(wakeup_->fd(), 0, kReadable))
    throw std::system_error(err, std::generic_category(), "registering the wakeup descriptor");
}

Loop::~Loop() {
  // Spawned tasks still suspended are destroyed first: their frames own timers and
  // watches that unregister from this loop as they go.
  while (tasks_) tasks_->frame.destroy();
  release_services();
  // Watches and timers still armed belong to their owners; detach them so a late
  // destructor does not touch a dead loop.
  for (auto& slot : fds_)
    for (IoWatch* w = slot.head; w; w = w->next_) {
      w->interest_ = 0;
      w->detach_handle();
    }
  while (!timers_.empty()) {
    Timer* t = timers_.top();
    timers_.erase(t);
    t->detach_handle();
  }
  while (ListedHandle* h = handles_.listed_) {
    handles_.listed_ = h->next_;
    h->detach();
  }
}

Loop::Service* Loop::service(const void* key) const noexcept {
  for (const auto& [k, s] : services_)
    if (k == key) return s.get();
  return nullptr;
}

Loop::Service& Loop::add_service(const void* key, std::unique_ptr<Service> s) {
  services_.emplace_back(key, std::move(s));
  return *services_.back().second;
}

namespace {
// The thread's default loop, by pointer: a forked child forsakes it and makes another.
struct CurrentLoop {
  Loop* loop = nullptr;
  ~CurrentLoop() { delete loop; }
};
thread_local CurrentLoop t_current;
}  // namespace

Loop& Loop::current() {
  if (!t_current.loop) t_current.loop = new Loop();
  return *t_current.loop;
}

std::uint64_t Loop::forsake_current() noexcept {
  Loop* old = std::exchange(t_current.loop, nullptr);
  return old ? old->forsake() : 0;  // and leaked: its handles may still point into it
}

std::uint64_t Loop::forsake() noexcept {
  poller_->forsake();  // first: the handles below unregister through it
  wakeup_->forsake();
  std::uint64_t blocked = signals_ ? signals_->forsake() : 0;
  for (ListedHandle* h = handles_.listed_, *next; h; h = next) {
    next = h->next_;  // forsaking h may unlink h, and only h
    if (ListedHandle::Forsake fn = h->forsake_fn()) fn(*h);
  }
  stop_ = true;
  return blocked;
}

void Loop::run() {
  stop_ = false;
  while (!stop_ && alive()) run_once();
  stop_ = false;
}

template <class F>
void Loop::guarded(F&& f) noexcept {
  try {
    f();
  } catch (...) {
    report(std::current_exception());
  }
}

void Loop::report(std::exception_ptr e) noexcept {
  if (on_exception_) {
    try {
      on_exception_(e);
      return;
    } catch (...) {
      e = std::current_exception();  // a throwing handler falls back to stderr
    }
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "corio: unhandled exception: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "corio: unhandled exception of unknown type\n");
  }
}

void Loop::fail(std::error_code ec) noexcept {
  error_ = ec;
  stop_ = true;
  report(std::make_exception_ptr(std::system_error(ec, "waiting for events failed; the loop stops")));
}

std::error_code Loop::close() {
  if (!live_report().empty()) return std::make_error_code(std::errc::device_or_resource_busy);
  release_services();
  return {};
}

void Loop::release_services() noexcept {
  while (!services_.empty()) services_.pop_back();  // newest first: it may use older ones
  signals_.reset();
}

std::string Loop::live_report() const {
  std::string out;
  auto add = [&out](const char* what, std::size_t n) {
    if (n == 0) return false;
    if (!out.empty()) out += ", ";
    out += what;
    out += ": ";
    out += std::to_string(n);
    return true;
  };
  for (HandleKind kind : {HandleKind::timer, HandleKind::io_watch, HandleKind::signal_watch, HandleKind::socket}) {
    if (!add(handle_kind_name(kind), static_cast<std::size_t>(handles_.live(kind)))) continue;
    if (kind == HandleKind::io_watch) {
      const char* sep = " (fd ";
      for (const FdSlot& slot : fds_)
        for (const IoWatch* w = slot.head; w; w = w->next_)
          if (w->kind() != HandleKind::internal) {
            out += sep + std::to_string(w->fd());
            sep = ", ";
          }
      if (*sep == ',') out += ')';
    } else if (kind == HandleKind::signal_watch && signals_) {
      signals_->describe(out);
    }
  }
  std::size_t tasks = 0;
  for (const detail::TaskNode* n = tasks_; n; n = n->next) ++tasks;
  add("task", tasks);
  add("hold", static_cast<std::size_t>(handles_.holds()));
  std::size_t callbacks = queued_.size();
  {
    std::lock_guard lock(posted_mutex_);
    callbacks += posted_.size();
  }
  add("callback", callbacks);
  return out;
}

void Loop::call_soon(Callback fn) { queued_.push_back(std::move(fn)); }

void Loop::post(Callback fn) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  if (sleeping_.load(std::memory_order_acquire)) wakeup_->signal();
}

int Loop::run_queued() {
  {
    std::lock_guard lock(posted_mutex_);
    for (auto& fn : posted_) queued_.push_back(std::move(fn));
    posted_.clear();
  }
  if (queued_.empty()) return 0;
  // Callbacks queued while these run wait for the next iteration: no starvation.
  // The batch is local so a callback may run the loop again (nested run_queued);
  // running_ only lends its spare capacity.
  std::vector<Callback> running = std::move(running_);
  running.swap(queued_);
  int n = static_cast<int>(running.size());
  for (auto& fn : running) guarded(fn);
  running.clear();
  running_ = std::move(running);
  return n;
}

bool Loop::run_once(std::optional<Duration> timeout) {
  if (error_) return false;  // broken: waiting would fail again at once
  int ran = run_queued();

  std::optional<Duration> wait = timeout;
  if (ran > 0 || !queued_.empty() || !always_ready_.empty()) {
    wait = Duration::zero();
  } else if (!timers_.empty()) {
    Duration until = timers_.next_deadline() - now();
    if (until < Duration::zero()) until = Duration::zero();
    if (!wait || until < *wait) wait = until;
  }

  sleeping_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(posted_mutex_);
    if (!posted_.empty()) wait = Duration::zero();
  }
  PollEvent events[256];
  int n = poller_->wait(wait, events, 256);
  sleeping_.store(false, std::memory_order_relaxed);
  if (n < 0) {
    fail(std::error_code(-n, std::generic_category()));
    return ran > 0;
  }

  ran += fire_timers();
  for (int i = 0; i < n; ++i) {
    if (events[i].fd == wakeup_->fd()) {
      wakeup_->drain();
      continue;
    }
    dispatch_fd(events[i].fd, events[i].events);
    ++ran;
  }
  if (!always_ready_.empty()) {
    std::vector<int> ready = always_ready_;  // callbacks may stop these watches
    for (int fd : ready) dispatch_fd(fd, kReadable | kWritable);
    ran += static_cast<int>(ready.size());
  }
  return ran > 0;
}

int Loop::fire_timers() {
  if (timers_.empty()) return 0;
  TimePoint t_now = now();
  // A timer armed during this pass for a deadline already past is moved just after
  // t_now (see Timer::arm): it fires next iteration instead of starving the loop.
  TimePoint outer_pass = std::exchange(pass_now_, t_now);
  int fired = 0;
  while (!timers_.empty() && timers_.next_deadline() <= t_now) {
    Timer* t = timers_.top();
    if (t->repeat_ > Duration::zero()) {
      // Periodic without drift; if the loop fell behind, skip the missed ticks. It stays
      // live: only its place in the queue changes.
      timers_.erase(t);
      TimePoint next = t->deadline_ + t->repeat_;
      t->deadline_ = next > t_now ? next : t_now + t->repeat_;
      t->arm(*this);
    } else {
      t->disarm(*this);
    }
    ++fired;
    // The callback may restart or destroy its timer, replacing or freeing cb_ while it
    // runs: run it from a local and give it back only if the timer still wants it.
    Callback cb = std::move(t->cb_);
    bool destroyed = false;
    bool* outer = std::exchange(t->destroyed_, &destroyed);
    guarded([&cb] { cb(); });
    if (destroyed) {
      if (outer) *outer = true;
      continue;
    }
    t->destroyed_ = outer;
    if (!t->cb_) t->cb_ = std::move(cb);
  }
  pass_now_ = outer_pass;
  return fired;
}

void Loop::dispatch_fd(int fd, unsigned events) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  // Error and hangup go to every watch (a reader or writer then finds out by trying),
  // or a level-triggered poller would report them forever to nobody.
  unsigned always = events & (kError | kHangup);
  if (always) events |= kReadable | kWritable;
  // A callback may stop any watch, or run the loop again (nested dispatch): every
  // cursor in the chain is moved past a watch that is unlinked under it.
  Cursor cur{nullptr, cursor_};
  cursor_ = &cur;
  for (IoWatch* w = fds_[fd].head; w; w = cur.next) {
    cur.next = w->next_;
    unsigned mine = (events & w->interest_) | always;
    if (mine) guarded([w, mine] { w->cb_(mine); });
  }
  cursor_ = cur.outer;
}

}  // namespace corio
