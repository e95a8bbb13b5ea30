// Tasks and awaiters: values and exceptions through co_await, spawn semantics, sleep_for,
// readable/writable with timeouts and errors, destruction with the loop, deep chains.
#include <corio/awaiters.hpp>
#include <corio/loop.hpp>
#include <corio/task.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <pthread.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Clock;
using corio::Duration;
using corio::Loop;
using corio::readable;
using corio::sleep_for;
using corio::spawn;
using corio::Task;
using corio::TimePoint;
using corio::Timer;
using corio::writable;
using corio_test::ms;
using corio_test::Pipe;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using TaskTest = corio_test::LoopFixture;

// Sets a flag when the coroutine frame holding it is destroyed.
struct OnDestroy {
  bool& flag;
  ~OnDestroy() { flag = true; }
};

Task<int> answer() { co_return 42; }

Task<int> add_later(Loop& loop, int a, int b) {
  co_await sleep_for(loop, 1ms);
  co_return a + b;
}

Task<void> sum_into(Loop& loop, int& out) {
  int x = co_await answer();
  int y = co_await add_later(loop, 1, 2);
  out = x + y;
}

TEST_F(TaskTest, AwaitedTaskYieldsItsValue) {
  int out = 0;
  spawn(loop, sum_into(loop, out));
  EXPECT_EQ(out, 0);  // suspended in add_later's sleep
  loop.run();
  EXPECT_EQ(out, 45);
}

Task<std::unique_ptr<std::string>> make_box(std::string s) { co_return std::make_unique<std::string>(std::move(s)); }

Task<void> unbox(std::string& out) {
  std::unique_ptr<std::string> p = co_await make_box("move-only");
  out = *p;
}

TEST_F(TaskTest, MoveOnlyResult) {
  std::string out;
  spawn(loop, unbox(out));  // nothing suspends: finished before spawn returns
  EXPECT_EQ(out, "move-only");
  EXPECT_FALSE(loop.alive());
}

Task<int> fails_after(Loop& loop, Duration d) {
  if (d > Duration::zero()) co_await sleep_for(loop, d);
  throw std::runtime_error("child failed");
}

Task<void> catches(Loop& loop, Duration d, std::string& msg) {
  try {
    (void)co_await fails_after(loop, d);
    msg = "no exception";
  } catch (const std::exception& e) {
    msg = e.what();
  }
}

TEST_F(TaskTest, ExceptionPropagatesToTheAwaiter) {
  std::vector<std::string> errors;
  corio_test::capture_exceptions(loop, errors);
  std::string sync_msg, async_msg;
  spawn(loop, catches(loop, 0ms, sync_msg));
  spawn(loop, catches(loop, 2ms, async_msg));
  loop.run();
  EXPECT_EQ(sync_msg, "child failed");
  EXPECT_EQ(async_msg, "child failed");
  EXPECT_TRUE(errors.empty());  // caught: nothing reaches the loop
}

Task<void> set_flag(bool& f) {
  f = true;
  co_return;
}

TEST_F(TaskTest, TasksAreLazyAndOwnTheirFrame) {
  bool ran = false;
  {
    Task<void> t = set_flag(ran);
    EXPECT_TRUE(t.valid());
    EXPECT_FALSE(t.done());
    Task<void> u = std::move(t);
    EXPECT_FALSE(t.valid());
    EXPECT_TRUE(u.valid());
  }
  EXPECT_FALSE(ran);  // destroyed without ever running
}

Task<void> steps(Loop& loop, std::vector<int>& log) {
  log.push_back(1);
  co_await sleep_for(loop, 1ms);
  log.push_back(2);
  co_await sleep_for(loop, 1ms);
  log.push_back(3);
}

TEST_F(TaskTest, SpawnRunsUntilTheFirstSuspension) {
  std::vector<int> log;
  spawn(loop, steps(loop, log));
  EXPECT_EQ(log, std::vector<int>{1});
  EXPECT_TRUE(loop.alive());  // the sleep's timer holds the loop
  loop.run();
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
}

Task<void> timed_sleep(Loop& loop, Duration d, Duration& took) {
  const TimePoint t0 = Clock::now();
  co_await sleep_for(loop, d);
  took = Clock::now() - t0;
}

TEST_F(TaskTest, SleepForSleepsAtLeastTheDuration) {
  for (Duration d : {Duration(1ms), Duration(15ms), Duration(250us)}) {
    Duration took{-1};
    spawn(loop, timed_sleep(loop, d, took));
    loop.run();
    EXPECT_GE(took, d);
    EXPECT_LT(took, d + 500ms) << ms(took) << " ms";
  }
}

Task<void> sleep_then_log(Loop& loop, Duration d, int id, std::vector<int>& log) {
  co_await sleep_for(loop, d);
  log.push_back(id);
}

TEST_F(TaskTest, ConcurrentSleepersWakeInDeadlineOrder) {
  std::vector<int> log;
  spawn(loop, sleep_then_log(loop, 30ms, 3, log));
  spawn(loop, sleep_then_log(loop, 2ms, 1, log));
  spawn(loop, sleep_then_log(loop, 15ms, 2, log));
  spawn(loop, sleep_then_log(loop, 0ms, 0, log));
  EXPECT_TRUE(log.empty());  // sleep_for(0) still yields a turn
  loop.run();
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 3}));
}

Task<void> wait_io(Loop& loop, int fd, unsigned interest, std::optional<Duration> timeout, std::error_code& ec,
                   bool& done) {
  // Not `c ? co_await a : co_await b`: GCC 12 miscompiles co_await in both arms.
  if (interest == corio::kReadable)
    ec = co_await readable(loop, fd, timeout);
  else
    ec = co_await writable(loop, fd, timeout);
  done = true;
}

TEST_F(TaskTest, ReadableWhenDataArrives) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::error_code ec = std::make_error_code(std::errc::io_error);
  bool done = false;
  Timer writer(loop);
  const TimePoint t0 = Clock::now();
  writer.start(10ms, [&] { p.put(); });
  spawn(loop, wait_io(loop, p.r, corio::kReadable, 5s, ec, done));
  EXPECT_FALSE(done);
  loop.run();  // returns right after the data: the awaiter disarmed its 5 s timeout
  const Duration took = Clock::now() - t0;
  EXPECT_TRUE(done);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_GE(took, 10ms);
  EXPECT_LT(took, 2s) << ms(took) << " ms";
  EXPECT_EQ(p.drain(), 1);
}

TEST_F(TaskTest, ReadableTimesOut) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::error_code ec;
  bool done = false;
  const TimePoint t0 = Clock::now();
  spawn(loop, wait_io(loop, p.r, corio::kReadable, 20ms, ec, done));
  loop.run();  // returns: the awaiter stopped its watch on timeout
  const Duration took = Clock::now() - t0;
  EXPECT_TRUE(done);
  EXPECT_EQ(ec, std::errc::timed_out) << ec.message();
  EXPECT_GE(took, 20ms);
  EXPECT_LT(took, 2s);
  // A byte written now is not consumed by the finished awaiter.
  ASSERT_TRUE(p.put());
  EXPECT_EQ(p.drain(), 1);
}

TEST_F(TaskTest, ReadableWithoutTimeoutWaitsForData) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::error_code ec = std::make_error_code(std::errc::io_error);
  bool done = false;
  spawn(loop, wait_io(loop, p.r, corio::kReadable, std::nullopt, ec, done));
  EXPECT_FALSE(loop.run_once(20ms));
  EXPECT_FALSE(done);
  ASSERT_TRUE(p.put());
  loop.run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(ec);
}

TEST_F(TaskTest, ReadableOnAClosedDescriptorFailsAtOnce) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  std::error_code ec;
  bool done = false;
  spawn(loop, wait_io(loop, fds[0], corio::kReadable, 5s, ec, done));
  EXPECT_TRUE(done);  // resumed without suspending
  EXPECT_EQ(ec, std::errc::bad_file_descriptor) << ec.message();
  EXPECT_FALSE(loop.alive());  // neither the watch nor the timeout is left armed
  const TimePoint t0 = Clock::now();
  loop.run();
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(TaskTest, WritableIsReadyAtOnce) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::error_code ec = std::make_error_code(std::errc::io_error);
  bool done = false;
  spawn(loop, wait_io(loop, p.w, corio::kWritable, 5s, ec, done));
  loop.run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(ec);
}

Task<void> sleep_and_count(Loop& loop, Duration d, bool fail, int& done) {
  co_await sleep_for(loop, d);
  if (fail) throw std::runtime_error("task boom");
  ++done;
}

Task<void> fail_now() {
  throw std::runtime_error("sync boom");
  co_return;
}

TEST_F(TaskTest, ExceptionEscapingASpawnedTaskGoesToTheHandler) {
  std::vector<std::string> errors;
  corio_test::capture_exceptions(loop, errors);
  int done = 0;
  spawn(loop, sleep_and_count(loop, 3ms, false, done));
  spawn(loop, sleep_and_count(loop, 1ms, true, done));
  spawn(loop, sleep_and_count(loop, 5ms, false, done));
  spawn(loop, fail_now());  // reported from inside spawn; spawn itself does not throw
  EXPECT_EQ(errors, std::vector<std::string>{"sync boom"});
  loop.run();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(errors, (std::vector<std::string>{"sync boom", "task boom"}));
}

TEST_F(TaskTest, ExceptionEscapingASpawnedTaskIsPrintedByDefault) {
  int done = 0;
  testing::internal::CaptureStderr();
  spawn(loop, sleep_and_count(loop, 1ms, true, done));
  spawn(loop, sleep_and_count(loop, 2ms, false, done));
  loop.run();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(done, 1);
  EXPECT_NE(err.find("task boom"), std::string::npos) << err;
}

Task<void> sleep_forever(Loop& loop, bool& destroyed, bool& finished) {
  OnDestroy guard{destroyed};
  co_await sleep_for(loop, 1h);
  finished = true;
}

Task<void> parent_of_sleeper(Loop& loop, bool& destroyed, bool& child_destroyed, bool& finished) {
  OnDestroy guard{destroyed};
  co_await sleep_forever(loop, child_destroyed, finished);
  finished = true;
}

Task<void> read_forever(Loop& loop, int fd, bool& destroyed, bool& finished) {
  OnDestroy guard{destroyed};
  (void)co_await readable(loop, fd, 1h);
  finished = true;
}

TEST_F(TaskTest, DestroyingTheLoopDestroysSuspendedTasks) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  bool a = false, b = false, b_child = false, c = false, finished = false;
  {
    auto loop = std::make_unique<Loop>();
    spawn(*loop, sleep_forever(*loop, a, finished));
    spawn(*loop, parent_of_sleeper(*loop, b, b_child, finished));
    spawn(*loop, read_forever(*loop, p.r, c, finished));
    EXPECT_FALSE(loop->run_once(1ms));
    EXPECT_EQ(loop->timer_count(), 3u);
    EXPECT_FALSE(a || b || b_child || c);
    loop.reset();  // ASan/LSan: no frame, timer or watch may leak or dangle
  }
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_TRUE(b_child);
  EXPECT_TRUE(c);
  EXPECT_FALSE(finished);
}

Task<long> chain(Loop* loop, int depth) {
  if (depth == 0) {
    if (loop) co_await sleep_for(*loop, 0ms);  // the whole chain resumes from a timer
    co_return 0;
  }
  long below = co_await chain(loop, depth - 1);
  co_return below + 1;
}

Task<void> run_chain(Loop* loop, int depth, long& out) { out = co_await chain(loop, depth); }

struct ChainJob {
  int depth;
  bool suspend;
  long out = -1;
};

void* chain_thread(void* arg) {
  auto* job = static_cast<ChainJob*>(arg);
  Loop loop;
  spawn(loop, run_chain(job->suspend ? &loop : nullptr, job->depth, job->out));
  loop.run();
  if (loop.close()) job->out = -3;  // something was left on the thread's loop
  return nullptr;
}

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_TEST_ASAN 1
#endif
#endif

#ifdef CORIO_TEST_ASAN
// GCC emits symmetric transfer as a tail call, which ASan's use-after-scope stack
// instrumentation prevents: under ASan each level costs stack, so the chain gets room
// and only correctness (and leaks) is checked there.
constexpr std::size_t kChainStack = std::size_t{64} << 20;
#else
// Without symmetric transfer each level would add stack frames: 10,000 levels overflow
// 256 KiB (measured: a resume()-based Task needs megabytes here).
constexpr std::size_t kChainStack = std::size_t{256} << 10;
#endif

long run_chain_on_thread(int depth, bool suspend) {
  ChainJob job{depth, suspend};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kChainStack);
  pthread_t th;
  const int err = pthread_create(&th, &attr, chain_thread, &job);
  pthread_attr_destroy(&attr);
  if (err != 0) return -2;
  pthread_join(th, nullptr);
  return job.out;
}

TEST_F(TaskTest, DeepChainOfSynchronousTasksDoesNotGrowTheStack) {
  EXPECT_EQ(run_chain_on_thread(10'000, false), 10'000);
}

TEST_F(TaskTest, DeepChainResumedFromATimerDoesNotGrowTheStack) {
  EXPECT_EQ(run_chain_on_thread(10'000, true), 10'000);
}

Task<void> sleep_on_current(bool& done) {
  co_await sleep_for(1ms);
  done = true;
}

TEST_F(TaskTest, DefaultLoopOverloads) {
  bool done = false;
  spawn(sleep_on_current(done));
  EXPECT_FALSE(done);
  Loop::current().run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(Loop::current().alive());
}

}  // namespace
