#include <corio/timer_queue.hpp>

#include <corio/timer.hpp>

namespace corio {

// A 4-ary heap is shallower than a binary one (log4 n levels) and its four children share
// a cache line pair: fewer misses on the sift-down that dominates pop.
static constexpr std::size_t kArity = 4;

std::int64_t TimerQueue::slot_of(TimePoint t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() / kSlotNs;
}

void TimerQueue::push(Timer* t) {
  if (wheeled_ == 0) {  // an empty wheel starts its window at the present
    std::int64_t now = slot_of(Clock::now());
    if (now > cur_) cur_ = now;
  }
  std::int64_t s = slot_of(t->deadline_);
  if (s < cur_ || s >= cur_ + static_cast<std::int64_t>(kSlots)) return heap_push(t);
  if (!wheel_) wheel_ = std::make_unique<Wheel>();
  std::size_t i = static_cast<std::size_t>(s) % kSlots;
  std::vector<Timer*>& v = wheel_->slot[i];
  t->index_ = kWheeled | i << 32 | v.size();
  v.push_back(t);
  wheel_->busy[i / 64] |= std::uint64_t{1} << (i % 64);
  ++wheeled_;
}

void TimerQueue::erase(Timer* t) noexcept {
  std::size_t i = t->index_;
  t->index_ = Timer::kInactive;
  if (i & kWheeled) {  // swap with the slot's last timer
    std::size_t s = (i & ~kWheeled) >> 32, pos = i & 0xffffffffu;
    std::vector<Timer*>& v = wheel_->slot[s];
    Timer* last = v.back();
    v.pop_back();
    if (last != t) {
      v[pos] = last;
      last->index_ = kWheeled | s << 32 | pos;
    }
    if (v.empty()) wheel_->busy[s / 64] &= ~(std::uint64_t{1} << (s % 64));
    --wheeled_;
    return;
  }
  Entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;  // it was the last entry
  if (i > 0 && last.before(heap_[(i - 1) / kArity]))
    sift_up(i, last);
  else
    sift_down(i, last);
}

std::int64_t TimerQueue::first_busy_slot() const noexcept {
  std::size_t from = static_cast<std::size_t>(cur_) % kSlots;
  for (std::size_t k = 0; k <= kSlots / 64; ++k) {  // whole words, wrapping once
    std::size_t w = (from / 64 + k) % (kSlots / 64);
    std::uint64_t bits = wheel_->busy[w];
    if (k == 0) bits &= ~std::uint64_t{0} << (from % 64);  // not the slots before `from`
    if (k == kSlots / 64) bits &= (std::uint64_t{1} << (from % 64)) - 1;  // ... which wrap last
    if (!bits) continue;
    std::size_t i = w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
    return cur_ + static_cast<std::int64_t>((i + kSlots - from) % kSlots);
  }
  return cur_;  // not reached while wheeled_ > 0
}

void TimerQueue::settle() {
  while (wheeled_ > 0) {
    std::int64_t s = first_busy_slot();
    // Every timer of slot s is due at or after its start: done if the heap's top is earlier.
    if (!heap_.empty() && heap_.front().deadline < TimePoint(std::chrono::nanoseconds(s * kSlotNs))) return;
    std::size_t i = static_cast<std::size_t>(s) % kSlots;
    std::vector<Timer*>& v = wheel_->slot[i];
    heap_.reserve(heap_.size() + v.size());  // the only step that can fail, before any change
    wheeled_ -= v.size();
    for (Timer* t : v) heap_push(t);
    if (v.capacity() > 4096)
      std::vector<Timer*>().swap(v);  // give a burst's memory back
    else
      v.clear();
    wheel_->busy[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    cur_ = s + 1;
  }
}

inline void TimerQueue::place(std::size_t i, const Entry& e) noexcept {
  heap_[i] = e;
  e.timer->index_ = i;
}

void TimerQueue::heap_push(Timer* t) {
  heap_.push_back({});
  sift_up(heap_.size() - 1, Entry{t->deadline_, t->seq_, t});
}

void TimerQueue::sift_up(std::size_t i, Entry e) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / kArity;
    if (!e.before(heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void TimerQueue::sift_down(std::size_t i, Entry e) noexcept {
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t first = i * kArity + 1;
    if (first >= n) break;
    std::size_t best = first;
    std::size_t end = first + kArity < n ? first + kArity : n;
    for (std::size_t c = first + 1; c < end; ++c)
      if (heap_[c].before(heap_[best])) best = c;
    if (!heap_[best].before(e)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, e);
}

}  // namespace corio
