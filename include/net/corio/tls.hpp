// TLS as a transport of the socket engine (OpenSSL): a TlsSession sits under every reader
// and writer of a Socket (Socket::set_transport), so receive patterns, timeouts, close,
// atomic operations and throttling hold over TLS as over the descriptor. The handshake is
// an engine operation (TlsHandshake) driven by the loop like any read.
//
//   auto ctx = corio::TlsContext::create({});            // a client, verified by default
//   if (auto ec = corio::start_tls(stream.socket(), ctx.value, "example.org")) ...;
//   co_await stream.handshake(5s);                        // then read and write as before
//
// Settings use LuaSec's names. Failures are std::error_codes: tls_category() carries
// OpenSSL's reason ("wrong version number"), verify_category() a certificate verification
// failure ("certificate verify failed: hostname mismatch").
#pragma once
#include <corio/result.hpp>
#include <corio/socket.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace corio {

const std::error_category& tls_category() noexcept;     // value: OpenSSL's packed error code
const std::error_category& verify_category() noexcept;  // value: X509_V_ERR_*

struct TlsParams {
  enum class Mode { client, server };
  Mode mode = Mode::client;
  // The peer's certificate is checked (a client: always unless off; a server: a client
  // certificate is then required). Off only when asked for.
  bool verify = true;
  std::string cafile, capath;      // both empty: OpenSSL's default paths (SSL_CERT_FILE/DIR)
  std::string certificate, key;    // PEM files; a server needs both
  std::string password;            // of the key
  std::string ciphers;             // TLS 1.2 cipher list (OpenSSL syntax); empty: OpenSSL's
  std::string protocol = "any";    // the lowest version: "any" (TLS 1.2), "tlsv1_2", "tlsv1_3"
  std::vector<std::string> alpn;   // protocols offered (client) or accepted, in preference order
  // Server: other certificates by the name a client asks for (SNI); the rest of these
  // settings are the entry's own. A name not listed gets this context's certificate.
  std::vector<std::pair<std::string, TlsParams>> sni;
};

// An SSL_CTX: settings, certificates and (client side) the sessions kept for resumption,
// one per server name (at most kSessions), shared by the connections made from it on one
// thread.
class TlsContext {
 public:
  // A clear message in `why` when it fails (a missing file, a key that does not match).
  static Result<std::shared_ptr<TlsContext>> create(const TlsParams& params, std::string* why = nullptr);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  const TlsParams& params() const noexcept { return params_; }
  void* native() const noexcept { return ctx_; }  // SSL_CTX*

  static constexpr std::size_t kSessions = 256;
  // The session a client keeps for host (nullptr: none), and a new one to keep (its
  // reference is the context's now).
  void* session(const std::string& host) const;
  void keep(const std::string& host, void* session);
  // A server's SSL_CTX* for the name a client asked for (SNI); nullptr: this one's.
  void* native_for(std::string_view name) const;

 private:
  TlsContext(const TlsParams& p, void* ctx) : params_(p), ctx_(ctx) {}
  TlsParams params_;
  void* ctx_;
  std::string alpn_;  // the wire form of params_.alpn, which OpenSSL keeps pointing at
  std::vector<std::pair<std::string, std::shared_ptr<TlsContext>>> sni_;
  std::vector<std::pair<std::string, void*>> sessions_;  // SSL_SESSION*, oldest first
};

// What a finished handshake agreed on, and the peer's certificate (empty fields without one).
struct TlsInfo {
  std::string protocol, cipher, alpn;
  struct Certificate {
    std::string subject, issuer, notbefore, notafter, fingerprint;  // sha256, hex with ':'
  } peer;
  bool resumed = false;
};

// One connection's TLS state, the Transport of its Socket.
class TlsSession final : public Transport {
 public:
  // host: the name checked against the certificate (and sent as SNI); an IP literal is
  // checked against the certificate's IP entries and sends no SNI; empty: no name check.
  // early: bytes already read from fd that belong to the session (a ClientHello that came
  // right behind "STARTTLS"); the session reads them first.
  TlsSession(std::shared_ptr<TlsContext> ctx, int fd, std::string_view host, std::string early = {});
  ~TlsSession() override;

  IoOp::Status read(int fd, char* buf, std::size_t len, std::size_t& got, std::error_code& ec,
                    bool& drained) override;
  IoOp::Status write(int fd, const char* data, std::size_t len, std::size_t& put, std::error_code& ec) override;
  void closing(int fd) noexcept override;  // sends close_notify, without waiting
  // One step of the handshake: done (or an error in ec), wait (readability), or
  // throttled (it wants to write and the kernel's buffer is full: try again soon).
  IoOp::Status handshake(std::error_code& ec);
  bool established() const noexcept { return established_; }
  TlsInfo info() const;
  TlsContext& context() const noexcept { return *ctx_; }

  // What the session's BIO reads and writes.
  struct Io {
    int fd;
    std::string early;  // read before the session began, delivered first
    bool drained = false;  // the last recv came back short or would block
  };

 private:
  IoOp::Status outcome(int ret, std::error_code& ec);
  std::shared_ptr<TlsContext> ctx_;
  Io io_;
  void* ssl_;  // SSL*
  bool established_ = false;

 public:
  const std::string host;  // a client's server name: its sessions are kept under it
};

// Makes s a TLS connection (client or server side, as ctx says) from now on; s must be
// connected. Bytes it has buffered go to the session. Then submit a TlsHandshake before
// anything else.
std::error_code start_tls(Socket& s, std::shared_ptr<TlsContext> ctx, std::string_view host);

// The handshake as a read-direction operation: reads queued after it wait for it.
class TlsHandshake : public IoOp {
 public:
  Status step(Socket& s) override;
};

}  // namespace corio
