// tls_loadgen.cpp - ../shared/bench/loadgen's closed loop over TLS: CONNS connections, each
// sends SIZE bytes, waits for the whole echo, repeats. One thread, epoll, OpenSSL; every
// connection verifies the server against CAFILE (127.0.0.1 as an IP entry). --plain drops
// TLS, so the same client gives the plain-TCP figure for scale. Prints one loadgen-style line.
//
// usage: tls_loadgen --port P [--conns 100] [--size 64] [--duration 5] [--warmup 1]
//                    [--server-pid PID] [--cafile ca.pem | --plain]
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

enum class St { handshake, sending, receiving, dead };
struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  St st = St::handshake;
  std::size_t done = 0;  // bytes of this round sent or received
  double t0 = 0;
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double own_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
double proc_cpu(int pid) {  // utime+stime of pid in seconds; -1 if unreadable
  if (pid <= 0) return -1;
  char path[64], buf[4096];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (!p || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}

std::size_t size = 64;
std::vector<char> msg, buf(65536);
std::vector<float> lat_us;  // round trips completed in the measured window
long completed = 0, errors = 0;
bool measuring = false;

// Would-block, or the error count goes up and the connection is dead.
bool io_retry(Conn& c, int r) {
  if (c.ssl) {
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    const char* why = ERR_reason_error_string(ERR_get_error());
    if (errors++ < 3) std::fprintf(stderr, "tls_loadgen: %s\n", why ? why : "connection closed or reset");
  } else {
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (errors++ < 3) std::fprintf(stderr, "tls_loadgen: %s\n", r == 0 ? "closed" : std::strerror(errno));
  }
  c.st = St::dead;
  return false;
}

// Edge-triggered: go on until an operation would block.
void drive(Conn& c) {
  for (;;) {
    if (c.st == St::handshake) {
      int r = c.ssl ? SSL_do_handshake(c.ssl) : 1;  // plain: the first send waits for connect
      if (r != 1) {
        io_retry(c, r);
        return;
      }
      c.st = St::sending, c.done = 0, c.t0 = now();
    } else if (c.st == St::sending) {
      int r = c.ssl ? SSL_write(c.ssl, msg.data() + c.done, int(size - c.done))
                    : int(send(c.fd, msg.data() + c.done, size - c.done, MSG_NOSIGNAL));
      if (r <= 0) {
        io_retry(c, r);
        return;
      }
      if ((c.done += std::size_t(r)) == size) c.st = St::receiving, c.done = 0;
    } else if (c.st == St::receiving) {
      int r = c.ssl ? SSL_read(c.ssl, buf.data(), int(buf.size())) : int(read(c.fd, buf.data(), buf.size()));
      if (r <= 0) {
        io_retry(c, r);
        return;
      }
      if ((c.done += std::size_t(r)) < size) continue;
      if (c.done > size) {
        if (errors++ < 3) std::fprintf(stderr, "tls_loadgen: more bytes than sent\n");
        c.st = St::dead;
        return;
      }
      double t = now();
      if (measuring) ++completed, lat_us.push_back(float((t - c.t0) * 1e6));
      c.st = St::sending, c.done = 0, c.t0 = t;
    } else {
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, conns = 100, pid = 0;
  double duration = 5, warmup = 1;
  std::string cafile;
  bool plain = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--plain") { plain = true; continue; }
    if (a == "--port") port = std::atoi(v);
    else if (a == "--conns") conns = std::atoi(v);
    else if (a == "--size") size = std::size_t(std::atol(v));
    else if (a == "--duration") duration = std::atof(v);
    else if (a == "--warmup") warmup = std::atof(v);
    else if (a == "--server-pid") pid = std::atoi(v);
    else if (a == "--cafile") cafile = v;
    else { std::fprintf(stderr, "tls_loadgen: unknown option %s\n", argv[i]); return 2; }
    ++i;
  }
  if (port <= 0 || conns <= 0 || conns > 100000 || size == 0 || size > buf.size() || duration <= 0 ||
      (!plain && cafile.empty())) {
    std::fprintf(stderr, "usage: tls_loadgen --port P [--conns N] [--size B] [--duration S] [--warmup S] "
                         "[--server-pid PID] (--cafile ca.pem | --plain)\n");
    return 2;
  }
  msg.assign(size, 'x');
  SSL_CTX* ctx = nullptr;
  if (!plain) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, cafile.c_str(), nullptr) != 1) {
      std::fprintf(stderr, "tls_loadgen: cannot load %s\n", cafile.c_str());
      return 1;
    }
    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1");
  }

  int ep = epoll_create1(0);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(std::uint16_t(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  double t_connect = now();
  for (auto& c : cs) {
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c.fd < 0 || (connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 && errno != EINPROGRESS)) {
      std::fprintf(stderr, "tls_loadgen: connect: %s\n", std::strerror(errno));
      return 1;
    }
    if (ctx) {
      c.ssl = SSL_new(ctx);
      SSL_set_fd(c.ssl, c.fd);
      SSL_set_connect_state(c.ssl);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }

  // The handshakes (all before the load starts), then warmup, then the measured window.
  double t_ready = 0, t_begin = 0, t_end = 0, srv0 = -1, lg0 = 0;
  std::vector<epoll_event> evs(1024);
  for (;;) {
    double t = now();
    if (!t_ready) {
      long ready = std::count_if(cs.begin(), cs.end(), [](const Conn& c) { return c.st != St::handshake; });
      if (ready == conns) t_ready = t;
      else if (t - t_connect > 30) { std::fprintf(stderr, "tls_loadgen: handshakes took over 30 s\n"); return 1; }
    }
    if (t_ready && !measuring && !t_begin && t - t_ready >= warmup)
      measuring = true, t_begin = t, srv0 = proc_cpu(pid), lg0 = own_cpu(), lat_us.reserve(1 << 20);
    if (measuring && t - t_begin >= duration) {
      t_end = t;
      break;
    }
    int n = epoll_wait(ep, evs.data(), int(evs.size()), 10);
    for (int i = 0; i < n; ++i) drive(*static_cast<Conn*>(evs[std::size_t(i)].data.ptr));
    if (std::all_of(cs.begin(), cs.end(), [](const Conn& c) { return c.st == St::dead; })) {
      std::fprintf(stderr, "tls_loadgen: every connection failed\n");
      return 1;
    }
  }
  double window = t_end - t_begin, srv1 = proc_cpu(pid), lg1 = own_cpu();
  std::sort(lat_us.begin(), lat_us.end());
  auto pct = [&](double q) { return lat_us.empty() ? 0.0 : double(lat_us[std::size_t(q * double(lat_us.size() - 1))]); };
  long alive = std::count_if(cs.begin(), cs.end(), [](const Conn& c) { return c.st != St::dead; });
  std::printf("conns=%d size=%zu rps=%.0f p50_us=%.1f p99_us=%.1f errors=%ld mode=%s handshakes_s=%.3f "
              "completed=%ld window_s=%.3f srv_cpu=%.2f lg_cpu=%.2f alive=%ld\n",
              conns, size, double(completed) / window, pct(0.50), pct(0.99), errors, plain ? "plain" : "tls",
              t_ready - t_connect, completed, window, srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) / window : -1.0,
              (lg1 - lg0) / window, alive);
  for (auto& c : cs) {
    if (c.ssl) SSL_free(c.ssl);
    close(c.fd);
  }
  if (ctx) SSL_CTX_free(ctx);
  close(ep);
}
