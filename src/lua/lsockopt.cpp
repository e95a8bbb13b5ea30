// setoption / getoption: LuaSocket's option names per class, value shapes, argument checks
// and words (src/options.c of LuaSocket 3.1). Options are set through the engine, which
// applies them again to a descriptor it renews (a connect's next attempt).
#include "lsocket.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace corio::lua {
namespace {

enum class Shape { boolean, integer, linger, membership, membership6, address, error };

struct Option {
  const char* name;
  int level;
  int opt;
  Shape shape;
};

// What each class takes; LuaSocket refuses the others as "unsupported option".
const Option kTcpSet[] = {
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, Shape::boolean},
    {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, Shape::boolean},
    {"tcp-keepidle", IPPROTO_TCP, TCP_KEEPIDLE, Shape::integer},
    {"tcp-keepcnt", IPPROTO_TCP, TCP_KEEPCNT, Shape::integer},
    {"tcp-keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, Shape::integer},
    {"ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, Shape::boolean},
    {"linger", SOL_SOCKET, SO_LINGER, Shape::linger},
    {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, Shape::integer},
    {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, Shape::integer},
    {"tcp-defer-accept", IPPROTO_TCP, TCP_DEFER_ACCEPT, Shape::integer},
    {"tcp-fastopen", IPPROTO_TCP, TCP_FASTOPEN, Shape::integer},
    {"tcp-fastopen-connect", IPPROTO_TCP, TCP_FASTOPEN_CONNECT, Shape::boolean},
    {nullptr, 0, 0, Shape::error},
};
const Option kTcpGet[] = {
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, Shape::boolean},
    {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, Shape::boolean},
    {"tcp-keepidle", IPPROTO_TCP, TCP_KEEPIDLE, Shape::integer},
    {"tcp-keepcnt", IPPROTO_TCP, TCP_KEEPCNT, Shape::integer},
    {"tcp-keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, Shape::integer},
    {"linger", SOL_SOCKET, SO_LINGER, Shape::linger},
    {"error", SOL_SOCKET, SO_ERROR, Shape::error},
    {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, Shape::integer},
    {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, Shape::integer},
    {nullptr, 0, 0, Shape::error},
};
// ipv6-multicast-hops is IPV6_MULTICAST_HOPS (LuaSocket 3.1 sets the unicast hops by mistake).
const Option kUdpSet[] = {
    {"dontroute", SOL_SOCKET, SO_DONTROUTE, Shape::boolean},
    {"broadcast", SOL_SOCKET, SO_BROADCAST, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, Shape::boolean},
    {"ip-multicast-if", IPPROTO_IP, IP_MULTICAST_IF, Shape::address},
    {"ip-multicast-ttl", IPPROTO_IP, IP_MULTICAST_TTL, Shape::integer},
    {"ip-multicast-loop", IPPROTO_IP, IP_MULTICAST_LOOP, Shape::boolean},
    {"ip-add-membership", IPPROTO_IP, IP_ADD_MEMBERSHIP, Shape::membership},
    {"ip-drop-membership", IPPROTO_IP, IP_DROP_MEMBERSHIP, Shape::membership},
    {"ipv6-unicast-hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, Shape::integer},
    {"ipv6-multicast-hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, Shape::integer},
    {"ipv6-multicast-loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, Shape::boolean},
    {"ipv6-add-membership", IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, Shape::membership6},
    {"ipv6-drop-membership", IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, Shape::membership6},
    {"ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, Shape::boolean},
    {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, Shape::integer},
    {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, Shape::integer},
    {nullptr, 0, 0, Shape::error},
};
const Option kUdpGet[] = {
    {"dontroute", SOL_SOCKET, SO_DONTROUTE, Shape::boolean},
    {"broadcast", SOL_SOCKET, SO_BROADCAST, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, Shape::boolean},
    {"ip-multicast-if", IPPROTO_IP, IP_MULTICAST_IF, Shape::address},
    {"ip-multicast-loop", IPPROTO_IP, IP_MULTICAST_LOOP, Shape::boolean},
    {"error", SOL_SOCKET, SO_ERROR, Shape::error},
    {"ipv6-unicast-hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, Shape::integer},
    {"ipv6-multicast-hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, Shape::integer},
    {"ipv6-multicast-loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, Shape::boolean},
    {"ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, Shape::boolean},
    {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, Shape::integer},
    {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, Shape::integer},
    {nullptr, 0, 0, Shape::error},
};
// unixstream: LuaSocket sets these three; getting them (and "error") is corio's own.
const Option kUnix[] = {
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"linger", SOL_SOCKET, SO_LINGER, Shape::linger},
    {nullptr, 0, 0, Shape::error},
};
const Option kUnixGet[] = {
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"linger", SOL_SOCKET, SO_LINGER, Shape::linger},
    {"error", SOL_SOCKET, SO_ERROR, Shape::error},
    {nullptr, 0, 0, Shape::error},
};

const Option& check_option(lua_State* L, const Option* table) {
  const char* name = luaL_checkstring(L, 2);
  for (const Option* o = table; o->name; ++o)
    if (std::strcmp(o->name, name) == 0) return *o;
  char msg[57];
  std::snprintf(msg, sizeof msg, "unsupported option `%.35s'", name);  // LuaSocket's cut
  luaL_argerror(L, 2, msg);
  return *table;
}

int failed(lua_State* L, const char* what) {
  lua_pushnil(L);
  lua_pushstring(L, what);
  return 2;
}

// A field of the table at 3 that must have a type (LuaSocket's checks and words).
void field(lua_State* L, const char* name, bool ok(lua_State*, int), const char* msg) {
  lua_getfield(L, 3, name);
  if (!ok(L, -1)) luaL_argerror(L, 3, msg);
}
bool is_boolean(lua_State* L, int i) { return lua_isboolean(L, i); }
bool is_number(lua_State* L, int i) { return lua_isnumber(L, i) != 0; }
bool is_string(lua_State* L, int i) { return lua_isstring(L, i) != 0; }

// "boolean expected, got number", as LuaSocket's auxiliar_typeerror words it.
void type_error(lua_State* L, int idx, int type) {
  luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got %s", lua_typename(L, type), luaL_typename(L, idx)));
}

void check_table(lua_State* L) {
  if (!lua_istable(L, 3)) type_error(L, 3, LUA_TTABLE);
}

}  // namespace

template <Kind K>
int l_setoption(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  const Option& o = check_option(L, K == Kind::tcp ? kTcpSet : K == Kind::udp ? kUdpSet : kUnix);
  auto set = [L, s, &o](const void* v, socklen_t len) {
    if (s->sock->set_option(o.level, o.opt, v, len)) return failed(L, "setsockopt failed");  // whatever the reason
    lua_pushnumber(L, 1);
    return 1;
  };
  switch (o.shape) {
    case Shape::boolean: {
      if (!lua_isboolean(L, 3)) type_error(L, 3, LUA_TBOOLEAN);
      int v = lua_toboolean(L, 3);
      return set(&v, sizeof v);
    }
    case Shape::integer: {
      auto v = static_cast<int>(lua_tonumber(L, 3));
      return set(&v, sizeof v);
    }
    case Shape::linger: {
      check_table(L);
      linger li{};
      field(L, "on", is_boolean, "boolean 'on' field expected");
      li.l_onoff = lua_toboolean(L, -1);
      field(L, "timeout", is_number, "number 'timeout' field expected");
      li.l_linger = static_cast<int>(lua_tonumber(L, -1));
      return set(&li, sizeof li);
    }
    case Shape::address: {
      const char* ip = luaL_checkstring(L, 3);
      in_addr a{};
      a.s_addr = htonl(INADDR_ANY);
      if (std::strcmp(ip, "*") != 0 && !inet_aton(ip, &a)) luaL_argerror(L, 3, "ip expected");
      return set(&a, sizeof a);
    }
    case Shape::membership: {
      check_table(L);
      ip_mreq m{};
      field(L, "multiaddr", is_string, "string 'multiaddr' field expected");
      if (!inet_aton(lua_tostring(L, -1), &m.imr_multiaddr)) luaL_argerror(L, 3, "invalid 'multiaddr' ip address");
      field(L, "interface", is_string, "string 'interface' field expected");
      m.imr_interface.s_addr = htonl(INADDR_ANY);
      const char* itf = lua_tostring(L, -1);
      if (std::strcmp(itf, "*") != 0 && !inet_aton(itf, &m.imr_interface))
        luaL_argerror(L, 3, "invalid 'interface' ip address");
      return set(&m, sizeof m);
    }
    case Shape::membership6: {
      check_table(L);
      ipv6_mreq m{};
      field(L, "multiaddr", is_string, "string 'multiaddr' field expected");
      if (inet_pton(AF_INET6, lua_tostring(L, -1), &m.ipv6mr_multiaddr) != 1)
        luaL_argerror(L, 3, "invalid 'multiaddr' ip address");
      lua_getfield(L, 3, "interface");
      if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_argerror(L, 3, "number 'interface' field expected");
        m.ipv6mr_interface = static_cast<unsigned>(lua_tonumber(L, -1));
      }
      return set(&m, sizeof m);
    }
    case Shape::error:
      break;
  }
  return 0;
}

template <Kind K>
int l_getoption(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  const Option& o = check_option(L, K == Kind::tcp ? kTcpGet : K == Kind::udp ? kUdpGet : kUnixGet);
  int fd = s->sock->fd();
  switch (o.shape) {
    case Shape::boolean:
    case Shape::integer:
    case Shape::error: {
      int v = 0;
      socklen_t len = sizeof v;
      if (getsockopt(fd, o.level, o.opt, &v, &len) != 0) return failed(L, "getsockopt failed");
      if (o.shape == Shape::boolean)
        lua_pushboolean(L, v != 0);
      else if (o.shape == Shape::integer)
        lua_pushnumber(L, v);
      else if (v)
        lua_pushstring(L, error_message({v, std::generic_category()}).c_str());
      else
        lua_pushnil(L);
      return 1;
    }
    case Shape::linger: {
      linger li{};
      socklen_t len = sizeof li;
      if (getsockopt(fd, o.level, o.opt, &li, &len) != 0) return failed(L, "getsockopt failed");
      lua_createtable(L, 0, 2);
      lua_pushboolean(L, li.l_onoff);
      lua_setfield(L, -2, "on");
      lua_pushinteger(L, li.l_linger);
      lua_setfield(L, -2, "timeout");
      return 1;
    }
    case Shape::address: {
      in_addr a{};
      socklen_t len = sizeof a;
      if (getsockopt(fd, o.level, o.opt, &a, &len) != 0) return failed(L, "getsockopt failed");
      char buf[INET_ADDRSTRLEN];
      lua_pushstring(L, inet_ntop(AF_INET, &a, buf, sizeof buf));
      return 1;
    }
    default:
      return 0;
  }
}

template int l_setoption<Kind::tcp>(lua_State*);
template int l_setoption<Kind::udp>(lua_State*);
template int l_setoption<Kind::unix_stream>(lua_State*);
template int l_getoption<Kind::tcp>(lua_State*);
template int l_getoption<Kind::udp>(lua_State*);
template int l_getoption<Kind::unix_stream>(lua_State*);

}  // namespace corio::lua
