// The socket object: classes (LuaSocket's tcp{master} ... udp{connected}, unixstream{...}),
// creation, the methods every class shares, error words, and bind/connect through the
// engine's ConnectOp.
#include "lsocket.hpp"
#include "lprotect.hpp"

#include <corio/connect_op.hpp>
#include <corio/resolver.hpp>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <new>
#include <sys/socket.h>
#include <unistd.h>

namespace corio::lua {
namespace {

// The registry name of a class's metatable. LuaSocket registers "tcp{client}" and so on
// itself: a corio class under the same name would replace LuaSocket's (and its __gc).
const char* registry_name(Kind k, Role r) {
  switch (k) {
    case Kind::tcp:
      return r == Role::client ? "corio.tcp{client}" : r == Role::server ? "corio.tcp{server}" : "corio.tcp{master}";
    case Kind::unix_stream:
      return r == Role::client   ? "corio.unixstream{client}"
             : r == Role::server ? "corio.unixstream{server}"
                                 : "corio.unixstream{master}";
    case Kind::udp:
      return r == Role::connected ? "corio.udp{connected}" : "corio.udp{unconnected}";
  }
  return "corio.?";
}

const char* group_name(Kind k) { return k == Kind::tcp ? "tcp{any}" : k == Kind::udp ? "udp{any}" : "unixstream{any}"; }

// ---- methods every class has ----

// close(): wakes every thread waiting on the socket (a connect still resolving its name
// too) with nil, "closed"; the object stays valid.
template <Kind K>
int l_close(lua_State* L) {
  close_socket(check_socket<K>(L, 1));
  lua_pushnumber(L, 1);
  return 1;
}

template <Kind K>
int l_getfd(lua_State* L) {
  lua_pushnumber(L, check_socket<K>(L, 1)->sock->fd());
  return 1;
}

// setfd(fd): "very dangerous" in LuaSocket's words. The old descriptor is left open (its
// new owner's: setfd(-1) hands a descriptor over) and what was buffered stays; threads
// waiting on the old one wake with "closed".
template <Kind K>
int l_setfd(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  // LuaSocket casts whatever number comes; NaN, negative or past int: no descriptor
  double d = luaL_checknumber(L, 2);
  int fd = d >= 0 && d <= INT_MAX ? static_cast<int>(d) : -1;
  if (s->wrapped) {
    wrapped_setfd(s, fd);
    return 0;
  }
  s->sock->detach();
  if (fd >= 0) s->sock->adopt(fd);
  return 0;
}

// True when a receive can be served from what is already buffered.
template <Kind K>
int l_dirty(lua_State* L) {
  lua_pushboolean(L, !check_socket<K>(L, 1)->sock->input().empty());
  return 1;
}

// settimeout(seconds [, "b" | "t"]): the block and total timeouts, kept apart as LuaSocket
// keeps them; nil or negative: none.
template <Kind K>
int l_settimeout(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  double t = luaL_optnumber(L, 2, -1);
  const char* mode = luaL_optstring(L, 3, "b");
  switch (*mode) {
    case 'b':
      s->set_timeouts(t, s->total);
      break;
    case 'r':
    case 't':
      s->set_timeouts(s->block, t);
      break;
    default:
      return luaL_argerror(L, 3, "invalid timeout mode");
  }
  lua_pushnumber(L, 1);
  return 1;
}

template <Kind K>
int l_gettimeout(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  lua_pushnumber(L, s->block);
  lua_pushnumber(L, s->total);
  return 2;
}

// tcp and unixstream clients (as LuaSocket), and udp sockets (corio's own).
template <Kind K>
LSocket* check_stats(lua_State* L) {
  if constexpr (K == Kind::udp) return check_socket<K>(L, 1);
  return check_role<K>(L, 1, Role::client);
}

template <Kind K>
int l_getstats(lua_State* L) {
  LSocket* s = check_stats<K>(L);
  lua_pushnumber(L, static_cast<lua_Number>(s->sock->bytes_in));
  lua_pushnumber(L, static_cast<lua_Number>(s->sock->bytes_out));
  lua_pushnumber(L, to_seconds(Loop::now() - s->created));
  return 3;
}

// A count setstats was given: NaN and negatives are 0, past 2^64 the most there is.
std::uint64_t byte_count(lua_Number n) {
  if (!(n > 0)) return 0;
  if (n >= 18446744073709551616.0) return UINT64_MAX;
  return static_cast<std::uint64_t>(n);
}

template <Kind K>
int l_setstats(lua_State* L) {
  LSocket* s = check_stats<K>(L);
  s->sock->bytes_in = byte_count(luaL_optnumber(L, 2, static_cast<lua_Number>(s->sock->bytes_in)));
  s->sock->bytes_out = byte_count(luaL_optnumber(L, 3, static_cast<lua_Number>(s->sock->bytes_out)));
  if (lua_isnumber(L, 4)) s->created = Loop::now() - from_seconds(lua_tonumber(L, 4));
  lua_pushnumber(L, 1);
  return 1;
}

// The family names getpeername/getsockname give ("inet"); getfamily says "inet4".
const char* family_name(int family) {
  return family == AF_INET6 ? "inet6" : family == AF_INET ? "inet" : family == AF_UNSPEC ? "unspec" : "unknown";
}

// ip, port, family; LuaSocket gives getsockname's port as a string, getpeername's as a number.
int name_of(lua_State* L, LSocket* s, bool peer) {
  Address a;
  int fd = s->sock->fd();
  int r = peer ? getpeername(fd, a.data(), a.size_ptr()) : getsockname(fd, a.data(), a.size_ptr());
  if (r != 0) return push_error(L, {errno, std::generic_category()});
  lua_pushstring(L, a.ip().c_str());
  if (s->kind == Kind::unix_stream) return 1;
  if (peer)
    lua_pushinteger(L, a.port());
  else
    lua_pushstring(L, std::to_string(a.port()).c_str());
  lua_pushstring(L, family_name(s->family));
  return 3;
}

template <Kind K>
int l_getsockname(lua_State* L) { return name_of(L, check_socket<K>(L, 1), false); }
template <Kind K>
int l_getpeername(lua_State* L) {
  LSocket* s = K == Kind::udp ? check_role<K>(L, 1, Role::connected) : check_socket<K>(L, 1);
  return name_of(L, s, true);
}

template <Kind K>
int l_getfamily(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  lua_pushstring(L, s->kind == Kind::unix_stream ? "unix" : s->family == AF_INET6 ? "inet6" : "inet4");
  return 1;
}

// A rate in bytes per second: nil, 0 or negative is unlimited, math.huge too.
double check_rate(lua_State* L, int idx) {
  lua_Number n = luaL_optnumber(L, idx, 0);
  luaL_argcheck(L, !std::isnan(n), idx, "rate is not a number");
  return n;
}

// setthrottle(receive_bps, send_bps): nil for a direction means unlimited.
template <Kind K>
int l_setthrottle(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  double rx = check_rate(L, 2), tx = check_rate(L, 3);
  s->sock->throttle(Direction::read).set_rate(rx, Loop::now());
  s->sock->throttle(Direction::write).set_rate(tx, Loop::now());
  lua_pushnumber(L, 1);
  return 1;
}

// getthrottle() -> receive_bps, send_bps (nil: unlimited), so one direction can be changed alone.
template <Kind K>
int l_getthrottle(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  for (Direction d : {Direction::read, Direction::write}) {
    double rate = s->sock->throttle(d).rate();
    if (rate > 0)
      lua_pushnumber(L, rate);
    else
      lua_pushnil(L);
  }
  return 2;
}

// corio.setlimit(bytes): the process-wide default line limit (1 MiB) of sockets without
// their own; math.huge: none, for code that reads huge lines.
int l_default_limit(lua_State* L) {
  Socket::set_default_limit(check_bytes(L, 1));
  return 0;
}

// corio.nameservers("host[:port],...") -> 1 | nil, message: the DNS servers names go to
// instead of /etc/resolv.conf's.
int l_nameservers(lua_State* L) {
  const char* list = luaL_checkstring(L, 1);
  return push_status(L, Resolver::of(runtime(L).loop).set_servers(list));
}

#if LUA_VERSION_NUM >= 504
int l_close_any(lua_State* L) {  // __close
  close_socket(check_any_socket(L, 1));
  return 0;
}
#endif

int l_tostring(lua_State* L) {
  LSocket* s = check_any_socket(L, 1);
  lua_pushfstring(L, "%s: %p", class_name(s->kind, s->role), static_cast<void*>(s));
  return 1;
}

int l_gc(lua_State* L) {
  auto* s = static_cast<LSocket*>(lua_touserdata(L, 1));
  if (s && s->sock) {
    s->sock->destroy();
    s->sock = nullptr;
  }
  if (s) std::string().swap(s->host);  // the userdata's memory is Lua's: no destructor runs
  return 0;
}

template <Kind K>
constexpr luaL_Reg kCommon[] = {
    {"close", protect<l_close<K>>},
    {"getfd", protect<l_getfd<K>>},
    {"setfd", protect<l_setfd<K>>},
    {"dirty", protect<l_dirty<K>>},
    {"settimeout", protect<l_settimeout<K>>},
    {"gettimeout", protect<l_gettimeout<K>>},
    {"setoption", protect<l_setoption<K>>},
    {"getoption", protect<l_getoption<K>>},
    {"getsockname", protect<l_getsockname<K>>},
    {"getpeername", protect<l_getpeername<K>>},
    {"getfamily", protect<l_getfamily<K>>},
    {"setthrottle", protect<l_setthrottle<K>>},
    {"getthrottle", protect<l_getthrottle<K>>},
    {"getstats", protect<l_getstats<K>>},
    {"setstats", protect<l_setstats<K>>},
    {nullptr, nullptr},
};

const luaL_Reg* common_methods(Kind k) {
  return k == Kind::tcp ? kCommon<Kind::tcp> : k == Kind::udp ? kCommon<Kind::udp> : kCommon<Kind::unix_stream>;
}

// One metatable per class; as in LuaSocket every class of a kind has all the kind's methods,
// and those meant for another class raise LuaSocket's error.
void new_class(lua_State* L, Kind k, Role r) {
  luaL_newmetatable(L, registry_name(k, r));
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__corio_socket");
  lua_pushcfunction(L, protect<l_gc>);
  lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, protect<l_close_any>);  // like close(): waiters wake with "closed", the object stays valid
  lua_setfield(L, -2, "__close");
#endif
  lua_pushcfunction(L, protect<l_tostring>);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);  // methods; the runtime is at -3
  const luaL_Reg* sets[] = {common_methods(k), k == Kind::udp ? kDatagramMethods : stream_methods(k), tls_methods(k)};
  for (const luaL_Reg* set : sets) {
    if (!set) continue;
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, set, 1);
  }
  lua_pushstring(L, class_name(k, r));
  lua_setfield(L, -2, "class");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

// corio.tcp() (family chosen at bind/connect), tcp4(), tcp6(), udp(), udp4(), udp6(), unix()
int create(lua_State* L, Kind k, int family) {
  LSocket* s = push_socket(L, runtime(L), k, k == Kind::udp ? Role::unconnected : Role::master, family, -1);
  // renew() opens the descriptor as every later one (an inet6 one IPv6 only, as LuaSocket's)
  if (family != AF_UNSPEC) {
    if (std::error_code ec = s->sock->renew(family, k == Kind::udp ? SOCK_DGRAM : SOCK_STREAM)) return push_error(L, ec);
  }
  return 1;
}

int l_tcp(lua_State* L) { return create(L, Kind::tcp, AF_UNSPEC); }
int l_tcp4(lua_State* L) { return create(L, Kind::tcp, AF_INET); }
int l_tcp6(lua_State* L) { return create(L, Kind::tcp, AF_INET6); }
int l_udp(lua_State* L) { return create(L, Kind::udp, AF_UNSPEC); }
int l_udp4(lua_State* L) { return create(L, Kind::udp, AF_INET); }
int l_udp6(lua_State* L) { return create(L, Kind::udp, AF_INET6); }
int l_unix(lua_State* L) { return create(L, Kind::unix_stream, AF_UNIX); }

const luaL_Reg kConstructors[] = {
    {"tcp", protect<l_tcp>},   {"tcp4", protect<l_tcp4>}, {"tcp6", protect<l_tcp6>}, {"udp", protect<l_udp>},
    {"udp4", protect<l_udp4>}, {"udp6", protect<l_udp6>}, {"unix", protect<l_unix>}, {"setlimit", protect<l_default_limit>},
    {"nameservers", protect<l_nameservers>}, {nullptr, nullptr},
};

// ---- bind and connect (setsockname, setpeername) ----

// A connect's class: tcp{client}, unixstream{client}, udp{connected}.
void become_connected(lua_State* L, int idx, LSocket* s) {
  set_role(L, idx, s, s->kind == Kind::udp ? Role::connected : Role::client);
}

class AddressOp final : public SocketOp<ConnectOp> {
 public:
  AddressOp(Runtime& rt, LSocket* s, bool bind) : SocketOp(rt), s_(s), bind_(bind) {}

  int push(lua_State* L) override {
    // The family is set once a connect succeeds, or stops on its first attempt (a zero
    // timeout: it goes on), as LuaSocket sets it.
    if (!error || (error == Error::timeout && s_->timeout() == Duration::zero())) s_->family = s_->sock->family();
    // As LuaSocket's, a failed unixstream connect or bind destroys the descriptor.
    if (error && s_->kind == Kind::unix_stream) close_socket(s_);
    if (!bind_ && (!error || s_->kind == Kind::tcp)) {
      push_anchor(L);
      become_connected(L, lua_gettop(L), s_);
      lua_pop(L, 1);
    }
    return push_status(L, error);
  }

 private:
  LSocket* s_;
  bool bind_;
};

}  // namespace

// ---- shared helpers ----

void close_socket(LSocket* s) {
  if (s->wrapped) return wrapped_close(s);
  s->sock->close();
}

// A byte count that may be math.huge (no bound): SIZE_MAX then.
std::size_t check_bytes(lua_State* L, int idx) {
  lua_Number n = luaL_checknumber(L, idx);
  luaL_argcheck(L, n >= 1, idx, "must be at least 1 (math.huge: no limit)");
  return n >= 9007199254740992.0 ? SIZE_MAX : static_cast<std::size_t>(n);
}

void LSocket::set_timeouts(double block_s, double total_s) noexcept {
  block = block_s;
  total = total_s;
  double t = block >= 0 && (total < 0 || block < total) ? block : total;
  wait = t >= 0 ? std::optional<Duration>(from_seconds(t)) : std::nullopt;  // none for NaN too
}

const char* class_name(Kind k, Role r) { return registry_name(k, r) + 6; }

void bad_socket(lua_State* L, int idx, Kind kind, std::optional<Role> role) {
  luaL_argerror(L, idx, lua_pushfstring(L, "%s expected", role ? class_name(kind, *role) : group_name(kind)));
  std::abort();  // not reached: luaL_argerror raises
}

LSocket* check_any_socket(lua_State* L, int idx) {
  LSocket* s = to_magic_userdata<LSocket>(L, idx);
  if (!s || !s->sock) luaL_argerror(L, idx, "corio socket expected");
  return s;
}

LSocket* push_socket(lua_State* L, Runtime& rt, Kind kind, Role role, int family, int fd) {
  auto* s = static_cast<LSocket*>(new_userdata(L, sizeof(LSocket)));
  s->sock = nullptr;
  luaL_setmetatable(L, registry_name(kind, role));
  auto* engine = new Socket(rt.loop, fd);  // nothing may raise a Lua error while this is unowned
  new (s) LSocket(&rt, engine, kind, role, family);
  return s;
}

void set_role(lua_State* L, int idx, LSocket* s, Role role) {
  s->role = role;
  if (s->wrapped) return wrapped_role(s);  // a wrapper's one metatable dispatches on role
  luaL_getmetatable(L, registry_name(s->kind, role));
  lua_setmetatable(L, idx);
}

std::string error_message(std::error_code ec) {
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    switch (ec.value()) {  // LuaSocket's own words for these (socket_strerror)
      case EADDRINUSE: return "address already in use";
      case EISCONN: return "already connected";
      case EACCES: return "permission denied";
      case ECONNREFUSED: return "connection refused";
      case ECONNABORTED:
      case ECONNRESET:
      case EPIPE: return "closed";
      case ETIMEDOUT: return "timeout";
      default: return std::strerror(ec.value());
    }
  }
  return ec.message();
}

int push_error(lua_State* L, std::error_code ec) {
  lua_pushnil(L);
  lua_pushstring(L, error_message(ec).c_str());
  return 2;
}

int push_status(lua_State* L, std::error_code ec) {
  if (ec) return push_error(L, ec);
  lua_pushnumber(L, 1);
  return 1;
}

namespace {

// A port number, or a service name from /etc/services ("http"), as getaddrinfo takes it.
// Digits are taken modulo 65536 and "" is 0, as glibc's getaddrinfo takes them.
std::optional<std::uint16_t> service_port(const char* port, int type) {
  if (std::strspn(port, "0123456789") == std::strlen(port))
    return static_cast<std::uint16_t>(std::strtoul(port, nullptr, 10));
  servent se, *found = nullptr;
  char buf[1024];
  if (getservbyname_r(port, type == SOCK_DGRAM ? "udp" : "tcp", &se, buf, sizeof buf, &found) != 0 || !found)
    return std::nullopt;
  return ntohs(static_cast<std::uint16_t>(found->s_port));
}

}  // namespace

// host_idx: the host (or the Unix path) and the port after it. LuaSocket takes the port
// as a string or a number.
int address_call(lua_State* L, LSocket* s, int host_idx, bool bind) {
  ConnectOp::Target t;
  t.type = s->kind == Kind::udp ? SOCK_DGRAM : SOCK_STREAM;
  size_t len;
  const char* host = luaL_checklstring(L, host_idx, &len);
  if (s->kind == Kind::unix_stream) {
    auto a = Address::from_path(std::string_view(host, std::strlen(host)));
    if (!a) {
      lua_pushnil(L);
      lua_pushliteral(L, "path too long");
      return 2;
    }
    t.address = *a;
  } else {
    auto port = service_port(luaL_checkstring(L, host_idx + 1), t.type);
    if (!port) {
      if (!bind && s->kind == Kind::tcp) become_connected(L, 1, s);  // as any failed tcp connect
      return push_error(L, ResolveError::service);  // as getaddrinfo says
    }
    t.host.assign(host, len);
    if (!bind) s->host = t.host;
    t.port = *port;
    t.family = s->family;
  }
  auto* op = new AddressOp(*s->rt, s, bind);
  op->anchor(L, 1);  // its class changes when it connects
  bool done = op->start(*s->sock, std::move(t), bind ? ConnectOp::Action::bind : ConnectOp::Action::connect,
                        s->timeout());
  return op->settle(L, done);
}

void register_sockets(lua_State* L) {
  // module table at -1, runtime at -2
  lua_pushvalue(L, -2);
  for (Kind k : {Kind::tcp, Kind::unix_stream})
    for (Role r : {Role::master, Role::client, Role::server}) new_class(L, k, r);
  for (Role r : {Role::unconnected, Role::connected}) new_class(L, Kind::udp, r);
  luaL_setfuncs(L, kConstructors, 1);
}

}  // namespace corio::lua
