// Stream::read_chunk: the bytes in a lent buffer, end of stream, timeout, close, bytes a
// line reader left, throttling, and no buffer held while waiting.
#include <corio/chunk.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <optional>
#include <string>

#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Chunk;
using corio::Direction;
using corio::Error;
using corio::Loop;
using corio::Result;
using corio::Stream;
using corio::Task;
using corio_net_test::run_task;
using corio_net_test::stream_pair;
using corio_test::ms;

using Read = std::optional<Result<Chunk>>;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using ReadChunkTest = corio_test::LoopFixture;

Task<void> read_one(Stream& s, Read& out, std::size_t max = corio::ChunkPool::kBufferSize,
                    std::optional<corio::Duration> timeout = 5s) {
  out = co_await s.read_chunk(max, timeout);
}

TEST_F(ReadChunkTest, ReturnsTheBytesInALentBuffer) {
  auto [a, b] = stream_pair(loop);
  ASSERT_EQ(::write(b.fd(), "hello", 5), 5);
  Read got;
  ASSERT_TRUE(run_task(loop, read_one(a, got)));
  ASSERT_FALSE(got->error) << got->error.message();
  EXPECT_EQ(got->value.view(), "hello");
  EXPECT_EQ(corio::ChunkPool::of(loop).lent(), 1u);
  got.reset();
  EXPECT_EQ(corio::ChunkPool::of(loop).lent(), 0u);
  EXPECT_GE(corio::ChunkPool::of(loop).idle(), 1u);
}

TEST_F(ReadChunkTest, AtMostMaxBytes) {
  auto [a, b] = stream_pair(loop);
  ASSERT_EQ(::write(b.fd(), "0123456789", 10), 10);
  Read first, second, none;
  ASSERT_TRUE(run_task(loop, read_one(a, first, 4)));
  ASSERT_TRUE(run_task(loop, read_one(a, second)));
  ASSERT_TRUE(run_task(loop, read_one(a, none, 0)));  // at once, even with nothing to read
  EXPECT_EQ(first->value.view(), "0123");
  EXPECT_EQ(second->value.view(), "456789");
  EXPECT_FALSE(none->error);
  EXPECT_TRUE(none->value.empty());
}

TEST_F(ReadChunkTest, EchoesThroughWriteAll) {
  auto [a, b] = stream_pair(loop);
  ASSERT_EQ(::write(b.fd(), "ping", 4), 4);
  ASSERT_TRUE(run_task(loop, [](Stream& s) -> Task<void> {
    auto [ec, chunk] = co_await s.read_chunk();
    EXPECT_FALSE(ec);
    EXPECT_FALSE(co_await s.write_all(chunk));
  }(a)));
  char buf[8];
  ASSERT_EQ(::read(b.fd(), buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST_F(ReadChunkTest, EndOfStreamIsClosed) {
  auto [a, b] = stream_pair(loop);
  ASSERT_EQ(::write(b.fd(), "last", 4), 4);
  b = Stream();  // the peer goes away after its last bytes
  Read data, end;
  ASSERT_TRUE(run_task(loop, read_one(a, data)));
  EXPECT_EQ(data->value.view(), "last");
  ASSERT_TRUE(run_task(loop, read_one(a, end)));
  EXPECT_EQ(end->error, Error::closed);
  EXPECT_EQ(end->value.data(), nullptr);
  data.reset();
  EXPECT_EQ(corio::ChunkPool::of(loop).lent(), 0u);
}

TEST_F(ReadChunkTest, TimesOutWithoutHoldingABuffer) {
  auto [a, b] = stream_pair(loop);
  Read got;
  auto t0 = corio::Clock::now();
  corio::spawn(loop, read_one(a, got, corio::ChunkPool::kBufferSize, 50ms));
  loop.run_once(10ms);
  EXPECT_FALSE(got);
  EXPECT_EQ(corio::ChunkPool::of(loop).lent(), 0u);  // waiting costs no buffer
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return got.has_value(); }, 2s));
  EXPECT_GE(ms(corio::Clock::now() - t0), 50);
  EXPECT_EQ(got->error, Error::timeout);
  EXPECT_EQ(got->value.data(), nullptr);
  EXPECT_EQ(corio::ChunkPool::of(loop).lent(), 0u);
}

TEST_F(ReadChunkTest, CloseWakesAWaitingRead) {
  auto [a, b] = stream_pair(loop);
  Read got;
  corio::spawn(loop, read_one(a, got));
  loop.run_once(10ms);
  EXPECT_FALSE(got);
  a.close();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->error, Error::closed);
  EXPECT_EQ(corio::ChunkPool::of(loop).lent(), 0u);
}

TEST_F(ReadChunkTest, BytesALineReaderLeftComeFirst) {
  auto [a, b] = stream_pair(loop);
  ASSERT_EQ(::write(b.fd(), "line\nrest", 9), 9);
  std::string line;
  Read rest;
  ASSERT_TRUE(run_task(loop, [](Stream& s, std::string& line, Read& rest) -> Task<void> {
    auto r = co_await s.read_line(5s);
    line = r.value;
    rest = co_await s.read_chunk();
  }(a, line, rest)));
  EXPECT_EQ(line, "line");
  ASSERT_FALSE(rest->error);
  EXPECT_EQ(rest->value.view(), "rest");
}

// The throttle state is made on first use; once made it still limits read_chunk.
TEST_F(ReadChunkTest, AThrottledReadTakesItsTime) {
  auto [a, b] = stream_pair(loop);
  constexpr std::size_t kSize = 60000;
  b.socket().throttle(Direction::read).set_rate(40000, Loop::now());
  corio::spawn(loop, [](Stream& s) -> Task<void> { (void)co_await s.write_all(std::string(kSize, 'r'), 10s); }(a));
  std::size_t total = 0;
  auto t0 = corio::Clock::now();
  ASSERT_TRUE(run_task(loop, [](Stream& s, std::size_t& total) -> Task<void> {
    while (total < kSize) {
      auto [ec, chunk] = co_await s.read_chunk(corio::ChunkPool::kBufferSize, 5s);
      if (ec) co_return;
      total += chunk.size();
    }
  }(b, total), 10s));
  EXPECT_EQ(total, kSize);
  EXPECT_GE(ms(corio::Clock::now() - t0), 1300);  // 1.5 s at the rate, the bucket starting empty
  EXPECT_LT(ms(corio::Clock::now() - t0), 2500);
}

}  // namespace
