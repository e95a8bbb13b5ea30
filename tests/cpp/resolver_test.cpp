// Resolver (c-ares on the loop): numeric hosts, localhost and hosts files without the
// network, errors, timeouts, cancellation, destruction, and the loop staying responsive.
// Lookups that must stay pending use a local UDP "DNS server" that never answers.
#include <corio/loop.hpp>
#include <corio/resolver.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Address;
using corio::Clock;
using corio::Loop;
using corio::ResolveError;
using corio::Resolver;
using corio::Timer;
using corio_test::ms;
using corio_test::run_until;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using ResolverTest = corio_test::LoopFixture;

struct Result {
  std::error_code ec;
  std::vector<Address> addrs;
  std::set<std::string> ips() const {
    std::set<std::string> s;
    for (const auto& a : addrs) s.insert(a.ip());
    return s;
  }
};

// Stores the outcome in `out` (which must outlive the lookup).
Resolver::Callback store(std::optional<Result>& out) {
  return [&out](std::error_code ec, std::vector<Address> addrs) { out = Result{ec, std::move(addrs)}; };
}

// A UDP socket on 127.0.0.1 that receives queries and never answers.
struct SilentServer {
  int fd = -1;
  std::uint16_t port = 0;
  SilentServer() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
      port = ntohs(sa.sin_port);
  }
  ~SilentServer() { corio_test::close_fd(fd); }
  std::string servers() const { return "127.0.0.1:" + std::to_string(port); }
};

// Points c-ares at another hosts file (CARES_HOSTS) for the test's duration.
struct HostsFile {
  std::string path;
  explicit HostsFile(const std::string& content) {
    char tmpl[] = "/tmp/corio-hosts-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd >= 0) ::close(fd);
    path = tmpl;
    std::ofstream(path) << content;
    ::setenv("CARES_HOSTS", path.c_str(), 1);
  }
  ~HostsFile() {
    ::unsetenv("CARES_HOSTS");
    std::remove(path.c_str());
  }
};

TEST_F(ResolverTest, ErrorMessages) {
  EXPECT_EQ(make_error_code(ResolveError::not_found).message(), "host or service not provided, or not known");
  EXPECT_EQ(make_error_code(ResolveError::temporary).message(), "temporary failure in name resolution");
  EXPECT_EQ(make_error_code(ResolveError::failure).message(), "non-recoverable failure in name resolution");
  EXPECT_EQ(make_error_code(ResolveError::timeout).message(), "timeout");
  EXPECT_EQ(make_error_code(ResolveError::cancelled).message(), "cancelled");
  std::error_code ec = ResolveError::timeout;  // is_error_code_enum
  EXPECT_EQ(ec, ResolveError::timeout);
}

TEST_F(ResolverTest, NumericIPv4IsDeliveredFromTheLoop) {
  Resolver r(loop);
  std::optional<Result> res;
  r.resolve("192.0.2.7", 8080, AF_UNSPEC, store(res));
  EXPECT_FALSE(res) << "callback ran inside resolve()";
  loop.run();
  ASSERT_TRUE(res);
  ASSERT_FALSE(res->ec) << res->ec.message();
  ASSERT_EQ(res->addrs.size(), 1u);
  EXPECT_EQ(res->addrs[0].family(), AF_INET);
  EXPECT_EQ(res->addrs[0].to_string(), "192.0.2.7:8080");
}

TEST_F(ResolverTest, NumericIPv6IsDeliveredFromTheLoop) {
  Resolver r(loop);
  std::optional<Result> res;
  r.resolve("2001:db8::1", 443, AF_INET6, store(res));
  EXPECT_FALSE(res);
  loop.run();
  ASSERT_TRUE(res);
  ASSERT_FALSE(res->ec) << res->ec.message();
  ASSERT_EQ(res->addrs.size(), 1u);
  EXPECT_EQ(res->addrs[0].family(), AF_INET6);
  EXPECT_EQ(res->addrs[0].to_string(), "[2001:db8::1]:443");
}

// getaddrinfo's EAI_ADDRFAMILY: "Address family for hostname not supported" (LuaSocket's words).
TEST_F(ResolverTest, NumericOfTheOtherFamilyIsAnAddressFamilyError) {
  Resolver r(loop);
  std::optional<Result> v4as6, v6as4;
  r.resolve("127.0.0.1", 1, AF_INET6, store(v4as6));
  r.resolve("::1", 1, AF_INET, store(v6as4));
  loop.run();
  ASSERT_TRUE(v4as6 && v6as4);
  EXPECT_EQ(v4as6->ec, ResolveError::address_family);
  EXPECT_EQ(v6as4->ec, ResolveError::address_family);
  EXPECT_TRUE(v4as6->addrs.empty());
}

TEST_F(ResolverTest, LocalhostIsLoopbackWithoutDns) {
  Resolver r(loop);
  SilentServer dns;  // were DNS asked, these would time out
  ASSERT_FALSE(r.set_servers(dns.servers()));
  std::optional<Result> any, v4;
  r.resolve("localhost", 80, AF_UNSPEC, store(any), 2s);
  r.resolve("localhost", 80, AF_INET, store(v4), 2s);
  EXPECT_FALSE(any || v4);
  ASSERT_TRUE(run_until(loop, [&] { return any && v4; }, 3s));
  ASSERT_FALSE(any->ec) << any->ec.message();
  ASSERT_FALSE(any->addrs.empty());
  for (const auto& a : any->addrs) {
    EXPECT_TRUE(a.ip() == "127.0.0.1" || a.ip() == "::1") << a.to_string();
    EXPECT_EQ(a.port(), 80);
  }
  ASSERT_FALSE(v4->ec) << v4->ec.message();
  EXPECT_EQ(v4->ips(), (std::set<std::string>{"127.0.0.1"}));
}

TEST_F(ResolverTest, HostsFileNamesWithoutDns) {
  HostsFile hosts(
      "# test hosts\n"
      "10.1.2.3     corio-test.example corio-alias\n"
      "fd00::1234   corio-test.example\n");
  Resolver r(loop);
  SilentServer dns;
  ASSERT_FALSE(r.set_servers(dns.servers()));
  std::optional<Result> any, v4, v6, alias;
  r.resolve("corio-test.example", 7, AF_UNSPEC, store(any), 2s);
  r.resolve("corio-test.example", 7, AF_INET, store(v4), 2s);
  r.resolve("corio-test.example", 7, AF_INET6, store(v6), 2s);
  r.resolve("corio-alias", 7, AF_INET, store(alias), 2s);
  EXPECT_FALSE(any || v4 || v6 || alias);
  const auto t0 = Clock::now();
  ASSERT_TRUE(run_until(loop, [&] { return any && v4 && v6 && alias; }, 3s));
  EXPECT_LT(ms(Clock::now() - t0), 1000);  // from the file, not a timed-out DNS query
  for (auto* res : {&any, &v4, &v6, &alias}) ASSERT_FALSE((*res)->ec) << (*res)->ec.message();
  EXPECT_EQ(any->ips(), (std::set<std::string>{"10.1.2.3", "fd00::1234"}));
  EXPECT_EQ(v4->ips(), (std::set<std::string>{"10.1.2.3"}));
  EXPECT_EQ(v6->ips(), (std::set<std::string>{"fd00::1234"}));
  EXPECT_EQ(alias->ips(), (std::set<std::string>{"10.1.2.3"}));
  for (const auto& a : any->addrs) EXPECT_EQ(a.port(), 7);
}

TEST_F(ResolverTest, OwnHostnameFromEtcHosts) {
  char name[256] = "";
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  std::ifstream in("/etc/hosts");
  bool listed = false;
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find('#'));
    listed = listed || (" " + line + " ").find(std::string(" ") + name + " ") != std::string::npos ||
             (" " + line + "\t").find(std::string("\t") + name + "\t") != std::string::npos;
  }
  if (!listed) GTEST_SKIP() << name << " is not in /etc/hosts";
  Resolver r(loop);
  SilentServer dns;
  ASSERT_FALSE(r.set_servers(dns.servers()));
  std::optional<Result> res;
  r.resolve(name, 0, AF_UNSPEC, store(res), 2s);
  ASSERT_TRUE(run_until(loop, [&] { return res.has_value(); }, 3s));
  ASSERT_FALSE(res->ec) << res->ec.message();
  EXPECT_FALSE(res->addrs.empty());
}

TEST_F(ResolverTest, NonexistentNameFails) {
  Resolver r(loop);
  std::optional<Result> res;
  const auto t0 = Clock::now();
  r.resolve("nonexistent.invalid", 80, AF_UNSPEC, store(res), 2s);
  ASSERT_TRUE(run_until(loop, [&] { return res.has_value(); }, 4s));
  EXPECT_LT(ms(Clock::now() - t0), 3000);
  EXPECT_TRUE(res->ec == ResolveError::not_found || res->ec == ResolveError::temporary ||
              res->ec == ResolveError::timeout)
      << res->ec.message();
  EXPECT_TRUE(res->addrs.empty());
}

TEST_F(ResolverTest, RefusedServerIsTemporary) {
  Resolver r(loop);
  std::string servers;
  {
    SilentServer closed;  // bound then closed: queries to it are refused
    servers = closed.servers();
  }
  ASSERT_FALSE(r.set_servers(servers));
  std::optional<Result> res;
  r.resolve("refused.example", 80, AF_INET, store(res), 3s);
  ASSERT_TRUE(run_until(loop, [&] { return res.has_value(); }, 4s));
  EXPECT_EQ(res->ec, ResolveError::temporary) << res->ec.message();
}

TEST_F(ResolverTest, TimeoutEndsALookupAndReleasesTheLoop) {
  Resolver r(loop);
  SilentServer dns;
  ASSERT_FALSE(r.set_servers(dns.servers()));
  std::optional<Result> res;
  const auto t0 = Clock::now();
  r.resolve("silent.example", 80, AF_UNSPEC, store(res), 300ms);
  loop.run();  // returns once the lookup has ended: the dropped query holds nothing
  const auto elapsed = ms(Clock::now() - t0);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->ec, ResolveError::timeout) << res->ec.message();
  EXPECT_GE(elapsed, 300);
  EXPECT_LT(elapsed, 2000);
  // The channel is usable afterwards (servers can be changed: nothing is outstanding).
  EXPECT_FALSE(r.set_servers(dns.servers()));
}

TEST_F(ResolverTest, CancelPreventsTheCallback) {
  Resolver r(loop);
  SilentServer dns;
  ASSERT_FALSE(r.set_servers(dns.servers()));
  int calls = 0;
  auto count = [&calls](std::error_code, std::vector<Address>) { ++calls; };
  Resolver::Id pending = r.resolve("silent.example", 80, AF_UNSPEC, count, 5s);
  Resolver::Id numeric = r.resolve("127.0.0.1", 80, AF_INET, count);
  Resolver::Id kept = r.resolve("::1", 80, AF_INET6, count);
  EXPECT_NE(pending, numeric);
  EXPECT_NE(numeric, kept);
  r.cancel(pending);
  r.cancel(numeric);
  r.cancel(numeric);  // twice, and unknown ids, are harmless
  r.cancel(987654321);
  const auto t0 = Clock::now();
  loop.run();
  EXPECT_LT(ms(Clock::now() - t0), 1000);  // nothing waits for the cancelled query
  EXPECT_EQ(calls, 1);
}

TEST_F(ResolverTest, CancelFromAnotherCallback) {
  Resolver r(loop);
  std::optional<Result> second;
  Resolver::Id id2 = 0;
  r.resolve("10.0.0.1", 1, AF_INET, [&](std::error_code, std::vector<Address>) { r.cancel(id2); });
  id2 = r.resolve("10.0.0.2", 1, AF_INET, store(second));
  loop.run();
  EXPECT_FALSE(second);
}

TEST_F(ResolverTest, DestroyWithPendingLookupsIsSilent) {
  SilentServer dns;
  int calls = 0;
  auto count = [&calls](std::error_code, std::vector<Address>) { ++calls; };
  auto r = std::make_unique<Resolver>(loop);
  ASSERT_FALSE(r->set_servers(dns.servers()));
  r->resolve("silent.example", 80, AF_UNSPEC, count);
  r->resolve("silent2.example", 80, AF_INET6, count);
  r->resolve("127.0.0.1", 80, AF_INET, count);
  loop.run_once(20ms);  // the queries are on the wire
  EXPECT_EQ(calls, 1);  // the numeric one
  r->resolve("10.9.9.9", 80, AF_INET, count);  // completed, not yet delivered
  r.reset();
  const auto t0 = Clock::now();
  loop.run();
  EXPECT_LT(ms(Clock::now() - t0), 500);
  EXPECT_EQ(calls, 1);
}

TEST_F(ResolverTest, CallbackMayDestroyTheResolver) {
  auto r = std::make_unique<Resolver>(loop);
  SilentServer dns;
  ASSERT_FALSE(r->set_servers(dns.servers()));
  int calls = 0;
  r->resolve("silent.example", 80, AF_UNSPEC, [&](std::error_code, std::vector<Address>) { ++calls; });
  r->resolve("127.0.0.1", 80, AF_INET, [&](std::error_code, std::vector<Address>) {
    ++calls;
    r.reset();
  });
  loop.run();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(r);
}

TEST_F(ResolverTest, LoopKeepsRunningWhileALookupIsPending) {
  Resolver r(loop);
  SilentServer dns;
  ASSERT_FALSE(r.set_servers(dns.servers()));
  int ticks = 0;
  int ticks_at_end = -1;
  Timer tick(loop);
  tick.start(10ms, [&] { ++ticks; }, 10ms);
  r.resolve("silent.example", 80, AF_UNSPEC, [&](std::error_code ec, std::vector<Address>) {
    EXPECT_EQ(ec, ResolveError::timeout);
    ticks_at_end = ticks;
    tick.stop();
  }, 400ms);
  loop.run();
  EXPECT_GE(ticks_at_end, 10);  // ~40 expected; the resolver never blocked the loop
}

TEST_F(ResolverTest, ManyLookupsAtOnce) {
  HostsFile hosts("10.20.30.40 many.example\n");
  Resolver r(loop);
  SilentServer dns;
  ASSERT_FALSE(r.set_servers(dns.servers()));
  constexpr int kN = 50;
  std::vector<std::optional<Result>> res(kN);
  std::set<Resolver::Id> ids;
  for (int i = 0; i < kN; ++i)
    ids.insert(r.resolve(i % 2 ? "many.example" : "10.20.30.41", static_cast<std::uint16_t>(i), AF_INET,
                         store(res[i]), 2s));
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kN));
  loop.run();
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(res[i]);
    ASSERT_FALSE(res[i]->ec) << i << ": " << res[i]->ec.message();
    ASSERT_EQ(res[i]->addrs.size(), 1u);
    EXPECT_EQ(res[i]->addrs[0].to_string(),
              std::string(i % 2 ? "10.20.30.40:" : "10.20.30.41:") + std::to_string(i));
  }
}

TEST_F(ResolverTest, CurrentIsPerThreadOnTheCurrentLoop) {
  Resolver& a = Resolver::current();
  EXPECT_EQ(&a, &Resolver::current());
  std::optional<Result> res;
  a.resolve("127.0.0.1", 9, AF_INET, store(res));
  Loop::current().run();
  ASSERT_TRUE(res);
  EXPECT_FALSE(res->ec);

  // In a new thread: another resolver, torn down (before its loop) at thread exit.
  Resolver* other = nullptr;
  bool pending_dropped = true;
  std::thread t([&] {
    other = &Resolver::current();
    Resolver::current().resolve("127.0.0.2", 9, AF_INET,
                                [&](std::error_code, std::vector<Address>) { pending_dropped = false; });
  });
  t.join();
  EXPECT_NE(other, &a);
  EXPECT_TRUE(pending_dropped);
}

}  // namespace
