// UDP sockets: receive, receivefrom, send, sendto, setpeername, setsockname.
#include "lsocket.hpp"

#include "lprotect.hpp"

#include <corio/resolver.hpp>

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <string>
#include <sys/socket.h>

namespace corio::lua {
namespace {

constexpr lua_Number kDatagramSize = 8192;  // LuaSocket's default
// No datagram is longer: asking for more (receive(2^40)) gives the same datagram.
constexpr std::size_t kMaxDatagram = 65536;
static_assert(kMaxDatagram <= Runtime::kScratch, "a datagram is received into the scratch buffer");

class RecvOp final : public SocketOp<> {
 public:
  RecvOp(Runtime& rt, std::size_t size, bool with_from) : SocketOp(rt), size_(size), from_(with_from) {}

  // Into the runtime's scratch buffer: push() follows a successful step at once.
  Status step(Socket& so) override {
    return so.receive_datagram(runtime().scratch(), size_, &addr_, got_, error);
  }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    lua_pushlstring(L, runtime().scratch(), got_);
    if (!from_) return 1;
    lua_pushstring(L, addr_.ip().c_str());
    lua_pushinteger(L, addr_.port());
    return 3;
  }

 private:
  std::size_t size_;
  std::size_t got_ = 0;
  Address addr_;
  bool from_;
};

int receive(lua_State* L, LSocket* s, bool with_from) {
  lua_Number size = luaL_optnumber(L, 2, kDatagramSize);
  if (!(size >= 0)) {  // LuaSocket's malloc of the size_t this makes fails
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  std::size_t n = size >= static_cast<lua_Number>(kMaxDatagram) ? kMaxDatagram : static_cast<std::size_t>(size);
  auto* op = new RecvOp(*s->rt, n, with_from);
  return op->settle(L, s->sock->submit(*op, Direction::read, s->timeout()));
}

// receive([size]): any udp class; receivefrom([size]) -> datagram, ip, port: unconnected only.
int l_receive(lua_State* L) { return receive(L, check_socket<Kind::udp>(L, 1), false); }
int l_receivefrom(lua_State* L) { return receive(L, check_role<Kind::udp>(L, 1, Role::unconnected), true); }

class SendToOp final : public SocketOp<> {
 public:
  SendToOp(Runtime& rt, const char* data, std::size_t len, std::optional<Address> to)
      : SocketOp(rt), data_(data), len_(len), to_(to) {}

  Status step(Socket& so) override { return so.send_datagram(data_, len_, to_ ? &*to_ : nullptr, sent_, error); }

  int push(lua_State* L) override {
    // LuaSocket's udp_strerror: "closed" means the transport did not take the datagram.
    if (error == Error::closed) {
      lua_pushnil(L);
      lua_pushliteral(L, "refused");
      return 2;
    }
    if (error) return push_error(L, error);
    lua_pushnumber(L, static_cast<lua_Number>(sent_));
    return 1;
  }

 private:
  const char* data_;
  std::size_t len_;
  std::optional<Address> to_;
  std::size_t sent_ = 0;
};

int send(lua_State* L, LSocket* s, const char* data, std::size_t len, std::optional<Address> to) {
  auto* op = new SendToOp(*s->rt, data, len, to);
  if (s->sock->submit(*op, Direction::write, s->timeout())) return op->settle(L, true);
  op->anchor(L, 2);  // the data outlives the calling frame
  return op->wait(L);
}

// connected:send(datagram) -> bytes sent
int l_send(lua_State* L) {
  LSocket* s = check_role<Kind::udp>(L, 1, Role::connected);
  size_t len;
  const char* data = luaL_checklstring(L, 2, &len);
  return send(L, s, data, len, std::nullopt);
}

// The numeric address sendto() takes, or getaddrinfo's error words (LuaSocket's here).
std::optional<Address> numeric_address(lua_State* L, const char* ip, const char* port, int family) {
  char* end;
  long p = std::strtol(port, &end, 10);
  if (*port != '\0' && *end == '\0' && p >= 0 && p <= 65535 && *ip != '\0')
    if (auto a = Address::from_ip(ip, static_cast<std::uint16_t>(p), family)) return a;
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  if (int err = ::getaddrinfo(ip, port, &hints, &ai)) {
    lua_pushnil(L);
    lua_pushstring(L, gai_strerror(err));
    return std::nullopt;
  }
  Address a(ai->ai_addr, ai->ai_addrlen);
  ::freeaddrinfo(ai);
  return a;
}

// unconnected:sendto(datagram, ip, port): ip is numeric, as in LuaSocket. A udp() socket
// gets its descriptor now.
int l_sendto(lua_State* L) {
  LSocket* s = check_role<Kind::udp>(L, 1, Role::unconnected);
  size_t len;
  const char* data = luaL_checklstring(L, 2, &len);
  const char* ip = luaL_checkstring(L, 3);
  const char* port = luaL_checkstring(L, 4);
  auto to = numeric_address(L, ip, port, s->family);
  if (!to) return 2;
  if (!s->has_fd() && s->family == AF_UNSPEC) {  // a udp() socket's first use; not a closed one
    if (auto ec = s->sock->renew(to->family(), SOCK_DGRAM)) return push_error(L, ec);
    s->family = to->family();
  }
  return send(L, s, data, len, to);
}

// setpeername(address, port): any udp class; "*" goes back to unconnected.
int l_setpeername(lua_State* L) {
  LSocket* s = check_socket<Kind::udp>(L, 1);
  const char* host = luaL_checkstring(L, 2);
  if (std::strcmp(host, "*") != 0) return address_call(L, s, 2, false);
  sockaddr sa{};
  sa.sa_family = AF_UNSPEC;  // errors are ignored, as LuaSocket ignores them
  if (s->has_fd()) ::connect(s->sock->fd(), &sa, sizeof sa);
  set_role(L, 1, s, Role::unconnected);
  lua_pushnumber(L, 1);
  return 1;
}

// unconnected:setsockname(address, port)
int l_setsockname(lua_State* L) { return address_call(L, check_role<Kind::udp>(L, 1, Role::unconnected), 2, true); }

}  // namespace

const luaL_Reg kDatagramMethods[] = {
    {"receive", protect<l_receive>},         {"receivefrom", protect<l_receivefrom>}, {"send", protect<l_send>},
    {"sendto", protect<l_sendto>},           {"setpeername", protect<l_setpeername>}, {"setsockname", protect<l_setsockname>},
    {nullptr, nullptr},
};

}  // namespace corio::lua
