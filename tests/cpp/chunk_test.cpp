// ChunkPool and Chunk: buffers are lent and given back, reused, bounded, and a chunk may
// outlive its loop.
#include <corio/chunk.hpp>
#include <corio/loop.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

using corio::Chunk;
using corio::ChunkPool;
using corio::Loop;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using ChunkTest = corio_test::LoopFixture;

TEST_F(ChunkTest, TakenBufferIsLentAndGivenBack) {
  ChunkPool& pool = ChunkPool::of(loop);
  EXPECT_EQ(&pool, &ChunkPool::of(loop));  // one per loop
  {
    Chunk c = pool.take();
    EXPECT_EQ(c.capacity(), ChunkPool::kBufferSize);
    EXPECT_TRUE(c.empty());
    std::memcpy(c.data(), "hello", 5);
    c.resize(5);
    std::string_view v = c;
    EXPECT_EQ(v, "hello");
    EXPECT_EQ(pool.lent(), 1u);
    EXPECT_EQ(pool.idle(), 0u);
  }
  EXPECT_EQ(pool.lent(), 0u);
  EXPECT_EQ(pool.idle(), 1u);
}

TEST_F(ChunkTest, AGivenBackBufferIsReused) {
  ChunkPool& pool = ChunkPool::of(loop);
  Chunk a = pool.take();
  const char* first = a.data();
  a.reset();
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.capacity(), 0u);
  Chunk b = pool.take();
  EXPECT_EQ(b.data(), first);
  EXPECT_EQ(pool.idle(), 0u);
}

TEST_F(ChunkTest, TheFreeListIsBounded) {
  ChunkPool& pool = ChunkPool::of(loop);
  EXPECT_EQ(pool.max_idle(), ChunkPool::kDefaultMaxIdle);
  pool.set_max_idle(3);
  {
    std::vector<Chunk> many;
    for (int i = 0; i < 10; ++i) many.push_back(pool.take());
    EXPECT_EQ(pool.lent(), 10u);
  }
  EXPECT_EQ(pool.lent(), 0u);
  EXPECT_EQ(pool.idle(), 3u);  // the other seven were freed
  pool.set_max_idle(1);
  EXPECT_EQ(pool.idle(), 1u);  // shrinking frees at once
  pool.set_max_idle(0);
  EXPECT_EQ(pool.idle(), 0u);
  { Chunk c = pool.take(); }
  EXPECT_EQ(pool.idle(), 0u);
}

TEST_F(ChunkTest, MovesTransferTheBuffer) {
  ChunkPool& pool = ChunkPool::of(loop);
  Chunk a = pool.take();
  a.resize(3);
  const char* buf = a.data();
  Chunk b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data(), buf);
  EXPECT_EQ(b.size(), 3u);
  Chunk c = pool.take();
  EXPECT_EQ(pool.lent(), 2u);
  c = std::move(b);  // c's own buffer goes back
  EXPECT_EQ(pool.lent(), 1u);
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(c.data(), buf);
  Chunk none;
  EXPECT_TRUE(none.view().empty());
  none.reset();  // harmless without a buffer
}

// The pool outlives its loop while a chunk is lent; the chunk frees its buffer (and the
// pool) when it goes (ASan reports a leak or a use after free otherwise).
TEST_F(ChunkTest, AChunkMayOutliveItsLoop) {
  std::optional<Chunk> kept;
  {
    Loop loop;
    { Chunk idle = ChunkPool::of(loop).take(); }  // one idle buffer, freed with the loop
    kept.emplace(ChunkPool::of(loop).take());
    std::memcpy(kept->data(), "x", 1);
    kept->resize(1);
  }
  EXPECT_EQ(kept->view(), "x");
  kept.reset();
}

}  // namespace
