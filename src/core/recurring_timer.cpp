#include <corio/recurring_timer.hpp>

#include <corio/loop.hpp>

#include <exception>
#include <random>
#include <stdexcept>
#include <utility>

namespace corio {

const char* cancel_reason_name(CancelReason reason) noexcept {
  switch (reason) {
    case CancelReason::user: return "USER";
    case CancelReason::gc: return "GC";
    case CancelReason::system: return "SYSTEM";
  }
  return "USER";
}

namespace {

// One generator per thread, seeded once: a draw per timer must stay cheap.
Duration draw_jitter(Duration jitter) {
  if (jitter <= Duration::zero()) return Duration::zero();
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::uniform_int_distribution<Duration::rep> d(0, jitter.count());
  return Duration(d(gen));
}

// base + k * step, saturated at TimePoint::max(): a hostile interval means "never", not
// an overflow into the past.
TimePoint grid_point(TimePoint base, __int128 k, Duration step) {
  __int128 t = static_cast<__int128>(base.time_since_epoch().count()) + k * step.count();
  constexpr __int128 kMax = TimePoint::max().time_since_epoch().count();
  return t >= kMax ? TimePoint::max() : TimePoint(Duration(static_cast<Duration::rep>(t)));
}

// How many grid points (k >= 1) lie at or before x.
__int128 points_until(TimePoint base, Duration step, TimePoint x) {
  if (step <= Duration::zero() || x < grid_point(base, 1, step)) return 0;
  return static_cast<__int128>((x - base).count()) / step.count();
}

void validate(const RecurringTimer::Options& o) {
  if (o.interval < Duration::zero()) throw std::invalid_argument("RecurringTimer: interval must not be negative");
  if (o.jitter < Duration::zero()) throw std::invalid_argument("RecurringTimer: jitter must not be negative");
  if (o.immediate && !o.recurring) throw std::invalid_argument("RecurringTimer: immediate requires recurring");
  if (o.check != Duration::zero() && !o.recurring)
    throw std::invalid_argument("RecurringTimer: check requires recurring");
  if (o.check < Duration::zero() || o.check > o.interval)
    throw std::invalid_argument("RecurringTimer: check must be in [0, interval]");
}

}  // namespace

struct RecurringTimer::Run::State {
  RecurringTimer::Impl* impl = nullptr;  // cleared when the run ends or the timer dies
};

struct RecurringTimer::Impl {
  Impl(Loop& l, Options o, Expire e, Cancel c)
      : loop(l), timer(l), opt(std::move(o)), expire(std::move(e)), on_cancel(std::move(c)) {
    step = opt.check > Duration::zero() ? opt.check : opt.interval;
  }
  ~Impl() {
    if (run) run->impl = nullptr;
    if (destroyed) *destroyed = true;
  }

  // Calls f (a user callback) with the timer's death in mind: false if f destroyed it.
  // An exception goes to the loop's handler; the timer goes on.
  template <class F>
  bool call(F&& f) {
    Loop& l = loop;
    bool dead = false;
    bool* outer = std::exchange(destroyed, &dead);
    try {
      f();
    } catch (...) {
      l.report(std::current_exception());
    }
    if (dead) {
      if (outer) *outer = true;
      return false;
    }
    destroyed = outer;
    return true;
  }

  void start(TimePoint t0) {
    base = grid_point(t0, 1, draw_jitter(opt.jitter));
    timer.start_at(opt.immediate ? t0 : grid_point(base, 1, step), [this] { fire(); });
  }

  void fire() {
    if (!opt.recurring) {
      done = true;
      begin_run();
      return;
    }
    if (run) {  // only on a grid with a step: an interval-0 timer waits for the end
      ++skipped;
      arm_next();
      return;
    }
    bool go = true;
    if (opt.gate) {
      auto gate = std::move(opt.gate);
      go = false;
      if (!call([&] { go = gate(); })) return;
      if (!opt.gate) opt.gate = std::move(gate);
      if (cancelled) return;
    }
    if (go) {
      TimePoint began = Loop::now();
      if (!begin_run() || cancelled) return;
      // A run that returned late (or lasts) covered the checks up to now.
      skipped += static_cast<std::uint64_t>(points_until(base, step, Loop::now()) - points_until(base, step, began));
    }
    arm_next();
  }

  // Starts a run and calls expire; false if expire destroyed the timer.
  bool begin_run() {
    auto state = std::make_shared<Run::State>();
    state->impl = this;
    run = state.get();
    ++runs;
    in_check = true;
    Expire e = std::move(expire);
    if (!call([&] { e(Run(std::move(state))); })) return false;
    in_check = false;
    if (!expire) expire = std::move(e);
    return true;
  }

  // The next check: the first grid point after now; with no step, the next loop turn once
  // no run lasts (run_ended arms it otherwise).
  void arm_next() {
    if (cancelled || done) return;
    if (step == Duration::zero()) {
      if (!run) timer.start(Duration::zero(), [this] { fire(); });
      return;
    }
    TimePoint now = Loop::now();
    timer.start_at(grid_point(base, points_until(base, step, now) + 1, step), [this] { fire(); });
  }

  void run_ended() noexcept {
    run = nullptr;
    if (in_check || cancelled || done || step != Duration::zero()) return;
    try {
      arm_next();
    } catch (...) {  // no room in the timer queue: the timer stops, not silently
      loop.report(std::current_exception());
    }
  }

  Loop& loop;
  Timer timer;
  Options opt;
  Duration step{};
  TimePoint base{};  // t0 + j: check k is due at base + k * step
  Expire expire;
  Cancel on_cancel;
  Run::State* run = nullptr;  // the run in progress
  std::uint64_t runs = 0;
  std::uint64_t skipped = 0;
  bool cancelled = false;
  bool done = false;      // a one-shot timer's check came
  bool in_check = false;  // expire is running: fire() re-arms after it
  bool* destroyed = nullptr;
};

// ---- Run ----

RecurringTimer::Run::Run(Run&& other) noexcept : state_(std::move(other.state_)) {}

RecurringTimer::Run& RecurringTimer::Run::operator=(Run&& other) noexcept {
  if (this != &other) {
    finish();
    state_ = std::move(other.state_);
  }
  return *this;
}

void RecurringTimer::Run::finish() noexcept {
  auto s = std::move(state_);
  if (!s || !s->impl) return;
  Impl* impl = std::exchange(s->impl, nullptr);
  impl->run_ended();
}

// ---- RecurringTimer ----

RecurringTimer::RecurringTimer(Loop& loop, Options options, Expire expire, Cancel cancel) {
  validate(options);
  if (!expire) throw std::invalid_argument("RecurringTimer: expire callback required");
  impl_ = std::make_unique<Impl>(loop, std::move(options), std::move(expire), std::move(cancel));
  impl_->start(Loop::now());
}

RecurringTimer::~RecurringTimer() = default;

bool RecurringTimer::cancel(CancelReason reason) {
  Impl& i = *impl_;
  if (i.cancelled) return false;
  i.cancelled = true;
  i.timer.stop();
  if (i.on_cancel) {
    Cancel cb = std::move(i.on_cancel);
    i.call([&] { cb(reason); });  // called once: it is not given back
  }
  return true;
}

bool RecurringTimer::active() const noexcept { return !impl_->cancelled && !impl_->done; }
bool RecurringTimer::running() const noexcept { return impl_->run != nullptr; }
std::uint64_t RecurringTimer::runs() const noexcept { return impl_->runs; }
std::uint64_t RecurringTimer::skipped() const noexcept { return impl_->skipped; }

TimePoint RecurringTimer::next() const noexcept {
  return active() && impl_->timer.active() ? impl_->timer.deadline() : TimePoint::max();
}

void RecurringTimer::unref() noexcept { impl_->timer.unref(); }

}  // namespace corio
