// setoption / getoption: LuaSocket's option names and value shapes.
#include "lsocket.hpp"

#include <arpa/inet.h>
#include <cerrno>
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

const Option kOptions[] = {
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, Shape::boolean},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, Shape::boolean},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, Shape::boolean},
    {"dontroute", SOL_SOCKET, SO_DONTROUTE, Shape::boolean},
    {"broadcast", SOL_SOCKET, SO_BROADCAST, Shape::boolean},
    {"linger", SOL_SOCKET, SO_LINGER, Shape::linger},
    {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, Shape::integer},
    {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, Shape::integer},
    {"error", SOL_SOCKET, SO_ERROR, Shape::error},
    {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, Shape::boolean},
    {"tcp-keepidle", IPPROTO_TCP, TCP_KEEPIDLE, Shape::integer},
    {"tcp-keepcnt", IPPROTO_TCP, TCP_KEEPCNT, Shape::integer},
    {"tcp-keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, Shape::integer},
    {"tcp-defer-accept", IPPROTO_TCP, TCP_DEFER_ACCEPT, Shape::integer},
    {"tcp-fastopen", IPPROTO_TCP, TCP_FASTOPEN, Shape::integer},
    {"tcp-fastopen-connect", IPPROTO_TCP, TCP_FASTOPEN_CONNECT, Shape::boolean},
    {"ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, Shape::boolean},
    {"ipv6-unicast-hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, Shape::integer},
    {"ipv6-multicast-hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, Shape::integer},
    {"ipv6-multicast-loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, Shape::boolean},
    {"ipv6-add-membership", IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, Shape::membership6},
    {"ipv6-drop-membership", IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, Shape::membership6},
    {"ip-multicast-ttl", IPPROTO_IP, IP_MULTICAST_TTL, Shape::integer},
    {"ip-multicast-loop", IPPROTO_IP, IP_MULTICAST_LOOP, Shape::boolean},
    {"ip-multicast-if", IPPROTO_IP, IP_MULTICAST_IF, Shape::address},
    {"ip-add-membership", IPPROTO_IP, IP_ADD_MEMBERSHIP, Shape::membership},
    {"ip-drop-membership", IPPROTO_IP, IP_DROP_MEMBERSHIP, Shape::membership},
};

const Option& check_option(lua_State* L, int idx) {
  const char* name = luaL_checkstring(L, idx);
  for (const Option& o : kOptions)
    if (std::strcmp(o.name, name) == 0) return o;
  luaL_argerror(L, idx, lua_pushfstring(L, "unsupported option `%s'", name));
  return kOptions[0];
}

int result(lua_State* L, int r) {
  if (r != 0) return push_error(L, {errno, std::generic_category()});
  lua_pushinteger(L, 1);
  return 1;
}

in_addr check_ipv4(lua_State* L, const char* s, int idx) {
  in_addr a{};
  if (inet_pton(AF_INET, s, &a) != 1) luaL_argerror(L, idx, "invalid IP address");
  return a;
}

}  // namespace

int l_setoption(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  const Option& o = check_option(L, 2);
  int fd = s->sock->fd();
  switch (o.shape) {
    case Shape::boolean: {
      int v = lua_toboolean(L, 3);
      return result(L, setsockopt(fd, o.level, o.opt, &v, sizeof v));
    }
    case Shape::integer: {
      int v = static_cast<int>(luaL_checkinteger(L, 3));
      return result(L, setsockopt(fd, o.level, o.opt, &v, sizeof v));
    }
    case Shape::linger: {
      luaL_checktype(L, 3, LUA_TTABLE);
      linger li{};
      lua_getfield(L, 3, "on");
      li.l_onoff = lua_toboolean(L, -1);
      lua_getfield(L, 3, "timeout");
      li.l_linger = static_cast<int>(lua_tointeger(L, -1));
      lua_pop(L, 2);
      return result(L, setsockopt(fd, o.level, o.opt, &li, sizeof li));
    }
    case Shape::address: {
      in_addr a = check_ipv4(L, luaL_checkstring(L, 3), 3);
      return result(L, setsockopt(fd, o.level, o.opt, &a, sizeof a));
    }
    case Shape::membership: {
      luaL_checktype(L, 3, LUA_TTABLE);
      ip_mreq m{};
      lua_getfield(L, 3, "multiaddr");
      m.imr_multiaddr = check_ipv4(L, luaL_checkstring(L, -1), 3);
      lua_getfield(L, 3, "interface");
      const char* itf = luaL_optstring(L, -1, "*");
      if (std::strcmp(itf, "*") != 0) m.imr_interface = check_ipv4(L, itf, 3);
      lua_pop(L, 2);
      return result(L, setsockopt(fd, o.level, o.opt, &m, sizeof m));
    }
    case Shape::membership6: {
      luaL_checktype(L, 3, LUA_TTABLE);
      ipv6_mreq m{};
      lua_getfield(L, 3, "multiaddr");
      if (inet_pton(AF_INET6, luaL_checkstring(L, -1), &m.ipv6mr_multiaddr) != 1)
        return luaL_argerror(L, 3, "invalid IPv6 address");
      lua_getfield(L, 3, "interface");
      m.ipv6mr_interface = static_cast<unsigned>(luaL_optinteger(L, -1, 0));
      lua_pop(L, 2);
      return result(L, setsockopt(fd, o.level, o.opt, &m, sizeof m));
    }
    case Shape::error:
      return luaL_argerror(L, 2, "option is read-only");
  }
  return 0;
}

int l_getoption(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  const Option& o = check_option(L, 2);
  int fd = s->sock->fd();
  switch (o.shape) {
    case Shape::boolean:
    case Shape::integer:
    case Shape::error: {
      int v = 0;
      socklen_t len = sizeof v;
      if (getsockopt(fd, o.level, o.opt, &v, &len) != 0) return push_error(L, {errno, std::generic_category()});
      if (o.shape == Shape::boolean)
        lua_pushboolean(L, v != 0);
      else if (o.shape == Shape::integer)
        lua_pushinteger(L, v);
      else if (v)
        lua_pushstring(L, error_message({v, std::generic_category()}).c_str());
      else
        lua_pushnil(L);
      return 1;
    }
    case Shape::linger: {
      linger li{};
      socklen_t len = sizeof li;
      if (getsockopt(fd, o.level, o.opt, &li, &len) != 0) return push_error(L, {errno, std::generic_category()});
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
      if (getsockopt(fd, o.level, o.opt, &a, &len) != 0) return push_error(L, {errno, std::generic_category()});
      char buf[INET_ADDRSTRLEN];
      lua_pushstring(L, inet_ntop(AF_INET, &a, buf, sizeof buf));
      return 1;
    }
    default:
      return luaL_argerror(L, 2, "option is write-only");
  }
}

}  // namespace corio::lua
