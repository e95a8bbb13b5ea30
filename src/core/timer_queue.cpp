#include <corio/timer_queue.hpp>

namespace corio {

// A 4-ary heap is shallower than a binary one (log4 n levels) and its four children share
// a cache line pair: fewer misses on the sift-down that dominates pop.
static constexpr std::size_t kArity = 4;

void TimerQueue::push(Timer* t) {
  heap_.push_back({});
  sift_up(heap_.size() - 1, Entry{t->deadline_, t->seq_, t});
}

void TimerQueue::erase(Timer* t) noexcept {
  std::size_t i = t->index_;
  t->index_ = Timer::kInactive;
  Entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;  // it was the last entry
  if (i > 0 && last.before(heap_[(i - 1) / kArity]))
    sift_up(i, last);
  else
    sift_down(i, last);
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
