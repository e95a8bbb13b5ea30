// TLS in the engine (TlsSession under a Socket, TlsHandshake), through Stream: corio client
// and server against each other and against `openssl s_server` / `s_client`; verification
// on by default with OpenSSL's reasons (hostname mismatch, expired, self-signed, unknown
// CA); a plain-text peer, a stalled handshake and a close without close_notify end without
// hanging. Certificates are made by the openssl CLI for the test run.
#include <corio/awaiters.hpp>
#include <corio/listener.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>
#include <corio/tls.hpp>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Error;
using corio::Listener;
using corio::Loop;
using corio::Stream;
using corio::Task;
using corio::TlsContext;
using corio::TlsParams;
using corio_net_test::run_task;

// The certificates: a CA; for 127.0.0.1 and localhost, a good, an expired and a wrong-name
// server certificate signed by it; a self-signed one.
struct Certs {
  std::string dir;
  std::string path(const char* f) const { return dir + "/" + f; }
  Certs() {
    char tmpl[] = "/tmp/corio-tls-XXXXXX";
    dir = mkdtemp(tmpl);
    const std::string q = " >/dev/null 2>&1";
    auto sh = [&](const std::string& cmd) { return std::system(("cd " + dir + " && " + cmd + q).c_str()) == 0; };
    std::ofstream(path("san.ext")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::ofstream(path("wrong.ext")) << "subjectAltName=DNS:wrong.example\n";
    ok = sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=corio-test-ca -keyout ca.key -out ca.pem") &&
         issue("server", "san.ext", "2", sh) && issue("expired", "san.ext", "-1", sh) &&
         issue("wrong", "wrong.ext", "2", sh) &&
         sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
            "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout self.key -out self.pem") &&
         sh("openssl rsa -in server.key -aes256 -passout pass:secret -out locked.key");
  }
  template <class Sh>
  bool issue(const std::string& name, const std::string& ext, const std::string& days, Sh& sh) {
    return sh("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + name + ".key -out " + name +
              ".csr") &&
           sh("openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days " + days +
              " -extfile " + ext + " -out " + name + ".pem");
  }
  ~Certs() { std::system(("rm -rf " + dir).c_str()); }
  bool ok = false;
};

const Certs& certs() {
  static Certs c;
  return c;
}

std::shared_ptr<TlsContext> server_ctx(const char* name = "server") {
  TlsParams p;
  p.mode = TlsParams::Mode::server;
  p.verify = false;
  p.certificate = certs().path((std::string(name) + ".pem").c_str());
  p.key = certs().path((std::string(name) + ".key").c_str());
  p.alpn = {"corio/1", "http/1.1"};
  std::string why;
  auto r = TlsContext::create(p, &why);
  EXPECT_FALSE(r.error) << why;
  return r.value;
}

std::shared_ptr<TlsContext> client_ctx(bool with_ca = true) {
  TlsParams p;
  if (with_ca) p.cafile = certs().path("ca.pem");
  p.alpn = {"corio/1"};
  std::string why;
  auto r = TlsContext::create(p, &why);
  EXPECT_FALSE(r.error) << why;
  return r.value;
}

class TlsTest : public corio_test::LoopFixture {
 protected:
  void SetUp() override {
    LoopFixture::SetUp();
    if (!certs().ok) GTEST_SKIP() << "openssl CLI unavailable";
  }
};

// A TLS echo server on 127.0.0.1 for one connection: handshake, then echo `lines` lines.
struct Server {
  Listener listener;
  std::uint16_t port = 0;
  std::error_code handshake;
  int lines;
  Server(Loop& loop, std::shared_ptr<TlsContext> ctx, int max_lines = 1000) : lines(max_lines) {
    auto r = Listener::bind(loop, "127.0.0.1", 0);
    listener = std::move(r.value);
    port = listener.address().port();
    corio::spawn(loop, serve(std::move(ctx)));
  }
  Task<void> serve(std::shared_ptr<TlsContext> ctx) {
    auto [ec, s] = co_await listener.accept(5s);
    if (ec) co_return;
    s.start_tls(ctx);
    if ((handshake = co_await s.handshake(5s))) co_return;
    while (lines-- > 0) {
      auto [rec, line] = co_await s.read_line(5s);
      if (rec || co_await s.write_all(line + "\n", 5s)) break;
    }
    s.close();
  }
};

struct Client {
  std::error_code connect, handshake, write, read;
  std::string line;
  corio::TlsInfo info;
  bool closed_after = false;
};

Task<void> client(Loop& loop, std::uint16_t port, std::shared_ptr<TlsContext> ctx, std::string host, Client& out,
                  corio::Duration timeout = 5s) {
  Stream s(loop);
  if ((out.connect = co_await s.connect("127.0.0.1", port, 5s))) co_return;
  s.start_tls(ctx, host);
  out.handshake = co_await s.handshake(timeout);
  out.closed_after = !s.is_open();
  if (out.handshake) co_return;
  out.info = s.tls_info();
  if ((out.write = co_await s.write_all("hello over tls\n", 5s))) co_return;
  auto r = co_await s.read_line(5s);
  out.read = r.error;
  out.line = r.value;
  s.close();
}

TEST_F(TlsTest, VerifiedEchoAgainstCorioServerByNameAndByIp) {
  for (const char* host : {"localhost", "127.0.0.1"}) {
    Server server(loop, server_ctx());
    Client c;
    ASSERT_TRUE(run_task(loop, client(loop, server.port, client_ctx(), host, c)));
    EXPECT_FALSE(c.handshake) << host << ": " << c.handshake.message();
    EXPECT_EQ("hello over tls", c.line) << host;
    EXPECT_EQ("TLSv1.3", c.info.protocol);
    EXPECT_EQ("corio/1", c.info.alpn);
    EXPECT_NE(std::string::npos, c.info.peer.subject.find("CN=server"));
    EXPECT_NE(std::string::npos, c.info.peer.issuer.find("corio-test-ca"));
    EXPECT_EQ(95u, c.info.peer.fingerprint.size());  // 32 bytes, hex, ':' between
    EXPECT_FALSE(c.info.peer.notafter.empty());
    server.listener.close();
    corio_test::run_until(loop, [] { return false; }, 20ms);
  }
}

struct Refusal {
  const char* name;
  const char* cert;
  const char* host;
  bool with_ca;
  const char* message;
};

TEST_F(TlsTest, VerificationRefusesWithOpenSslsReason) {
  const Refusal cases[] = {
      {"wrong host", "server", "wrong.example", true, "certificate verify failed: hostname mismatch"},
      {"wrong name in cert", "wrong", "localhost", true, "certificate verify failed: hostname mismatch"},
      {"expired", "expired", "localhost", true, "certificate verify failed: certificate has expired"},
      {"unknown CA", "server", "localhost", false, "certificate verify failed: unable to get local issuer certificate"},
      {"self-signed", "self", "localhost", true, "certificate verify failed: self-signed certificate"},
  };
  for (const auto& k : cases) {
    Server server(loop, server_ctx(k.cert));
    Client c;
    ASSERT_TRUE(run_task(loop, client(loop, server.port, client_ctx(k.with_ca), k.host, c)));
    EXPECT_EQ(&corio::verify_category(), &c.handshake.category()) << k.name << ": " << c.handshake.message();
    EXPECT_EQ(k.message, c.handshake.message()) << k.name;
    EXPECT_TRUE(c.closed_after) << k.name;
    server.listener.close();
    corio_test::run_until(loop, [] { return false; }, 20ms);
  }
}

// A raw peer on 127.0.0.1: accepts one connection and runs fn(fd) in a thread.
template <class Fn>
struct RawPeer {
  int lfd = -1;
  std::uint16_t port = 0;
  std::thread t;
  explicit RawPeer(Fn fn) {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 4);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    t = std::thread([this, fn] {
      int fd = ::accept(lfd, nullptr, nullptr);
      if (fd >= 0) fn(fd), ::close(fd);
    });
  }
  ~RawPeer() {
    t.join();
    ::close(lfd);
  }
};

TEST_F(TlsTest, PlainTextPeerAndStalledHandshakeEndWithoutHanging) {
  {
    RawPeer peer([](int fd) {
      const char banner[] = "220 plain text here, no TLS\r\n";
      ::send(fd, banner, sizeof banner - 1, MSG_NOSIGNAL);
      ::usleep(300000);
    });
    Client c;
    auto t0 = corio::Clock::now();
    ASSERT_TRUE(run_task(loop, client(loop, peer.port, client_ctx(), "localhost", c)));
    EXPECT_EQ(&corio::tls_category(), &c.handshake.category()) << c.handshake.message();
    EXPECT_EQ("wrong version number", c.handshake.message());
    EXPECT_LT(corio::Clock::now() - t0, 250ms);
  }
  {
    RawPeer peer([](int) { ::usleep(500000); });  // accepts, says nothing
    Client c;
    auto t0 = corio::Clock::now();
    ASSERT_TRUE(run_task(loop, client(loop, peer.port, client_ctx(), "localhost", c, 200ms)));
    EXPECT_EQ(Error::timeout, c.handshake);
    EXPECT_TRUE(c.closed_after);
    EXPECT_LT(corio::Clock::now() - t0, 450ms);
  }
}

// The peer sends its data and closes the descriptor with or without close_notify: the
// reader gets the data, then the end of the stream, as from a plain close.
TEST_F(TlsTest, CloseWithAndWithoutCloseNotifyEndsReadAll) {
  for (bool notify : {true, false}) {
    auto r = Listener::bind(loop, "127.0.0.1", 0);
    ASSERT_FALSE(r.error);
    Listener listener = std::move(r.value);
    auto ctx = server_ctx();
    auto serve = [](Listener& l, std::shared_ptr<TlsContext> ctx, bool notify) -> Task<void> {
      auto [ec, s] = co_await l.accept(5s);
      if (ec) co_return;
      s.start_tls(ctx);
      if (co_await s.handshake(5s)) co_return;
      co_await s.write_all("last words", 5s);
      if (notify)
        s.close();  // close_notify, then the descriptor
      else
        ::shutdown(s.fd(), SHUT_RDWR);  // the descriptor only
      co_return;
    };
    corio::spawn(loop, serve(listener, ctx, notify));
    std::string got;
    std::error_code ec;
    auto read = [&](std::uint16_t port) -> Task<void> {
      Stream s(loop);
      if ((ec = co_await s.connect("127.0.0.1", port, 5s))) co_return;
      s.start_tls(client_ctx(), "localhost");
      if ((ec = co_await s.handshake(5s))) co_return;
      auto all = co_await s.read_all(5s);
      ec = all.error;
      got = all.value;
    };
    ASSERT_TRUE(run_task(loop, read(listener.address().port())));
    EXPECT_FALSE(ec) << (notify ? "close_notify: " : "no close_notify: ") << ec.message();
    EXPECT_EQ("last words", got);
    listener.close();
    corio_test::run_until(loop, [] { return false; }, 20ms);
  }
}


TEST_F(TlsTest, AgainstOpenSslSServer) {
  std::uint16_t port = corio_net_test::free_tcp_port();
  std::string pidfile = certs().path("s_server.pid");
  std::string cmd = "cd " + certs().dir + " && (openssl s_server -quiet -rev -accept 127.0.0.1:" +
                    std::to_string(port) + " -cert server.pem -key server.key </dev/null >/dev/null 2>&1 & echo $! > " +
                    pidfile + ")";
  ASSERT_EQ(0, std::system(cmd.c_str()));
  int pid = 0;
  std::ifstream(pidfile) >> pid;
  ASSERT_GT(pid, 0);
  Client c;
  bool ran = true;
  for (int i = 0; i < 100 && ran; ++i) {  // until it listens
    c = {};
    ran = run_task(loop, client(loop, port, client_ctx(), "localhost", c));
    if (!c.connect) break;
    ::usleep(20000);
  }
  ::kill(pid, SIGTERM);  // whatever happened
  ASSERT_TRUE(ran);
  EXPECT_FALSE(c.connect) << c.connect.message();
  EXPECT_FALSE(c.handshake) << c.handshake.message();
  EXPECT_EQ("slt revo olleh", c.line);  // s_server -rev answers each line reversed
}

TEST_F(TlsTest, OpenSslSClientAgainstCorioServer) {
  Server server(loop, server_ctx(), 1);  // closes after one line: s_client -quiet waits for that
  std::string out;
  std::thread t([&] {
    std::string cmd = "echo 'ping from s_client' | openssl s_client -quiet -verify_return_error -CAfile " +
                      certs().path("ca.pem") + " -verify_hostname localhost -connect 127.0.0.1:" +
                      std::to_string(server.port) + " 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[256];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
  });
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    t.join();
    done = true;
  });
  // nothing wakes the loop when the thread is done: look in short slices
  for (int i = 0; i < 200 && !done; ++i) corio_test::run_until(loop, [&] { return done.load(); }, 50ms);
  waiter.join();
  EXPECT_FALSE(server.handshake) << server.handshake.message();
  EXPECT_EQ("ping from s_client\n", out);
  server.listener.close();
  corio_test::run_until(loop, [] { return false; }, 20ms);
}

TEST_F(TlsTest, TwoHundredConcurrentConnections) {
  auto r = Listener::bind(loop, "127.0.0.1", 0);
  ASSERT_FALSE(r.error);
  Listener listener = std::move(r.value);
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  std::list<Stream> conns;
  auto one = [](Stream& s, std::shared_ptr<TlsContext> ctx) -> Task<void> {
    s.start_tls(ctx);
    if (co_await s.handshake(20s)) co_return;
    co_await corio_net_test::echo_connection(s);
  };
  auto serve = [&](Listener& l) -> Task<void> {
    for (;;) {
      auto [ec, s] = co_await l.accept(30s);
      if (ec) co_return;
      conns.push_back(std::move(s));
      corio::spawn(loop, one(conns.back(), sctx));
    }
  };
  corio::spawn(loop, serve(listener));
  int ok = 0;
  auto talk = [&](int i) -> Task<void> {
    Stream s(loop);
    if (co_await s.connect("127.0.0.1", listener.address().port(), 20s)) co_return;
    s.start_tls(cctx, "localhost");
    if (co_await s.handshake(20s)) co_return;
    std::string msg = "message " + std::to_string(i) + "\n";
    if (co_await s.write_all(msg, 20s)) co_return;
    auto [ec, line] = co_await s.read_line(20s);
    if (!ec && line + "\n" == msg) ++ok;
    s.close();
  };
  for (int i = 0; i < 200; ++i) corio::spawn(loop, talk(i));
  corio_test::run_until(loop, [&] { return ok == 200; }, 60s);
  EXPECT_EQ(200, ok);
  listener.close();
  for (auto& s : conns) s.close();
  corio_test::run_until(loop, [] { return false; }, 50ms);
}

// A loopback relay in a thread: forwards both ways, the server's bytes `piece` at a time
// with a pause between pieces, so TLS records reach the client cut across segments.
struct Relay {
  std::uint16_t port = 0;
  std::thread th;
  Relay(std::uint16_t to, std::size_t piece) {
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 1);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    th = std::thread([lfd, to, piece] {
      int c = ::accept(lfd, nullptr, nullptr);
      ::close(lfd);
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in b{};
      b.sin_family = AF_INET;
      b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      b.sin_port = htons(to);
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (c >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&b), sizeof b) == 0) {
        pollfd p[2] = {{c, POLLIN, 0}, {s, POLLIN, 0}};
        char buf[4096];
        for (bool open = true; open && ::poll(p, 2, 10000) > 0;) {
          for (int i = 0; i < 2 && open; ++i) {
            if (!p[i].revents) continue;
            ssize_t n = ::read(p[i].fd, buf, sizeof buf);
            if (n <= 0) open = false;
            for (ssize_t off = 0; open && off < n;) {  // to the client: piece by piece
              std::size_t k = i == 1 ? std::min(piece, std::size_t(n - off)) : std::size_t(n - off);
              open = ::send(p[1 - i].fd, buf + off, k, MSG_NOSIGNAL) == ssize_t(k);
              off += ssize_t(k);
              if (i == 1) std::this_thread::sleep_for(200us);
            }
          }
        }
      }
      ::close(c);
      ::close(s);
    });
  }
  ~Relay() { th.join(); }
};

// Records read ahead: several records in one segment (the client reads only once all have
// arrived) are each read without waiting for readiness that will not come; records cut
// across segments (through the relay) are reassembled.
TEST_F(TlsTest, RecordsCoalescedInOneSegmentAndSplitAcrossSegments) {
  constexpr int kLines = 20;
  for (std::size_t piece : {std::size_t(0), std::size_t(7)}) {
    auto r = Listener::bind(loop, "127.0.0.1", 0);
    ASSERT_FALSE(r.error);
    Listener listener = std::move(r.value);
    auto serve = [](Listener& l, std::shared_ptr<TlsContext> ctx) -> Task<void> {
      auto [ec, s] = co_await l.accept(5s);
      if (ec) co_return;
      s.set_nodelay();
      s.start_tls(ctx);
      if (co_await s.handshake(5s)) co_return;
      for (int i = 0; i < kLines; ++i)  // a record each
        if (co_await s.write_all("line " + std::to_string(i) + "\n", 5s)) co_return;
      co_await s.read_line(5s);  // the client's "bye"
      s.close();
    };
    corio::spawn(loop, serve(listener, server_ctx()));
    std::optional<Relay> relay;
    if (piece) relay.emplace(listener.address().port(), piece);
    std::vector<std::string> got;
    std::error_code ec;
    auto elapsed = corio::Duration::zero();
    auto read = [&](std::uint16_t port) -> Task<void> {
      Stream s(loop);
      if ((ec = co_await s.connect("127.0.0.1", port, 5s))) co_return;
      s.start_tls(client_ctx(), "localhost");
      if ((ec = co_await s.handshake(5s))) co_return;
      co_await corio::sleep_for(loop, 100ms);  // every record is in by then (unless relayed)
      auto t0 = Loop::now();
      for (int i = 0; i < kLines; ++i) {
        auto line = co_await s.read_line(2s);
        if ((ec = line.error)) co_return;
        got.push_back(line.value);
      }
      elapsed = Loop::now() - t0;
      ec = co_await s.write_all("bye\n", 5s);
      s.close();
    };
    ASSERT_TRUE(run_task(loop, read(piece ? relay->port : listener.address().port()), 20s));
    EXPECT_FALSE(ec) << "piece " << piece << ": " << ec.message();
    ASSERT_EQ(std::size_t(kLines), got.size());
    for (int i = 0; i < kLines; ++i) EXPECT_EQ("line " + std::to_string(i), got[std::size_t(i)]);
    if (!piece) {
      EXPECT_LT(elapsed, 500ms) << "a buffered record waited for readiness";
    }
    listener.close();
    corio_test::run_until(loop, [] { return false; }, 20ms);
  }
}

TEST_F(TlsTest, ClientResumesItsSessionWithTheSameServer) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  bool resumed[2] = {};
  for (int i = 0; i < 2; ++i) {
    Server server(loop, sctx);
    Client c;
    ASSERT_TRUE(run_task(loop, client(loop, server.port, cctx, "localhost", c)));
    EXPECT_FALSE(c.handshake) << c.handshake.message();
    EXPECT_EQ("hello over tls", c.line);
    resumed[i] = c.info.resumed;
    server.listener.close();
    corio_test::run_until(loop, [] { return false; }, 20ms);
  }
  EXPECT_FALSE(resumed[0]);
  EXPECT_TRUE(resumed[1]);  // the ticket the first connection got
}

TEST_F(TlsTest, ServerPicksTheCertificateByTheNameAsked) {
  TlsParams p;
  p.mode = TlsParams::Mode::server;
  p.verify = false;
  p.certificate = certs().path("wrong.pem");  // for any other name
  p.key = certs().path("wrong.key");
  TlsParams local = p;
  local.certificate = certs().path("server.pem");
  local.key = certs().path("server.key");
  p.sni = {{"localhost", local}};
  std::string why;
  auto sctx = TlsContext::create(p, &why);
  ASSERT_FALSE(sctx.error) << why;
  for (const char* host : {"localhost", "wrong.example"}) {
    Server server(loop, sctx.value);
    Client c;
    ASSERT_TRUE(run_task(loop, client(loop, server.port, client_ctx(), host, c)));
    EXPECT_FALSE(c.handshake) << host << ": " << c.handshake.message();
    EXPECT_NE(std::string::npos, c.info.peer.subject.find(std::string("CN=") + (host[0] == 'l' ? "server" : "wrong")))
        << host << ": " << c.info.peer.subject;
    server.listener.close();
    corio_test::run_until(loop, [] { return false; }, 20ms);
  }
}

// A key under a password (LuaSec's `password`): the right one serves, a wrong one or none
// is a clear error at once, never a prompt on the terminal.
TEST_F(TlsTest, PasswordProtectedKey) {
  TlsParams p;
  p.mode = TlsParams::Mode::server;
  p.verify = false;
  p.certificate = certs().path("server.pem");
  p.key = certs().path("locked.key");
  std::string why;
  for (const char* wrong : {"", "not the secret"}) {
    p.password = wrong;
    EXPECT_TRUE(TlsContext::create(p, &why).error) << wrong;
    EXPECT_EQ(0u, why.find("key " + p.key + ": ")) << why;
  }
  p.password = "secret";
  auto sctx = TlsContext::create(p, &why);
  ASSERT_FALSE(sctx.error) << why;
  Server server(loop, sctx.value);
  Client c;
  ASSERT_TRUE(run_task(loop, client(loop, server.port, client_ctx(), "localhost", c)));
  EXPECT_FALSE(c.handshake) << c.handshake.message();
  EXPECT_EQ("hello over tls", c.line);
  server.listener.close();
  corio_test::run_until(loop, [] { return false; }, 20ms);
}

TEST(TlsContextTest, BadSettingsAreClearErrors) {
  std::string why;
  TlsParams p;
  p.mode = TlsParams::Mode::server;
  EXPECT_TRUE(TlsContext::create(p, &why).error);
  EXPECT_EQ("a server needs a certificate and a key", why);
  p.certificate = "/nonexistent/cert.pem";
  p.key = "/nonexistent/key.pem";
  EXPECT_TRUE(TlsContext::create(p, &why).error);
  EXPECT_EQ(0u, why.find("certificate /nonexistent/cert.pem: ")) << why;
  TlsParams c;
  c.ciphers = "NO-SUCH-CIPHER";
  EXPECT_TRUE(TlsContext::create(c, &why).error);
  EXPECT_EQ("ciphers: no cipher match", why);
  TlsParams q;
  q.protocol = "sslv3";
  EXPECT_TRUE(TlsContext::create(q, &why).error);
  EXPECT_EQ("protocol must be \"any\", \"tlsv1_2\" or \"tlsv1_3\"", why);
}

}  // namespace
