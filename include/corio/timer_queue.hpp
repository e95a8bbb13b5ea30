// TimerQueue: a 4-ary min-heap of armed timers. Each entry caches its deadline so sifting
// never touches the Timer objects; each Timer stores its heap index so cancel is O(log n).
#pragma once
#include <corio/timer.hpp>

#include <vector>

namespace corio {

class TimerQueue {
 public:
  void push(Timer* t);
  void erase(Timer* t) noexcept;
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  Timer* top() const noexcept { return heap_.front().timer; }
  TimePoint next_deadline() const noexcept { return heap_.front().deadline; }
  std::uint64_t next_seq() noexcept { return ++seq_; }

 private:
  struct Entry {
    TimePoint deadline;
    std::uint64_t seq;
    Timer* timer;
    bool before(const Entry& o) const noexcept {
      return deadline < o.deadline || (deadline == o.deadline && seq < o.seq);
    }
  };
  void place(std::size_t i, const Entry& e) noexcept {
    heap_[i] = e;
    e.timer->index_ = i;
  }
  void sift_up(std::size_t i, Entry e) noexcept;
  void sift_down(std::size_t i, Entry e) noexcept;

  std::vector<Entry> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace corio
