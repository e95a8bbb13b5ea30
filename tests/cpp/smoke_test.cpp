#include <corio/loop.hpp>
#include <corio/timer.hpp>
#include <gtest/gtest.h>
TEST(Smoke, TimerFires) {
  corio::Loop loop;
  corio::Timer t(loop);
  bool fired = false;
  t.start(std::chrono::milliseconds(1), [&] { fired = true; });
  loop.run();
  EXPECT_TRUE(fired);
}
