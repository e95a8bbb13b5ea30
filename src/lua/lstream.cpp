// Stream sockets (tcp, unixstream): receive, send, accept, bind, listen, connect, shutdown.
#include "lsocket.hpp"

#include "lprotect.hpp"
#include "ltls.hpp"

#include <corio/read_rule.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace corio::lua {
namespace {

static_assert(Socket::kReadChunk <= Runtime::kScratch, "receivesome reads into the runtime's scratch buffer");

// ---- receive ----

class ReceiveOp final : public SocketOp<> {
 public:
  // Made per message: the memory comes from the runtime's pool (new (rt) ReceiveOp(rt, ...)).
  static void* operator new(std::size_t n, Runtime& rt) { return rt.blocks.take(n); }
  static void operator delete(void* p, Runtime& rt) { rt.blocks.give(p, sizeof(ReceiveOp)); }
  static void operator delete(ReceiveOp* p, std::destroying_delete_t) {
    Runtime& rt = p->runtime();
    p->~ReceiveOp();
    rt.blocks.give(p, sizeof(ReceiveOp));
  }
  // rule == nullopt: receivesome, at most `some` (<= Socket::kReadChunk) bytes as soon as any are available.
  ReceiveOp(Runtime& rt, Socket* so, std::optional<ReadRule> rule, std::size_t some, std::string prefix)
      : SocketOp(rt), so_(so), rule_(rule), some_(some), prefix_(std::move(prefix)) {}

  Status step(Socket& so) override {
    // receivesome: into the scratch buffer (straight from the kernel when nothing is buffered)
    if (!rule_) return so.read_some(runtime().scratch(), some_, some_got_, error);
    return rule_->step(so, error);
  }

  // data, nil, nil | nil, message, partial: LuaSocket's three values.
  int push(lua_State* L) override {
    if (!rule_) {  // made into a Lua string once, from the scratch buffer
      push_joined(L, runtime().scratch(), some_got_);
      return error ? failed(L) : ok(L);
    }
    std::string_view v = so_->input().view();
    if (error == Error::line_too_long) {  // the bytes stay buffered: nothing is lost
      lua_pushlstring(L, prefix_.data(), prefix_.size());
      return failed(L);
    }
    // "*a" ends well at the peer's end of stream if anything came; a close() that wakes
    // the reader (take still 0) or an empty end gives nil, "closed".
    bool all_ended = rule_->kind == ReadRule::Kind::all && error == Error::closed && rule_->take > 0;
    bool done = !error || all_ended;
    std::size_t take = done ? rule_->take : v.size(), skip = done ? rule_->skip : v.size();
    if (rule_->kind == ReadRule::Kind::available) take = skip = 0;
    if (rule_->kind == ReadRule::Kind::line) {  // LuaSocket drops every CR of a line
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      luaL_addlstring(&b, prefix_.data(), prefix_.size());
      for (char c : v.substr(0, take))
        if (c != '\r') luaL_addchar(&b, c);
      luaL_pushresult(&b);
    } else {
      push_joined(L, v.data(), take);
    }
    so_->consume(skip);
    return done ? ok(L) : failed(L);
  }

 private:
  void push_joined(lua_State* L, const char* data, std::size_t n) {
    if (prefix_.empty()) {
      lua_pushlstring(L, data, n);
      return;
    }
    lua_pushlstring(L, prefix_.data(), prefix_.size());
    lua_pushlstring(L, data, n);
    lua_concat(L, 2);
  }
  static int ok(lua_State* L) {
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
  }
  int failed(lua_State* L) {  // the partial result is on the stack
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, error_message(error).c_str());
    lua_insert(L, -2);
    return 3;
  }

  Socket* so_;
  std::optional<ReadRule> rule_;
  std::size_t some_;
  std::string prefix_;
  std::size_t some_got_ = 0;  // bytes receivesome put in the scratch buffer
};

int start_receive(lua_State* L, LSocket* s, std::optional<ReadRule> rule, std::size_t some, const char* prefix,
                  std::size_t plen) {
  auto* op = new (*s->rt) ReceiveOp(*s->rt, s->sock, rule, some, std::string(prefix, plen));
  return op->settle(L, s->sock->submit(*op, Direction::read, s->timeout()));
}

// client:receive([pattern [, prefix]]) as LuaSocket's: "*l" (default), "*a" or a count,
// the prefix counted in it.
template <Kind K>
int l_receive(lua_State* L) {
  LSocket* s = check_role<K>(L, 1, Role::client);
  size_t plen = 0;
  const char* prefix = luaL_optlstring(L, 3, "", &plen);
  ReadRule rule(ReadRule::Kind::line);
  if (lua_isnumber(L, 2)) {  // a numeric string counts too
    lua_Number n = lua_tonumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "invalid receive pattern");
    std::size_t wanted = n >= 18446744073709551615.0 ? SIZE_MAX : static_cast<std::size_t>(n);
    if (plen > 0 && wanted <= plen) {  // the prefix already has it: LuaSocket returns it as is
      lua_pushlstring(L, prefix, plen);
      lua_pushnil(L);
      lua_pushnil(L);
      return 3;
    }
    // receive(0) waits for a byte to be there and takes none, as LuaSocket's does.
    rule = wanted == 0 ? ReadRule(ReadRule::Kind::available) : ReadRule(ReadRule::Kind::exactly, wanted - plen);
  } else if (!lua_isnoneornil(L, 2)) {
    const char* p = luaL_checkstring(L, 2);
    if (*p == '*') ++p;  // corio also takes "l" and "a", as Lua 5.4's io.read does
    if (*p == 'l')
      rule = ReadRule(ReadRule::Kind::line);
    else if (*p == 'a')
      rule = ReadRule(ReadRule::Kind::all);
    else
      return luaL_argerror(L, 2, "invalid receive pattern");
  }
  return start_receive(L, s, rule, 0, prefix, plen);
}

// client:receivesome([max [, prefix]]) -> 1..max bytes (default 65536) as soon as any are
// available (corio's own: LuaSocket has no such pattern; a stream echo or proxy needs it).
// Results as receive's.
template <Kind K>
int l_receivesome(lua_State* L) {
  LSocket* s = check_role<K>(L, 1, Role::client);
  lua_Integer max = luaL_optinteger(L, 2, static_cast<lua_Integer>(Socket::kReadChunk));
  luaL_argcheck(L, max >= 1, 2, "must be positive");
  size_t plen = 0;
  const char* prefix = luaL_optlstring(L, 3, "", &plen);
  std::size_t some = max >= static_cast<lua_Integer>(Socket::kReadChunk) ? Socket::kReadChunk : static_cast<std::size_t>(max);
  return start_receive(L, s, std::nullopt, some, prefix, plen);
}

// ---- send ----

class SendOp final : public SocketOp<> {
 public:
  static void* operator new(std::size_t n, Runtime& rt) { return rt.blocks.take(n); }  // as ReceiveOp
  static void operator delete(void* p, Runtime& rt) { rt.blocks.give(p, sizeof(SendOp)); }
  static void operator delete(SendOp* p, std::destroying_delete_t) {
    Runtime& rt = p->runtime();
    p->~SendOp();
    rt.blocks.give(p, sizeof(SendOp));
  }
  SendOp(Runtime& rt, const char* data, std::size_t len, std::size_t first, std::size_t sent)
      : SocketOp(rt), data_(data), len_(len), first_(first), sent_(sent) {}

  // index of the last byte sent, nil, nil | nil, message, index of the last byte sent
  static int push(lua_State* L, std::size_t first, std::size_t sent, std::error_code ec) {
    auto last = static_cast<lua_Integer>(first - 1 + sent);
    if (ec) {
      push_error(L, ec);
      lua_pushnumber(L, static_cast<lua_Number>(last));
      return 3;
    }
    lua_pushnumber(L, static_cast<lua_Number>(last));
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
  }

  Status step(Socket& so) override { return so.write_all(data_, len_, sent_, error); }
  int push(lua_State* L) override { return push(L, first_, sent_, error); }

 private:
  const char* data_;
  std::size_t len_;
  std::size_t first_;
  std::size_t sent_;
};

// client:send(data [, i [, j]]) -> as SendOp::push
template <Kind K>
int l_send(lua_State* L) {
  LSocket* s = check_role<K>(L, 1, Role::client);
  size_t size;
  const char* data = luaL_checklstring(L, 2, &size);
  auto len = static_cast<long long>(size);
  // LuaSocket's arithmetic on i and j (numbers outside a long are clamped first).
  auto index = [L, len](int idx, long long dflt) {
    lua_Number n = luaL_optnumber(L, idx, static_cast<lua_Number>(dflt));
    if (!(n > -9.0e18)) return -len - 1;
    if (n > 9.0e18) return len + 1;
    return static_cast<long long>(n);
  };
  long long start = index(3, 1), end = index(4, -1);
  if (start < 0) start = len + start + 1;
  if (end < 0) end = len + end + 1;
  if (start < 1) start = 1;
  if (end > len) end = len;
  std::size_t n = start <= end ? static_cast<std::size_t>(end - start + 1) : 0;
  const char* from = data + (start <= len ? start - 1 : len);
  // Nothing queued before it (the usual case): write now, and make an op only to wait.
  std::size_t sent = 0;
  std::error_code ec;
  if (!s->sock->busy(Direction::write) &&
      s->sock->write_all(from, n, sent, ec) == IoOp::Status::done)
    return SendOp::push(L, static_cast<std::size_t>(start), sent, ec);
  auto* op = new (*s->rt) SendOp(*s->rt, from, n, static_cast<std::size_t>(start), sent);
  if (s->sock->submit(*op, Direction::write, s->timeout())) return op->settle(L, true);
  op->anchor(L, 2);  // the data outlives the calling frame
  return op->wait(L);
}

// ---- accept ----

class AcceptOp final : public SocketOp<> {
 public:
  AcceptOp(Runtime& rt, LSocket* server) : SocketOp(rt), server_(server) {}
  ~AcceptOp() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // Backs off under EMFILE rather than spinning, as corio::Listener does.
  Status step(Socket& so) override { return so.accept(fd_, error, backoff_, resume_at); }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    // As LuaSocket's, the client has the server's family.
    push_socket(L, runtime(), server_->kind, Role::client, server_->family, fd_);
    fd_ = -1;
    return 1;
  }

 private:
  LSocket* server_;
  int fd_ = -1;
  Duration backoff_{};
};

template <Kind K>
int l_accept(lua_State* L) {
  LSocket* s = check_role<K>(L, 1, Role::server);
  if (s->wrapped) return wrapped_accept(L, s);
  auto* op = new AcceptOp(*s->rt, s);
  op->anchor(L, 1);  // the server outlives the wait
  return op->settle(L, s->sock->submit(*op, Direction::read, s->timeout()));
}

// ---- bind, listen, connect ----

// master:bind(address, port) (setsockname too); unixstream: bind(path).
template <Kind K>
int l_bind(lua_State* L) { return address_call(L, check_role<K>(L, 1, Role::master), 2, true); }

// connect(address, port) (setpeername too): any tcp class, as LuaSocket's (a connected one
// then answers "already connected"); unixstream: connect(path) from a master only.
template <Kind K>
int l_connect(lua_State* L) {
  LSocket* s = K == Kind::unix_stream ? check_role<K>(L, 1, Role::master) : check_socket<K>(L, 1);
  return address_call(L, s, 2, false);
}

// master:listen([backlog = 32]), as LuaSocket (the kernel caps it at its maximum).
template <Kind K>
int l_listen(lua_State* L) {
  LSocket* s = check_role<K>(L, 1, Role::master);
  lua_Number n = luaL_optnumber(L, 2, 32);
  int backlog = n >= INT_MAX ? INT_MAX : n > 0 ? static_cast<int>(n) : 0;
  if (::listen(s->sock->fd(), backlog) != 0) return push_error(L, {errno, std::generic_category()});
  set_role(L, 1, s, Role::server);
  lua_pushnumber(L, 1);
  return 1;
}

// client:shutdown(["both" | "send" | "receive"])
template <Kind K>
int l_shutdown(lua_State* L) {
  LSocket* s = check_role<K>(L, 1, Role::client);
  static const char* const modes[] = {"receive", "send", "both", nullptr};
  int how = luaL_checkoption(L, 2, "both", modes);
  // LuaSocket ignores the outcome and returns 1 (a closed socket included).
  ::shutdown(s->sock->fd(), how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR);
  lua_pushnumber(L, 1);
  return 1;
}

// setlimit(bytes): the longest line, and from now on "*a" read, this socket buffers.
template <Kind K>
int l_setlimit(lua_State* L) {
  LSocket* s = check_socket<K>(L, 1);
  s->sock->set_limit(check_bytes(L, 2), true);
  lua_pushnumber(L, 1);
  return 1;
}

template <Kind K>
constexpr luaL_Reg kStreamMethods[] = {
    {"accept", protect<l_accept<K>>},
    {"bind", protect<l_bind<K>>},
    {"connect", protect<l_connect<K>>},
    {"listen", protect<l_listen<K>>},
    {"receive", protect<l_receive<K>>},
    {"receivesome", protect<l_receivesome<K>>},
    {"send", protect<l_send<K>>},
    {"setpeername", protect<l_connect<K>>},
    {"setsockname", protect<l_bind<K>>},
    {"shutdown", protect<l_shutdown<K>>},
    {"setlimit", protect<l_setlimit<K>>},
    {nullptr, nullptr},
};

// tcp's besides: TLS (ltls.cpp)
constexpr luaL_Reg kTlsMethods[] = {
    {"starttls", protect<l_starttls>},
    {"info", protect<l_info>},
    {"getpeercertificate", protect<l_getpeercertificate>},
    {nullptr, nullptr},
};

}  // namespace

const luaL_Reg* stream_methods(Kind kind) {
  return kind == Kind::unix_stream ? kStreamMethods<Kind::unix_stream> : kStreamMethods<Kind::tcp>;
}

const luaL_Reg* tls_methods(Kind kind) { return kind == Kind::tcp ? kTlsMethods : nullptr; }

}  // namespace corio::lua
