// UDP sockets: receive, receivefrom, send, sendto, setpeername, setsockname.
#include "lsocket.hpp"

#include <corio/resolver.hpp>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>

namespace corio::lua {
namespace {

constexpr lua_Integer kDatagramSize = 8192;  // LuaSocket's default

class RecvOp final : public SocketOp {
 public:
  RecvOp(Runtime& rt, std::size_t size, bool with_from) : SocketOp(rt), buf_(size, '\0'), from_(with_from) {}

  Status step(Socket& so) override {
    std::size_t got = 0;
    Status st = so.receive_datagram(buf_.data(), buf_.size(), &addr_, got, error);
    if (st == Status::done && !error) buf_.resize(got);
    return st;
  }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    lua_pushlstring(L, buf_.data(), buf_.size());
    if (!from_) return 1;
    lua_pushstring(L, addr_.ip().c_str());
    lua_pushinteger(L, addr_.port());
    return 3;
  }

 private:
  std::string buf_;
  Address addr_;
  bool from_;
};

int receive(lua_State* L, bool with_from) {
  LSocket* s = check_socket(L, 1);
  lua_Integer size = luaL_optinteger(L, 2, kDatagramSize);
  luaL_argcheck(L, size >= 0, 2, "invalid size");
  if (!s->has_fd()) return push_error(L, Error::closed);
  return SocketOp::start(L, new RecvOp(*s->rt, static_cast<std::size_t>(size), with_from), s, Direction::read);
}

int l_receive(lua_State* L) { return receive(L, false); }
int l_receivefrom(lua_State* L) { return receive(L, true); }

class SendToOp final : public SocketOp {
 public:
  SendToOp(Runtime& rt, const char* data, std::size_t len, std::optional<Address> to)
      : SocketOp(rt), data_(data), len_(len), to_(to) {}

  Status step(Socket& so) override {
    return so.send_datagram(data_, len_, to_ ? &*to_ : nullptr, sent_, error);
  }

  void queued(lua_State* L) override { anchor(L, 2); }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    lua_pushinteger(L, static_cast<lua_Integer>(sent_));
    return 1;
  }

 private:
  const char* data_;
  std::size_t len_;
  std::optional<Address> to_;
  std::size_t sent_ = 0;
};

// connected:send(datagram) -> bytes sent
int l_send(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  size_t len;
  const char* data = luaL_checklstring(L, 2, &len);
  if (!s->has_fd()) return push_error(L, Error::closed);
  return SocketOp::start(L, new SendToOp(*s->rt, data, len, std::nullopt), s, Direction::write);
}

// unconnected:sendto(datagram, ip, port): ip is numeric, as in LuaSocket.
int l_sendto(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  size_t len;
  const char* data = luaL_checklstring(L, 2, &len);
  const char* ip = luaL_checkstring(L, 3);
  std::uint16_t port = check_port(L, 4);
  auto to = Address::from_ip(ip, port, s->born_unspec && !s->has_fd() ? AF_UNSPEC : s->family);
  if (!to) return push_error(L, ResolveError::not_found);
  if (auto ec = ensure_fd(s, to->family())) return push_error(L, ec);
  return SocketOp::start(L, new SendToOp(*s->rt, data, len, to), s, Direction::write);
}

// setsockname (bind) and setpeername (connect; "*" disconnects) after resolving the name.
class AddressOp final : public ResolveThen {
 public:
  AddressOp(Runtime& rt, LSocket* s, bool peer) : ResolveThen(rt), s_(s), peer_(peer) {}
  Status step(Socket&) override { return Status::done; }

  bool resolved(std::vector<Address> addrs) override {
    for (const Address& a : addrs) {
      if (s_->has_fd() && s_->family != a.family()) continue;
      if ((error = ensure_fd(s_, a.family()))) return true;
      int r = peer_ ? ::connect(s_->sock->fd(), a.data(), a.size()) : ::bind(s_->sock->fd(), a.data(), a.size());
      error = r == 0 ? std::error_code() : std::error_code(errno, std::generic_category());
      if (!error) return true;
    }
    if (!error) error = std::make_error_code(std::errc::address_family_not_supported);
    return true;
  }

  int push(lua_State* L) override {
    if (resolve_error) return push_error(L, resolve_error);
    if (error) return push_error(L, error);
    if (peer_) {
      push_anchor(L);
      set_role(L, lua_gettop(L), s_, Role::connected);
      lua_pop(L, 1);
    }
    lua_pushinteger(L, 1);
    return 1;
  }

 private:
  LSocket* s_;
  bool peer_;
};

int set_address(lua_State* L, bool peer) {
  LSocket* s = check_socket(L, 1);
  const char* host = luaL_checkstring(L, 2);
  if (peer && std::strcmp(host, "*") == 0) {  // back to unconnected
    sockaddr sa{};
    sa.sa_family = AF_UNSPEC;
    if (s->has_fd()) ::connect(s->sock->fd(), &sa, sizeof sa);
    set_role(L, 1, s, Role::unconnected);
    lua_pushinteger(L, 1);
    return 1;
  }
  std::uint16_t port = check_port(L, 3);
  if (!peer && std::strcmp(host, "*") == 0) host = s->family == AF_INET6 ? "::" : "0.0.0.0";
  int family = s->has_fd() ? s->family : AF_UNSPEC;
  auto* op = new AddressOp(*s->rt, s, peer);
  op->anchor(L, 1);  // its class changes when it connects
  return resolve_and(L, s, host, port, family, op);
}

int l_setsockname(lua_State* L) { return set_address(L, false); }
int l_setpeername(lua_State* L) { return set_address(L, true); }

}  // namespace

void add_datagram_methods(lua_State* L, Role r) {
  auto add = [L](const char* name, lua_CFunction f) { add_method(L, name, f); };
  add("receive", l_receive);
  add("receivefrom", l_receivefrom);
  add("setpeername", l_setpeername);
  if (r == Role::connected) {
    add("send", l_send);
  } else {
    add("sendto", l_sendto);
    add("setsockname", l_setsockname);
  }
}

}  // namespace corio::lua
