// BlockPool (recycles per-message operations): blocks come back for
// the same size, at most 256 are kept per size, and sizes beyond its four lists still work.
#include <corio/block_pool.hpp>

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace {

using corio::BlockPool;

TEST(BlockPool, GivesBackTheBlockOfTheSameSize) {
  BlockPool pool;
  void* a = pool.take(96);
  void* b = pool.take(128);
  pool.give(a, 96);
  pool.give(b, 128);
  EXPECT_EQ(pool.take(96), a);  // not b: sizes are kept apart
  EXPECT_EQ(pool.take(128), b);
  pool.give(a, 96);
  pool.give(b, 128);
}

TEST(BlockPool, KeepsAtMost256BlocksPerSize) {
  BlockPool pool;
  std::vector<void*> blocks;
  for (int i = 0; i < 300; ++i) blocks.push_back(pool.take(64));
  for (void* p : blocks) pool.give(p, 64);  // the last 44 are freed, not kept
  std::set<void*> given(blocks.begin(), blocks.end());
  std::vector<void*> again;
  int reused = 0;
  for (int i = 0; i < 300; ++i) {
    again.push_back(pool.take(64));
    if (i < 256 && given.count(again.back())) ++reused;
  }
  EXPECT_EQ(reused, 256);  // the kept ones, most recent first
  for (void* p : again) pool.give(p, 64);
}

TEST(BlockPool, MoreSizesThanListsFallBackToTheHeap) {
  BlockPool pool;
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t n = 16; n <= 16 * 8; n += 16) blocks.emplace_back(pool.take(n), n);
  for (auto [p, n] : blocks) pool.give(p, n);  // four sizes get lists, the others are freed
  for (auto [p, n] : blocks) {
    void* q = pool.take(n);
    if (n <= 64) {
      EXPECT_EQ(q, p) << n;
    }
    pool.give(q, n);
  }
}

}  // namespace
