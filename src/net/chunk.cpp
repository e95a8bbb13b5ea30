#include <corio/chunk.hpp>

#include <new>

namespace corio {

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
