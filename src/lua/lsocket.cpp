// The socket object: classes (LuaSocket's tcp{master} ... udp{connected}), creation,
// the methods every class shares, error words, and name resolution before bind/connect.
#include "lsocket.hpp"

#include <corio/resolver.hpp>

#include <cerrno>
#include <cstring>
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
      return r == Role::client ? "corio.unix{client}" : r == Role::server ? "corio.unix{server}" : "corio.unix{master}";
    case Kind::udp:
      return r == Role::connected ? "corio.udp{connected}" : "corio.udp{unconnected}";
  }
  return "corio.?";
}

// The class as LuaSocket names it ("tcp{client}"): sock.class and tostring(sock).
const char* class_name(Kind k, Role r) { return registry_name(k, r) + 6; }

// ---- methods every class has ----

int l_close(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  s->sock->close();  // wakes every thread waiting on it with nil, "closed"
  // And those still waiting for a name. The list is taken first: a woken thread may
  // start another lookup on this socket, which this close must not end (nor loop on).
  ResolveThen* list = s->resolving;
  s->resolving = nullptr;
  for (ResolveThen* r = list; r; r = r->next_resolving) {
    Resolver::current().cancel(r->resolver_id);
    r->resolver_id = 0;
    r->owner = nullptr;
  }
  while (ResolveThen* r = list) {
    list = r->next_resolving;
    r->next_resolving = nullptr;
    r->resolve_error = Error::closed;
    r->finish();
  }
  lua_pushinteger(L, 1);
  return 1;
}

int l_getfd(lua_State* L) {
  lua_pushinteger(L, check_socket(L, 1)->sock->fd());
  return 1;
}

int l_setfd(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  lua_Integer fd = luaL_checkinteger(L, 2);
  s->sock->close();
  if (fd >= 0) s->sock->adopt(static_cast<int>(fd));
  return 0;
}

// True when a receive can be served from what is already buffered.
int l_dirty(lua_State* L) {
  lua_pushboolean(L, !check_socket(L, 1)->sock->input().empty());
  return 1;
}

// settimeout(seconds [, mode]): the longest a thread waits in one call; nil or < 0: no limit.
int l_settimeout(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  double t = luaL_optnumber(L, 2, -1);
  luaL_optstring(L, 3, "b");
  if (t < 0)
    s->timeout.reset();
  else
    s->timeout = from_seconds(t);
  lua_pushinteger(L, 1);
  return 1;
}

int l_gettimeout(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  lua_pushnumber(L, s->timeout ? to_seconds(*s->timeout) : -1);
  lua_pushnumber(L, -1);
  return 2;
}

int l_getstats(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  lua_pushnumber(L, static_cast<lua_Number>(s->sock->bytes_in));
  lua_pushnumber(L, static_cast<lua_Number>(s->sock->bytes_out));
  lua_pushnumber(L, to_seconds(Loop::now() - s->created));
  return 3;
}

int l_setstats(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  s->sock->bytes_in = static_cast<std::uint64_t>(luaL_optnumber(L, 2, static_cast<lua_Number>(s->sock->bytes_in)));
  s->sock->bytes_out = static_cast<std::uint64_t>(luaL_optnumber(L, 3, static_cast<lua_Number>(s->sock->bytes_out)));
  if (!lua_isnoneornil(L, 4)) s->created = Loop::now() - from_seconds(luaL_checknumber(L, 4));
  lua_pushinteger(L, 1);
  return 1;
}

const char* family_name(int family) {
  return family == AF_INET6 ? "inet6" : family == AF_UNIX ? "unix" : family == AF_INET ? "inet" : "unspec";
}

int push_address(lua_State* L, const Address& a) {
  if (a.family() == AF_UNIX) {
    lua_pushstring(L, a.ip().c_str());
    return 1;
  }
  lua_pushstring(L, a.ip().c_str());
  lua_pushinteger(L, a.port());
  lua_pushstring(L, family_name(a.family()));
  return 3;
}

int name_of(lua_State* L, bool peer) {
  LSocket* s = check_socket(L, 1);
  Address a;
  int r = peer ? getpeername(s->sock->fd(), a.data(), a.size_ptr()) : getsockname(s->sock->fd(), a.data(), a.size_ptr());
  if (r != 0) return push_error(L, {errno, std::generic_category()});
  return push_address(L, a);
}

int l_getsockname(lua_State* L) { return name_of(L, false); }
int l_getpeername(lua_State* L) { return name_of(L, true); }

int l_getfamily(lua_State* L) {
  lua_pushstring(L, family_name(check_socket(L, 1)->family));
  return 1;
}

// setthrottle(receive_bps, send_bps): nil for a direction means unlimited.
int l_setthrottle(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  double rx = luaL_optnumber(L, 2, 0), tx = luaL_optnumber(L, 3, 0);
  s->sock->throttle(Direction::read).set_rate(rx, Loop::now());
  s->sock->throttle(Direction::write).set_rate(tx, Loop::now());
  lua_pushinteger(L, 1);
  return 1;
}

// getthrottle() -> receive_bps, send_bps (nil: unlimited), so one direction can be changed alone.
int l_getthrottle(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  for (Direction d : {Direction::read, Direction::write}) {
    double rate = s->sock->throttle(d).rate();
    if (rate > 0)
      lua_pushnumber(L, rate);
    else
      lua_pushnil(L);
  }
  return 2;
}

// setlimit(bytes): the longest line, and from now on "*a" read, this socket buffers.
int l_setlimit(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "limit must be positive");
  s->sock->limit = static_cast<std::size_t>(n);
  s->sock->limit_all = true;
  lua_pushinteger(L, 1);
  return 1;
}

int l_tostring(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  lua_pushfstring(L, "%s: %p", class_name(s->kind, s->role), static_cast<void*>(s));
  return 1;
}

int l_gc(lua_State* L) {
  auto* s = static_cast<LSocket*>(lua_touserdata(L, 1));
  if (s && s->sock) {
    s->sock->destroy();
    s->sock = nullptr;
  }
  return 0;
}

const luaL_Reg kCommon[] = {
    {"close", l_close},           {"getfd", l_getfd},         {"setfd", l_setfd},
    {"dirty", l_dirty},           {"settimeout", l_settimeout}, {"gettimeout", l_gettimeout},
    {"getstats", l_getstats},     {"setstats", l_setstats},   {"setoption", l_setoption},
    {"getoption", l_getoption},   {"getsockname", l_getsockname}, {"getfamily", l_getfamily},
    {"setthrottle", l_setthrottle}, {"setlimit", l_setlimit},
    {"getthrottle", l_getthrottle}, {nullptr, nullptr},
};

void new_class(lua_State* L, Kind k, Role r) {
  luaL_newmetatable(L, registry_name(k, r));
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__corio_socket");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, l_close);  // like close(): waiters wake with "closed", the object stays valid
  lua_setfield(L, -2, "__close");
#endif
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);  // methods; the runtime (every method's upvalue) is at -3
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, kCommon, 1);
  if (r == Role::client || r == Role::connected) {
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, l_getpeername, 1);
    lua_setfield(L, -2, "getpeername");
  }
  if (k == Kind::udp)
    add_datagram_methods(L, r);
  else
    add_stream_methods(L, r);
  lua_pushstring(L, class_name(k, r));
  lua_setfield(L, -2, "class");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

// corio.tcp() (family chosen at bind/connect), corio.tcp6(), corio.udp(), corio.udp6(), corio.unix()
int create(lua_State* L, Kind k, int family) {
  int fd = -1;
  if (family != AF_UNSPEC) {
    fd = Socket::open(family, k == Kind::udp ? SOCK_DGRAM : SOCK_STREAM);
    if (fd < 0) return push_error(L, {-fd, std::generic_category()});
    if (family == AF_INET6) {
      int on = 1;  // as LuaSocket: an inet6 socket is IPv6 only
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    }
  }
  push_socket(L, runtime(L), k, k == Kind::udp ? Role::unconnected : Role::master, family, fd);
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
    {"tcp", l_tcp}, {"tcp4", l_tcp4}, {"tcp6", l_tcp6}, {"udp", l_udp},
    {"udp4", l_udp4}, {"udp6", l_udp6}, {"unix", l_unix}, {nullptr, nullptr},
};

}  // namespace

// ---- shared helpers ----

LSocket* check_socket(lua_State* L, int idx) {
  LSocket* s = to_magic_userdata<LSocket>(L, idx);  // LWrapped starts with an LSocket too
  if (s && s->sock) return s;
  luaL_argerror(L, idx, "corio socket expected");
  return nullptr;
}

LSocket* push_socket(lua_State* L, Runtime& rt, Kind kind, Role role, int family, int fd) {
  auto* s = static_cast<LSocket*>(new_userdata(L, sizeof(LSocket)));
  s->sock = nullptr;
  luaL_setmetatable(L, registry_name(kind, role));
  new (s) LSocket{&rt, new Socket(rt.loop, fd), kind, role, family, family == AF_UNSPEC, std::nullopt, Loop::now()};
  return s;
}

void set_role(lua_State* L, int idx, LSocket* s, Role role) {
  s->role = role;
  if (s->wrapped) return wrapped_role(s);  // a wrapper's one metatable dispatches on role
  luaL_getmetatable(L, registry_name(s->kind, role));
  lua_setmetatable(L, idx);
}

std::error_code ensure_fd(LSocket* s, int family) {
  if (s->has_fd()) return {};
  int fd = Socket::open(family, s->kind == Kind::udp ? SOCK_DGRAM : SOCK_STREAM);
  if (fd < 0) return {-fd, std::generic_category()};
  s->sock->adopt(fd, !s->wrapped);
  s->family = family;
  if (s->wrapped) wrapped_adopted(s);
  return {};
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

std::uint16_t check_port(lua_State* L, int idx) {
  lua_Integer p = 0;
  if (lua_type(L, idx) == LUA_TSTRING) {
    char* end;
    const char* str = lua_tostring(L, idx);
    p = std::strtol(str, &end, 10);
    if (*str == '\0' || *end != '\0') luaL_argerror(L, idx, "invalid port");
  } else {
    p = luaL_checkinteger(L, idx);
  }
  luaL_argcheck(L, p >= 0 && p <= 65535, idx, "port out of range");
  return static_cast<std::uint16_t>(p);
}

int SocketOp::start(lua_State* L, SocketOp* op, LSocket* s, Direction d) {
  if (s->sock->submit(*op, d, s->timeout)) {
    int n = op->push(L);
    delete op;
    return n;
  }
  op->queued(L);
  return op->wait(L);
}

// ---- name resolution ----

namespace {

// Waits for the resolver, then hands over to the ResolveThen operation.
void on_resolved(ResolveThen* then, std::error_code ec, std::vector<Address> addrs) {
  if (ec) {
    then->resolve_error = ec;
    then->finish();
    return;
  }
  if (then->resolved(std::move(addrs))) then->finish();
}

}  // namespace

int resolve_and(lua_State* L, LSocket* s, const char* host, std::uint16_t port, int family, ResolveThen* then) {
  if (auto a = Address::from_ip(host, port, family)) {
    if (then->resolved({*a})) {
      int n = then->push(L);
      delete then;
      return n;
    }
    return then->wait(L);
  }
  then->resolver_id = Resolver::current().resolve(
      host, port, family, [then](std::error_code ec, std::vector<Address> addrs) {
        then->resolver_id = 0;
        then->end_lookup();
        on_resolved(then, ec, std::move(addrs));
      });
  then->owner = s;
  then->next_resolving = s->resolving;
  s->resolving = then;
  return then->wait(L);
}

void ResolveThen::end_lookup() noexcept {
  if (!owner) return;
  for (ResolveThen** p = &owner->resolving; *p; p = &(*p)->next_resolving)
    if (*p == this) {
      *p = next_resolving;
      break;
    }
  owner = nullptr;
  next_resolving = nullptr;
}

ResolveThen::~ResolveThen() {
  if (resolver_id) Resolver::current().cancel(resolver_id);
  end_lookup();
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
