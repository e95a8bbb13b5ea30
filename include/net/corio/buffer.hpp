// ReadBuffer: bytes received but not yet consumed. Grows by doubling up to what the
// reader asks for; consumed space is reclaimed by sliding, never by reallocating.
#pragma once
#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

namespace corio {

class ReadBuffer {
 public:
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  std::string_view view() const noexcept { return {data_.data() + begin_, size()}; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() noexcept { begin_ = end_ = 0; }

  // Room for at least `want` more bytes at the end (never beyond what is asked).
  char* prepare(std::size_t want) {
    if (data_.size() - end_ < want) {
      if (begin_ > 0) {  // slide the unread bytes to the front first
        std::memmove(data_.data(), data_.data() + begin_, size());
        end_ -= begin_;
        begin_ = 0;
      }
      if (data_.size() - end_ < want) {
        std::size_t cap = data_.empty() ? 4096 : data_.size();
        while (cap - end_ < want) cap *= 2;
        data_.resize(cap);
      }
    }
    return data_.data() + end_;
  }
  std::size_t room() const noexcept { return data_.size() - end_; }
  void commit(std::size_t n) noexcept { end_ += n; }
  // Frees the memory of an empty buffer (an idle connection keeps nothing).
  void shrink() {
    if (empty()) std::vector<char>().swap(data_);
  }

 private:
  std::vector<char> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace corio
