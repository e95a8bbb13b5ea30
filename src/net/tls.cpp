#include <corio/tls.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <strings.h>

namespace corio {
namespace {

class TlsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "corio.tls"; }
  std::string message(int c) const override {
    const char* r = ERR_reason_error_string(static_cast<unsigned long>(c));
    return r ? r : "TLS error " + std::to_string(c);
  }
};

class VerifyCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "corio.tls.verify"; }
  std::string message(int c) const override {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(c);
  }
};

// The first error OpenSSL queued (the rest cleared): its library and reason.
std::error_code last_error() {
  unsigned long e = ERR_peek_error();
  ERR_clear_error();
  if (e == 0) return std::make_error_code(std::errc::protocol_error);
  return {static_cast<int>(ERR_PACK(ERR_GET_LIB(e), 0, ERR_GET_REASON(e))), tls_category()};
}

SSL* ssl_of(void* p) { return static_cast<SSL*>(p); }

// The descriptor as OpenSSL's I/O, written with MSG_NOSIGNAL: a peer gone away is an error
// (EPIPE), never a SIGPIPE for the process (OpenSSL's socket BIO uses write()). Its data
// is the session's Io: the descriptor, and bytes read before the session began.
TlsSession::Io& io_of(BIO* b) { return *static_cast<TlsSession::Io*>(BIO_get_data(b)); }
int fd_of(BIO* b) { return io_of(b).fd; }

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t r;
  do r = ::send(fd_of(b), data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
  return static_cast<int>(r);
}

int bio_read(BIO* b, char* buf, int len) {
  BIO_clear_retry_flags(b);
  std::string& early = io_of(b).early;
  if (!early.empty()) {
    std::size_t n = std::min(early.size(), static_cast<std::size_t>(len));
    std::memcpy(buf, early.data(), n);
    early.erase(0, n);
    return static_cast<int>(n);
  }
  ssize_t r;
  do r = ::recv(fd_of(b), buf, static_cast<std::size_t>(len), 0);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(b);
  io_of(b).drained = r < len;
  return static_cast<int>(r);
}

long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* fd_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "corio socket");
    BIO_meth_set_write(bm, bio_write);
    BIO_meth_set_read(bm, bio_read);
    BIO_meth_set_ctrl(bm, bio_ctrl);
    BIO_meth_set_create(bm, bio_create);
    return bm;
  }();
  return m;
}

int password_cb(char* buf, int size, int, void* user) {
  const auto* pw = static_cast<const std::string*>(user);
  int n = static_cast<int>(std::min<std::size_t>(pw->size(), static_cast<std::size_t>(size)));
  std::memcpy(buf, pw->data(), static_cast<std::size_t>(n));
  return n;
}

// ALPN wire format: length-prefixed names.
std::string alpn_wire(const std::vector<std::string>& names) {
  std::string w;
  for (const auto& n : names)
    if (!n.empty() && n.size() < 256) w += static_cast<char>(n.size()) + n;
  return w;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void* arg) {
  const auto* ours = static_cast<const std::string*>(arg);
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(ours->data()),
                            static_cast<unsigned>(ours->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

// A server's choice of certificate by the name the client asked for.
int on_servername(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  if (void* other = static_cast<const TlsContext*>(arg)->native_for(name))
    SSL_set_SSL_CTX(ssl, static_cast<SSL_CTX*>(other));
  return SSL_TLSEXT_ERR_OK;
}

// A client's new session (TLS 1.3: a ticket after the handshake), kept for its server name.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* ts = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (!ts || ts->host.empty()) return 0;
  ts->context().keep(ts->host, session);
  return 1;  // the reference is ours
}

std::string name_of(X509_NAME* n) {
  if (!n) return {};
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}

std::string time_of(const ASN1_TIME* t) {
  if (!t) return {};
  BIO* b = BIO_new(BIO_s_mem());
  ASN1_TIME_print(b, t);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return s;
}

}  // namespace

const std::error_category& tls_category() noexcept {
  static const TlsCategory c;
  return c;
}

const std::error_category& verify_category() noexcept {
  static const VerifyCategory c;
  return c;
}

// ---- TlsContext ----

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsParams& p, std::string* why) {
  const bool server = p.mode == TlsParams::Mode::server;
  auto fail = [&](std::error_code ec, const char* what) -> Result<std::shared_ptr<TlsContext>> {
    if (why) *why = std::string(what) + ": " + ec.message();
    return {ec, nullptr};
  };
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) return fail(last_error(), "SSL_CTX_new");
  auto holder = std::shared_ptr<TlsContext>(new TlsContext(p, ctx));
  int min = p.protocol == "tlsv1_3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (p.protocol != "any" && p.protocol != "tlsv1_2" && p.protocol != "tlsv1_3") {
    if (why) *why = "protocol must be \"any\", \"tlsv1_2\" or \"tlsv1_3\"";
    return {std::make_error_code(std::errc::invalid_argument), nullptr};
  }
  SSL_CTX_set_min_proto_version(ctx, min);
  // A peer that closes without close_notify ends the stream as a plain close does;
  // renegotiation is refused (it is an attack surface and no client needs it).
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // One recv takes whatever has arrived, not a record header and then its body. A record
  // read ahead is OpenSSL's, never the kernel's: a read only waits after recv said EAGAIN.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!p.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, p.ciphers.c_str()) != 1)
    return fail(last_error(), "ciphers");
  // Always ours: OpenSSL's default would prompt on the terminal, blocking the loop.
  SSL_CTX_set_default_passwd_cb(ctx, password_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&holder->params_.password));
  if (!p.certificate.empty() && SSL_CTX_use_certificate_chain_file(ctx, p.certificate.c_str()) != 1)
    return fail(last_error(), ("certificate " + p.certificate).c_str());
  if (!p.key.empty()) {
    if (SSL_CTX_use_PrivateKey_file(ctx, p.key.c_str(), SSL_FILETYPE_PEM) != 1)
      return fail(last_error(), ("key " + p.key).c_str());
    if (SSL_CTX_check_private_key(ctx) != 1) return fail(last_error(), "key does not match the certificate");
  }
  if (server && (p.certificate.empty() || p.key.empty())) {
    if (why) *why = "a server needs a certificate and a key";
    return {std::make_error_code(std::errc::invalid_argument), nullptr};
  }
  if (p.verify) {
    int ok = p.cafile.empty() && p.capath.empty()
                 ? SSL_CTX_set_default_verify_paths(ctx)
                 : SSL_CTX_load_verify_locations(ctx, p.cafile.empty() ? nullptr : p.cafile.c_str(),
                                                 p.capath.empty() ? nullptr : p.capath.c_str());
    if (ok != 1) return fail(last_error(), "CA locations");
    SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!p.alpn.empty()) {
    holder->alpn_ = alpn_wire(p.alpn);
    if (server)
      SSL_CTX_set_alpn_select_cb(ctx, select_alpn, &holder->alpn_);
    else if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(holder->alpn_.data()),
                                     static_cast<unsigned>(holder->alpn_.size())) != 0)
      return fail(last_error(), "alpn");
  }
  if (server && !p.sni.empty()) {
    for (const auto& [name, sub] : p.sni) {
      TlsParams q = sub;
      q.mode = TlsParams::Mode::server;
      auto r = create(q, why);
      if (r.error) return r;
      holder->sni_.emplace_back(name, std::move(r.value));
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, holder.get());
  }
  if (!server) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  }
  return {{}, holder};
}

TlsContext::~TlsContext() {
  for (auto& [host, session] : sessions_) SSL_SESSION_free(static_cast<SSL_SESSION*>(session));
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void* TlsContext::session(const std::string& host) const {
  for (const auto& [h, session] : sessions_)
    if (h == host) return session;
  return nullptr;
}

void TlsContext::keep(const std::string& host, void* session) {
  for (auto& [h, old] : sessions_)
    if (h == host) {
      SSL_SESSION_free(static_cast<SSL_SESSION*>(old));
      old = session;
      return;
    }
  if (sessions_.size() >= kSessions) {
    SSL_SESSION_free(static_cast<SSL_SESSION*>(sessions_.front().second));
    sessions_.erase(sessions_.begin());
  }
  sessions_.emplace_back(host, session);
}

void* TlsContext::native_for(std::string_view name) const {
  for (const auto& [n, sub] : sni_)
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return sub->native();
  return nullptr;
}

// ---- TlsSession ----

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, int fd, std::string_view name, std::string early)
    : ctx_(std::move(ctx)), io_{fd, std::move(early)}, ssl_(SSL_new(static_cast<SSL_CTX*>(ctx_->native()))),
      host(ctx_->params().mode == TlsParams::Mode::client ? name : std::string_view{}) {
  SSL* ssl = ssl_of(ssl_);
  BIO* bio = ssl ? BIO_new(fd_method()) : nullptr;
  if (!bio) {
    SSL_free(ssl);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, &io_);
  SSL_set_bio(ssl, bio, bio);
  if (ctx_->params().mode == TlsParams::Mode::server) {
    SSL_set_accept_state(ssl);
    return;
  }
  SSL_set_connect_state(ssl);
  if (host.empty()) return;
  SSL_set_app_data(ssl, this);
  if (void* session = ctx_->session(host)) SSL_set_session(ssl, static_cast<SSL_SESSION*>(session));
  const std::string& h = host;
  unsigned char ip[16];
  bool literal = inet_pton(AF_INET, h.c_str(), ip) == 1 || inet_pton(AF_INET6, h.c_str(), ip) == 1;
  if (literal) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, h.c_str());
    SSL_set1_host(ssl, h.c_str());
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_of(ssl_)); }

// What an SSL call's return means for the engine.
IoOp::Status TlsSession::outcome(int ret, std::error_code& ec) {
  SSL* ssl = ssl_of(ssl_);
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ: return IoOp::Status::wait;
    case SSL_ERROR_WANT_WRITE: return IoOp::Status::throttled;  // rare: the kernel's buffer is full
    case SSL_ERROR_ZERO_RETURN: ec = Error::closed; return IoOp::Status::done;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      ec = errno == 0 || errno == ECONNRESET || errno == EPIPE ? std::error_code(Error::closed)
                                                               : std::error_code(errno, std::generic_category());
      return IoOp::Status::done;
    default: {
      long v = SSL_get_verify_result(ssl);
      if (!established_ && v != X509_V_OK) {
        ERR_clear_error();
        ec = {static_cast<int>(v), verify_category()};
      } else {
        ec = last_error();
      }
      return IoOp::Status::done;
    }
  }
}

IoOp::Status TlsSession::handshake(std::error_code& ec) {
  if (established_) return IoOp::Status::done;
  ERR_clear_error();
  errno = 0;
  int r = SSL_do_handshake(ssl_of(ssl_));
  if (r == 1) {
    established_ = true;
    return IoOp::Status::done;
  }
  return outcome(r, ec);
}

IoOp::Status TlsSession::read(int, char* buf, std::size_t len, std::size_t& got, std::error_code& ec,
                              bool& drained) {
  got = 0;
  if (!established_) {  // a read before the handshake finishes it first
    IoOp::Status st = handshake(ec);
    if (st != IoOp::Status::done || ec) return st;
  }
  SSL* ssl = ssl_of(ssl_);
  // The recv after the last record would only say EAGAIN (one saved per echoed message).
  if (drained && io_.early.empty() && !SSL_has_pending(ssl)) return IoOp::Status::wait;
  ERR_clear_error();
  errno = 0;
  io_.drained = drained;  // what a read served from OpenSSL's buffer leaves as it was
  int ok = SSL_read_ex(ssl, buf, len, &got);
  drained = io_.drained;
  return ok == 1 ? IoOp::Status::done : outcome(0, ec);
}

// A writer waits for writability: what wants reading is retried soon instead (a handshake
// in progress on the read side), what wants writing waits for it.
static IoOp::Status for_writer(IoOp::Status st) {
  if (st == IoOp::Status::throttled) return IoOp::Status::wait;
  if (st == IoOp::Status::wait) return IoOp::Status::throttled;
  return st;
}

IoOp::Status TlsSession::write(int, const char* data, std::size_t len, std::size_t& put, std::error_code& ec) {
  put = 0;
  if (!established_) {
    IoOp::Status st = handshake(ec);
    if (st != IoOp::Status::done || ec) return for_writer(st);
  }
  if (len == 0) return IoOp::Status::done;
  ERR_clear_error();
  errno = 0;
  if (SSL_write_ex(ssl_of(ssl_), data, len, &put) == 1) return IoOp::Status::done;
  return for_writer(outcome(0, ec));
}

void TlsSession::closing(int) noexcept {
  if (established_) {
    ERR_clear_error();
    SSL_shutdown(ssl_of(ssl_));  // one try: close_notify if the kernel takes it
    ERR_clear_error();
  }
}

TlsInfo TlsSession::info() const {
  SSL* ssl = ssl_of(ssl_);
  TlsInfo i;
  i.protocol = SSL_get_version(ssl);
  if (const char* c = SSL_get_cipher_name(ssl)) i.cipher = c;
  const unsigned char* a = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(ssl, &a, &n);
  if (a) i.alpn.assign(reinterpret_cast<const char*>(a), n);
  i.resumed = SSL_session_reused(ssl) == 1;
  if (X509* cert = SSL_get1_peer_certificate(ssl)) {
    i.peer.subject = name_of(X509_get_subject_name(cert));
    i.peer.issuer = name_of(X509_get_issuer_name(cert));
    i.peer.notbefore = time_of(X509_get0_notBefore(cert));
    i.peer.notafter = time_of(X509_get0_notAfter(cert));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1) {
      static const char hex[] = "0123456789ABCDEF";
      for (unsigned k = 0; k < mdlen; ++k) {
        if (k) i.peer.fingerprint += ':';
        i.peer.fingerprint += hex[md[k] >> 4];
        i.peer.fingerprint += hex[md[k] & 15];
      }
    }
    X509_free(cert);
  }
  return i;
}

std::error_code start_tls(Socket& s, std::shared_ptr<TlsContext> ctx, std::string_view host) {
  if (s.closed()) return Error::closed;
  if (!ctx) return std::make_error_code(std::errc::invalid_argument);
  if (s.transport()) return std::make_error_code(std::errc::operation_not_permitted);
  // Bytes already read in plain text belong to the session (a pipelined ClientHello).
  std::string early(s.input().view());
  s.input().consume(early.size());
  s.set_transport(std::make_unique<TlsSession>(std::move(ctx), s.fd(), host, std::move(early)));
  return {};
}

IoOp::Status TlsHandshake::step(Socket& s) {
  if (s.closed()) {
    error = Error::closed;
    return Status::done;
  }
  Transport* t = s.transport();
  return t ? t->handshake(error) : Status::done;  // throttled: it wants to write (Socket::park)
}

}  // namespace corio
