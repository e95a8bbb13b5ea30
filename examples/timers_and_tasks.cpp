// The C++ core in a few lines: a timer, a coroutine that sleeps, and one that waits
// for a pipe to become readable.
#include <corio/awaiters.hpp>
#include <corio/loop.hpp>
#include <corio/task.hpp>

#include <cstdio>
#include <unistd.h>

using namespace std::chrono_literals;

corio::Task<void> sleeper() {
  for (int i = 1; i <= 3; ++i) {
    co_await corio::sleep_for(100ms);
    std::printf("sleeper: tick %d\n", i);
  }
}

corio::Task<void> reader(int fd) {
  auto ec = co_await corio::readable(fd, 1s);
  char buf[64];
  ssize_t n = ec ? 0 : read(fd, buf, sizeof buf);
  std::printf("reader: %s, %zd bytes\n", ec ? ec.message().c_str() : "readable", n);
}

int main() {
  auto& loop = corio::Loop::current();
  int fds[2];
  if (pipe(fds) != 0) return 1;
  corio::Timer timer(loop);
  timer.start(150ms, [&] {
    std::printf("timer: writing to the pipe\n");
    (void)!write(fds[1], "hi", 2);
  });
  corio::spawn(sleeper());
  corio::spawn(reader(fds[0]));
  loop.run();
  close(fds[0]);
  close(fds[1]);
}
