// Sends `count` lines to an echo server one at a time, reads each back and prints the
// round-trip time. Usage: echo_client [host] [port] [count] (localhost 7000 1000).
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

corio::Task<void> run(std::string host, std::uint16_t port, int count, int& status) {
  corio::Stream s(corio::Loop::current());
  if (auto ec = co_await s.connect(host, port, 5s)) {
    std::fprintf(stderr, "connect to %s:%u: %s\n", host.c_str(), port, ec.message().c_str());
    co_return;
  }
  auto start = corio::Loop::now();
  for (int i = 0; i < count; ++i) {
    std::string line = "line " + std::to_string(i);
    if (auto ec = co_await s.write_all(line + "\n", 5s)) {
      std::fprintf(stderr, "write: %s\n", ec.message().c_str());
      co_return;
    }
    auto [ec, echo] = co_await s.read_line(5s);
    if (ec || echo != line) {
      std::fprintf(stderr, "read: %s\n", ec ? ec.message().c_str() : "wrong echo");
      co_return;
    }
  }
  double secs = corio::to_seconds(corio::Loop::now() - start);
  std::printf("%d round trips in %.3f s: %.1f us each\n", count, secs, count ? secs * 1e6 / count : 0.0);
  status = 0;
}

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "localhost";
  auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 7000);
  int count = argc > 3 ? std::atoi(argv[3]) : 1000;
  int status = 1;
  corio::spawn(run(host, port, count, status));
  corio::Loop::current().run();
  return status;
}
