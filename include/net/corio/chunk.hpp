// Chunk: bytes in a buffer lent by a loop's ChunkPool, as Stream::read_chunk yields them.
// A connection waiting for data then owns no buffer: one is taken only once bytes have
// arrived (libuv's alloc-on-read) and goes back to the pool when the Chunk is destroyed.
// The pool keeps at most max_idle() buffers for reuse and frees the others, so memory
// comes back after a burst. Chunks, like everything on a loop, stay on the loop's thread.
//
//   auto [ec, chunk] = co_await s.read_chunk();
//   if (!ec) co_await s.write_all(chunk);  // a Chunk is a std::string_view
#pragma once
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace corio {

class ChunkPool;
class Loop;

class Chunk {
 public:
  Chunk() noexcept = default;  // empty, no buffer
  Chunk(Chunk&& o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Chunk& operator=(Chunk&& o) noexcept {
    if (this != &o) {
      reset();
      pool_ = std::exchange(o.pool_, nullptr);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~Chunk() { reset(); }

  char* data() noexcept { return data_; }
  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t capacity() const noexcept;  // 0 without a buffer
  void resize(std::size_t n) noexcept { size_ = n; }  // n <= capacity(): bytes written into data()
  std::string_view view() const noexcept { return {data_, size_}; }
  operator std::string_view() const noexcept { return view(); }
  void reset() noexcept;  // gives the buffer back now

 private:
  friend class ChunkPool;
  ChunkPool* pool_ = nullptr;
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

// A bounded free list of equal buffers. Each loop has one (of()); it outlives the loop as
// long as chunks taken from it do (they free their buffers then).
class ChunkPool {
 public:
  static ChunkPool& of(Loop& loop);  // the loop's, created on first use

  static constexpr std::size_t kBufferSize = 64 * 1024;
  static constexpr std::size_t kDefaultMaxIdle = 8;

  ChunkPool() { free_.reserve(max_idle_); }
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  Chunk take();  // an empty chunk with a buffer of kBufferSize bytes
  std::size_t idle() const noexcept { return free_.size(); }  // buffers kept for reuse
  std::size_t lent() const noexcept { return lent_; }         // chunks alive
  std::size_t max_idle() const noexcept { return max_idle_; }
  void set_max_idle(std::size_t n);  // frees buffers beyond n at once

  // The owner (the loop) is going away: free the idle buffers, and the pool itself as
  // soon as no chunk is lent.
  void orphan() noexcept;

 private:
  friend class Chunk;
  ~ChunkPool();
  void give_back(char* buf) noexcept;

  std::vector<char*> free_;  // capacity >= max_idle_: giving back never allocates
  std::size_t max_idle_ = kDefaultMaxIdle;
  std::size_t lent_ = 0;
  bool orphaned_ = false;
};

inline std::size_t Chunk::capacity() const noexcept { return data_ ? ChunkPool::kBufferSize : 0; }

inline void Chunk::reset() noexcept {
  if (data_) pool_->give_back(std::exchange(data_, nullptr));
  pool_ = nullptr;
  size_ = 0;
}

}  // namespace corio
