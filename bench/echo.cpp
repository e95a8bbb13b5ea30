// Echo server on corio's C++ coroutines: a task per connection sends back whatever
// arrives. Usage: echo PORT [PENDING_TIMERS | CERT KEY] (binds 127.0.0.1). PENDING_TIMERS
// (the idle CPU benchmark) arms that many timers due in 60..120 s, which never fire during
// it; with a certificate and key each connection is served over TLS.
#include <corio/listener.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>
#include <corio/timer.hpp>
#include <corio/tls.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

// An idle connection holds no buffer: read_chunk takes one from the loop's pool only once
// bytes have arrived, and the chunk gives it back at the end of each turn.
corio::Task<void> echo(corio::Stream s) {
  s.set_nodelay();
  for (;;) {
    auto [ec, chunk] = co_await s.read_chunk();
    if (ec || co_await s.write_all(chunk)) co_return;
  }
}

// The handshake in a frame of its own: echo's frame, what an idle connection costs, stays
// as small as without TLS.
// (GCC 12 compiles an early `co_return` here into a trap: one path to the end instead.)
corio::Task<void> echo_tls(corio::Stream s, std::shared_ptr<corio::TlsContext> tls) {
  std::error_code ec = s.start_tls(std::move(tls));
  if (!ec) ec = co_await s.handshake(std::chrono::seconds(10));
  if (!ec) co_await echo(std::move(s));
}

corio::Task<void> serve(corio::Listener& listener, std::shared_ptr<corio::TlsContext> tls) {
  for (;;) {
    auto [ec, stream] = co_await listener.accept();
    if (ec) co_return;
    corio::spawn(tls ? echo_tls(std::move(stream), tls) : echo(std::move(stream)));
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: echo PORT [PENDING_TIMERS | CERT KEY]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  auto& loop = corio::Loop::current();
  auto [ec, listener] = corio::Listener::bind(loop, "127.0.0.1", static_cast<std::uint16_t>(std::atoi(argv[1])), 1024);
  if (ec) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    return 1;
  }
  std::shared_ptr<corio::TlsContext> tls;
  if (argc > 3) {
    corio::TlsParams p;
    p.mode = corio::TlsParams::Mode::server;
    p.verify = false;  // no client certificates
    p.certificate = argv[2];
    p.key = argv[3];
    std::string why;
    auto ctx = corio::TlsContext::create(p, &why);
    if (ctx.error) {
      std::fprintf(stderr, "tls: %s\n", why.c_str());
      return 1;
    }
    tls = ctx.value;
  }
  std::vector<std::unique_ptr<corio::Timer>> timers;
  std::mt19937 rng(42);
  for (long i = 0, n = argc == 3 ? std::atol(argv[2]) : 0; i < n; ++i) {
    timers.push_back(std::make_unique<corio::Timer>(loop));
    timers.back()->start(std::chrono::milliseconds(60000 + rng() % 60000), [] {});
  }
  corio::spawn(serve(listener, tls));
  loop.run();
}
