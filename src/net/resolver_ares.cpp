// Resolver on c-ares: the channel's sockets are IoWatches and its retransmission deadline
// is a Timer on the loop, so a lookup costs no thread and nothing polls.
#include <corio/resolver.hpp>

#include <corio/io_watch.hpp>
#include <corio/timer.hpp>

#include <ares.h>
#include <netdb.h>

#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace corio {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "corio.resolve"; }
  std::string message(int c) const override {
    switch (static_cast<ResolveError>(c)) {
      case ResolveError::not_found: return "host or service not provided, or not known";
      case ResolveError::temporary: return "temporary failure in name resolution";
      case ResolveError::failure: return "non-recoverable failure in name resolution";
      case ResolveError::timeout: return "timeout";
      case ResolveError::cancelled: return "cancelled";
      case ResolveError::service: return "service not supported for socket type";
      case ResolveError::address_family: return "Address family for hostname not supported";
    }
    return "unknown resolver error";
  }
};

ResolveError from_ares(int status) noexcept {
  switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
    case ARES_ENODATA: return ResolveError::not_found;
    case ARES_ETIMEOUT: return ResolveError::timeout;
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED: return ResolveError::temporary;
    default: return ResolveError::failure;
  }
}

// A numeric host never needs the network; getaddrinfo with AI_NUMERICHOST does not block
// and accepts what the system resolver would (inet_aton forms, IPv6 scope ids).
bool numeric(const std::string& host, std::uint16_t port, int family, std::vector<Address>& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (family != AF_UNSPEC && ai->ai_family != family) continue;
    out.emplace_back(ai->ai_addr, ai->ai_addrlen);
    out.back().set_port(port);
  }
  ::freeaddrinfo(res);
  return true;  // numeric, possibly of the wrong family (then out stays empty)
}

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const Category c;
  return c;
}

struct Resolver::Impl {
  struct Lookup {
    explicit Lookup(Loop& loop) : timer(loop) {}
    Callback cb;
    Timer timer;  // the lookup's deadline, then (restarted at zero) its delivery
    std::uint16_t port = 0;  // set by us: c-ares rejects port 0 as a service
    bool in_ares = false;
    std::error_code ec;
    std::vector<Address> addrs;
  };
  // What c-ares holds for one query: it may outlive its Lookup (timed out, cancelled).
  struct Query {
    Impl* impl;
    Id id;
  };

  Loop& loop;
  ares_channel channel = nullptr;
  Timer ares_timer;
  // Watches are stopped, never erased, when c-ares closes a socket: that may happen inside
  // the watch's own callback, and a later socket with the same number reuses the object.
  std::unordered_map<int, std::unique_ptr<IoWatch>> watches;
  std::unordered_map<Id, std::unique_ptr<Lookup>> lookups;
  Id next_id = 1;
  std::size_t waiting = 0;  // lookups still in c-ares that someone wants
  std::size_t queries = 0;  // queries c-ares holds, wanted or not

  explicit Impl(Loop& l) : loop(l), ares_timer(l) {
    static std::once_flag once;
    static int init_rc = ARES_SUCCESS;
    std::call_once(once, [] { init_rc = ares_library_init(ARES_LIB_INIT_ALL); });
    int rc = init_rc;
    ares_options opts{};
    opts.sock_state_cb = &Impl::on_sock_state;
    opts.sock_state_cb_data = this;
    if (rc == ARES_SUCCESS) rc = ares_init_options(&channel, &opts, ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
  }

  ~Impl() {
    // Pending queries end with ARES_EDESTRUCTION, which on_result swallows; sockets are
    // closed through on_sock_state while the watches still exist.
    ares_destroy(channel);
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    auto& w = self->watches[fd];
    if (!w) {
      w = std::make_unique<IoWatch>(self->loop, fd, [self, fd](unsigned ev) {
        ares_process_fd(self->channel, ev & kReadable ? fd : ARES_SOCKET_BAD,
                        ev & kWritable ? fd : ARES_SOCKET_BAD);
        self->update_timer();
      });
      // Pending lookups hold the loop with their own timers; an abandoned query must not.
      w->unref();
    }
    if (!readable && !writable) {
      w->stop();  // c-ares is about to close fd
      return;
    }
    // A failed start leaves the watch stopped; the lookup then ends at its deadline.
    (void)w->start((readable ? kReadable : 0u) | (writable ? kWritable : 0u));
  }

  void update_timer() {
    timeval buf;
    timeval* tv = ares_timeout(channel, nullptr, &buf);
    if (!tv) {
      ares_timer.stop();
      return;
    }
    // c-ares truncates to whole milliseconds: one more keeps us from waking (and spinning)
    // just before its deadline.
    using namespace std::chrono;
    auto after = seconds(tv->tv_sec) + microseconds(tv->tv_usec) + milliseconds(1);
    ares_timer.start(after, [this] {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      update_timer();
    });
  }

  static void on_result(void* arg, int status, int, ares_addrinfo* ai) {
    auto* q = static_cast<Query*>(arg);
    Impl* self = q->impl;
    Id id = q->id;
    delete q;
    std::unique_ptr<ares_addrinfo, void (*)(ares_addrinfo*)> owned(ai, ares_freeaddrinfo);
    if (status == ARES_EDESTRUCTION) return;  // the Resolver is going away: no callbacks
    --self->queries;
    auto it = self->lookups.find(id);
    if (it == self->lookups.end() || !it->second->in_ares) return;  // timed out or cancelled
    Lookup& l = *it->second;
    std::vector<Address> addrs;
    for (ares_addrinfo_node* n = ai ? ai->nodes : nullptr; n; n = n->ai_next) {
      if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
      addrs.emplace_back(n->ai_addr, static_cast<socklen_t>(n->ai_addrlen));
      addrs.back().set_port(l.port);
    }
    l.in_ares = false;
    --self->waiting;
    if (status == ARES_SUCCESS && addrs.empty()) status = ARES_ENODATA;
    if (status != ARES_SUCCESS) addrs.clear();
    self->finish(id, l, status == ARES_SUCCESS ? std::error_code{} : make_error_code(from_ares(status)),
                 std::move(addrs));
  }

  // Results may arrive inside resolve() or inside ares_process_fd: the callback always
  // runs later from the loop, where it may freely resolve, cancel or destroy the Resolver.
  void finish(Id id, Lookup& l, std::error_code ec, std::vector<Address> addrs) {
    l.ec = ec;
    l.addrs = std::move(addrs);
    l.timer.start(Duration::zero(), [this, id] { deliver(id, {}); });
  }

  void deliver(Id id, std::error_code override_ec) {
    auto it = lookups.find(id);
    if (it == lookups.end()) return;
    std::unique_ptr<Lookup> l = std::move(it->second);  // owns the timer running this
    lookups.erase(it);
    if (l->in_ares) --waiting;
    Callback cb = std::move(l->cb);
    std::error_code ec = override_ec ? override_ec : l->ec;
    std::vector<Address> addrs = ec ? std::vector<Address>{} : std::move(l->addrs);
    drop_abandoned();
    l.reset();
    if (cb) cb(ec, std::move(addrs));
  }

  // Once nobody waits on c-ares, abandoned queries are cancelled rather than left to
  // retransmit (and keep the loop awake) until c-ares's own tries run out.
  void drop_abandoned() noexcept {
    if (waiting == 0 && queries > 0) {
      ares_cancel(channel);  // their callbacks find no wanted lookup
      update_timer();
    }
  }
};

Resolver::Resolver(Loop& loop) : impl_(std::make_unique<Impl>(loop)) {}
Resolver::~Resolver() = default;

namespace {

struct ResolverService final : Loop::Service {
  explicit ResolverService(Loop& loop) : resolver(loop) {}
  Resolver resolver;
};
const char kResolverKey = 0;

}  // namespace

Resolver& Resolver::of(Loop& loop) {
  if (auto* s = loop.service(&kResolverKey)) return static_cast<ResolverService*>(s)->resolver;
  return static_cast<ResolverService&>(loop.add_service(&kResolverKey, std::make_unique<ResolverService>(loop)))
      .resolver;
}

Resolver::Id Resolver::resolve(const std::string& host, std::uint16_t port, int family, Callback cb,
                               Duration timeout) {
  Impl& im = *impl_;
  Id id = im.next_id++;
  auto owned = std::make_unique<Impl::Lookup>(im.loop);
  Impl::Lookup& l = *owned;
  l.cb = std::move(cb);
  l.port = port;
  im.lookups.emplace(id, std::move(owned));

  std::vector<Address> addrs;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
    im.finish(id, l, make_error_code(ResolveError::failure), {});
  } else if (host.empty()) {
    im.finish(id, l, make_error_code(ResolveError::not_found), {});
  } else if (numeric(host, port, family, addrs)) {
    bool found = !addrs.empty();
    im.finish(id, l, found ? std::error_code{} : make_error_code(ResolveError::address_family), std::move(addrs));
  } else {
    l.timer.start(timeout, [&im, id] { im.deliver(id, make_error_code(ResolveError::timeout)); });
    ares_addrinfo_hints hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    // CARES_HOSTS may name another hosts file (c-ares's documented override; tests use it).
    hints.ai_flags = ARES_AI_ENVHOSTS;
    l.in_ares = true;
    ++im.waiting;
    ++im.queries;
    ares_getaddrinfo(im.channel, host.c_str(), nullptr, &hints, &Impl::on_result, new Impl::Query{&im, id});
    im.update_timer();
  }
  return id;
}

void Resolver::cancel(Id id) noexcept {
  Impl& im = *impl_;
  auto it = im.lookups.find(id);
  if (it == im.lookups.end()) return;
  if (it->second->in_ares) --im.waiting;
  im.lookups.erase(it);
  im.drop_abandoned();
}

std::error_code Resolver::set_servers(const std::string& servers) {
  if (ares_set_servers_ports_csv(impl_->channel, servers.c_str()) != ARES_SUCCESS)
    return make_error_code(ResolveError::failure);
  return {};
}

}  // namespace corio
