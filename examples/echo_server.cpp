// A TCP echo server: one coroutine per connection. Usage: echo_server [port] (default 7000;
// 0 picks a free one). Prints the port it listens on.
#include <corio/listener.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <cstdio>
#include <cstdlib>

corio::Task<void> echo(corio::Stream s) {
  char buf[16 * 1024];
  for (;;) {
    auto [ec, n] = co_await s.read_some(buf, sizeof buf);
    if (ec || co_await s.write_all({buf, n})) co_return;  // closed by the peer, or an error
  }
}

corio::Task<void> serve(corio::Listener& listener) {
  for (;;) {
    auto [ec, stream] = co_await listener.accept();
    if (ec) {
      std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
      co_return;
    }
    corio::spawn(echo(std::move(stream)));
  }
}

int main(int argc, char** argv) {
  auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 7000);
  auto& loop = corio::Loop::current();
  auto [ec, listener] = corio::Listener::bind(loop, "*", port);
  if (ec) {
    std::fprintf(stderr, "listen on port %u: %s\n", port, ec.message().c_str());
    return 1;
  }
  std::printf("echo server on port %u\n", listener.address().port());
  std::fflush(stdout);
  corio::spawn(serve(listener));
  loop.run();
}
