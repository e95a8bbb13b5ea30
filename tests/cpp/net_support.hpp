// Helpers shared by the Stream, Listener and Datagram tests: running a coroutine to its end
// within a bound, and an echo server on a loopback listener.
#pragma once
#include <corio/listener.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <list>
#include <memory>
#include <string>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_support.hpp"

namespace corio_net_test {

// A free loopback port (bound, then closed): for a server another process starts.
inline std::uint16_t free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}


using namespace std::chrono_literals;

// Spawns `task` on `loop` and runs the loop until it has finished, at most `limit`.
// A task still running then is destroyed with its loop.
inline bool run_task(corio::Loop& loop, corio::Task<void> task, corio::Duration limit = 5s) {
  auto done = std::make_shared<bool>(false);  // outlives us if the task does
  auto wrapper = [](corio::Task<void> t, std::shared_ptr<bool> flag) -> corio::Task<void> {
    co_await std::move(t);
    *flag = true;
  };
  corio::spawn(loop, wrapper(std::move(task), done));
  return corio_test::run_until(loop, [&] { return *done; }, limit);
}

inline corio::Task<void> echo_connection(corio::Stream& s) {
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await s.read_some(buf, sizeof buf, 10s);
    if (ec || co_await s.write_all({buf, n}, 10s)) co_return;
  }
}

// Echoes every connection `listener` accepts until it is closed (destroyed, it leaves this
// task suspended for good); then closes the connections, which ends their echo tasks: no
// task is left on the loop.
inline corio::Task<void> echo_server(corio::Listener& listener) {
  std::list<corio::Stream> connections;
  for (;;) {
    auto [ec, s] = co_await listener.accept(30s);
    if (ec) break;
    connections.push_back(std::move(s));
    corio::spawn(listener.loop(), echo_connection(connections.back()));
  }
  for (corio::Stream& s : connections) s.close();
}

// A listener on host (port chosen by the kernel) echoing everything; empty if host cannot
// be bound (IPv6 loopback unavailable).
struct EchoServer {
  corio::Listener listener;
  std::uint16_t port = 0;
  EchoServer(corio::Loop& loop, const char* host) {
    auto r = corio::Listener::bind(loop, host, 0);
    if (r.error) return;
    listener = std::move(r.value);
    port = listener.address().port();
    corio::spawn(loop, echo_server(listener));
  }
  ~EchoServer() { listener.close(); }  // ends the server's task and its connections'
  bool ok() const { return port != 0; }
};

// A connected pair of Streams over a Unix socketpair.
inline std::pair<corio::Stream, corio::Stream> stream_pair(corio::Loop& loop) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return {};
  return {corio::Stream(loop, fds[0]), corio::Stream(loop, fds[1])};
}

}  // namespace corio_net_test
