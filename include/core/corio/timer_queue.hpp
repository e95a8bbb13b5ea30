// TimerQueue: the armed timers of a loop. Deadlines within the next ~4 s wait in a wheel
// of 4 ms slots, where arming and cancelling are O(1) however many timers are armed; just
// before a slot's time its timers move into a small 4-ary min-heap, which orders them
// exactly (deadline, then arming order). Deadlines outside the wheel's window go straight
// into the heap. At 1,000,000 armed timers a heap alone paid a chain of cache misses per
// sift; the wheel keeps the heap small enough to stay in cache.
#pragma once
#include <corio/clock.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace corio {

class Timer;

class TimerQueue {
 public:
  void push(Timer* t);
  void erase(Timer* t) noexcept;
  bool empty() const noexcept { return heap_.empty() && wheeled_ == 0; }
  std::size_t size() const noexcept { return heap_.size() + wheeled_; }
  // The earliest timer and its deadline (not empty()).
  Timer* top() {
    settle();
    return heap_.front().timer;
  }
  TimePoint next_deadline() {
    settle();
    return heap_.front().deadline;
  }
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
  void place(std::size_t i, const Entry& e) noexcept;
  void heap_push(Timer* t);
  void sift_up(std::size_t i, Entry e) noexcept;
  void sift_down(std::size_t i, Entry e) noexcept;

  // The wheel: slot number s (absolute: deadline / 4 ms) lives in slot[s % kSlots] while
  // cur_ <= s < cur_ + kSlots; a wheeled Timer's index_ is kWheeled | slot << 32 | position.
  static constexpr std::int64_t kSlotNs = 4'000'000;
  static constexpr std::size_t kSlots = 1024;
  static constexpr std::size_t kWheeled = std::size_t{1} << 62;
  static std::int64_t slot_of(TimePoint t) noexcept;
  void settle();  // moves slots into the heap until its top is the earliest timer
  std::int64_t first_busy_slot() const noexcept;
  struct Wheel {
    std::vector<Timer*> slot[kSlots];
    std::uint64_t busy[kSlots / 64] = {};  // bit per non-empty slot
  };

  std::vector<Entry> heap_;
  std::unique_ptr<Wheel> wheel_;  // made on first use
  std::size_t wheeled_ = 0;       // timers in the wheel
  std::int64_t cur_ = 0;          // the first slot not yet moved into the heap
  std::uint64_t seq_ = 0;
};

}  // namespace corio
