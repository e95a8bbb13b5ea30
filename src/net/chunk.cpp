#include <corio/chunk.hpp>

#include <corio/loop.hpp>

#include <new>

namespace corio {
namespace {

// The loop owns its pool through this: the pool is orphaned, not deleted, with the loop.
struct PoolService final : Loop::Service {
  ChunkPool* pool;
  explicit PoolService(ChunkPool* p) : pool(p) {}
  ~PoolService() override { pool->orphan(); }
};
const char kPoolKey = 0;

}  // namespace

ChunkPool& ChunkPool::of(Loop& loop) {
  if (auto* s = loop.service(&kPoolKey)) return *static_cast<PoolService*>(s)->pool;
  auto s = std::make_unique<PoolService>(new ChunkPool);
  return *static_cast<PoolService&>(loop.add_service(&kPoolKey, std::move(s))).pool;
}

Chunk ChunkPool::take() {
  char* buf;
  if (!free_.empty()) {
    buf = free_.back();
    free_.pop_back();
  } else {
    buf = static_cast<char*>(::operator new(kBufferSize));  // uninitialised: only read() writes it
  }
  ++lent_;
  Chunk c;
  c.pool_ = this;
  c.data_ = buf;
  return c;
}

void ChunkPool::give_back(char* buf) noexcept {
  --lent_;
  if (!orphaned_ && free_.size() < max_idle_) {
    free_.push_back(buf);  // within the reserved capacity
    return;
  }
  ::operator delete(buf);
  if (orphaned_ && lent_ == 0) delete this;
}

void ChunkPool::set_max_idle(std::size_t n) {
  while (free_.size() > n) {
    ::operator delete(free_.back());
    free_.pop_back();
  }
  free_.reserve(n);
  max_idle_ = n;
}

void ChunkPool::orphan() noexcept {
  orphaned_ = true;
  if (lent_ == 0) {
    delete this;
    return;
  }
  for (char* buf : free_) ::operator delete(buf);
  free_.clear();
}

ChunkPool::~ChunkPool() {
  for (char* buf : free_) ::operator delete(buf);
}

}  // namespace corio
