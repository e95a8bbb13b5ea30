// Stream sockets (tcp, unix): bind, listen, connect, accept, receive, send, shutdown.
#include "lsocket.hpp"

#include <corio/resolver.hpp>

#include "../net/accept.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <netinet/in.h>
#include <new>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace corio::lua {
namespace {

constexpr std::size_t kChunk = 64 * 1024;
static_assert(kChunk <= Runtime::kScratch, "a receive reads into the runtime's scratch buffer");

// ---- receive ----

class ReceiveOp final : public SocketOp {
 public:
  // Made per message: the memory comes from the runtime's pool (new (rt) ReceiveOp(rt, ...)).
  static void* operator new(std::size_t n, Runtime& rt) { return rt.blocks.take(n); }
  static void operator delete(void* p, Runtime& rt) { rt.blocks.give(p, sizeof(ReceiveOp)); }
  static void operator delete(ReceiveOp* p, std::destroying_delete_t) {
    Runtime& rt = p->runtime();
    p->~ReceiveOp();
    rt.blocks.give(p, sizeof(ReceiveOp));
  }
  enum class Pattern { line, all, count, some };
  ReceiveOp(Runtime& rt, Socket* so, Pattern p, std::size_t count, std::string prefix)
      : SocketOp(rt), so_(so), pattern_(p), count_(count), prefix_(std::move(prefix)) {}

  Status step(Socket& so) override {
    if (pattern_ == Pattern::some) return step_some(so);
    for (;;) {
      std::string_view v = so.input().view();
      switch (pattern_) {
        case Pattern::line: {
          auto nl = v.find('\n');
          if (nl != std::string_view::npos) {
            take_ = nl;
            skip_ = nl + 1;
            return Status::done;
          }
          if (v.size() >= so.limit) {  // refuse rather than grow without bound
            error = Error::line_too_long;
            return Status::done;
          }
          break;
        }
        case Pattern::count:
          if (v.size() >= count_) {
            take_ = skip_ = count_;
            return Status::done;
          }
          break;
        case Pattern::all:
          if (so.limit_all && v.size() > so.limit) {
            error = Error::line_too_long;
            return Status::done;
          }
          break;
        case Pattern::some:
          break;
      }
      std::error_code ec;
      Status st = so.fill(pattern_ == Pattern::count ? count_ - v.size() : kChunk, ec);
      if (st != Status::done) return st;
      if (ec) {
        error = ec;
        return Status::done;
      }
    }
  }

  int push(lua_State* L) override {
    if (direct_ > 0) {  // read by step_some(): made into a Lua string once, from the scratch buffer
      if (prefix_.empty()) {
        lua_pushlstring(L, scratch(), direct_);
      } else {
        lua_pushlstring(L, prefix_.data(), prefix_.size());
        lua_pushlstring(L, scratch(), direct_);
        lua_concat(L, 2);
      }
      return 1;
    }
    ReadBuffer& in = so_->input();
    std::string_view v = in.view();
    if (error == Error::line_too_long) {  // the buffer is kept: nothing is lost
      push_error(L, error);
      lua_pushlstring(L, prefix_.data(), prefix_.size());
      return 3;
    }
    // "*a" ends well at the peer's end of stream; a local close() wakes it with nil, "closed".
    bool ok = !error || (pattern_ == Pattern::all && error == Error::closed && !so_->closed());
    std::size_t take = ok && pattern_ != Pattern::all ? take_ : v.size();
    std::size_t skip = ok && pattern_ != Pattern::all ? skip_ : v.size();
    if (pattern_ == Pattern::some && !ok) take = skip = 0;  // nothing received: "" as partial
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, prefix_.data(), prefix_.size());
    if (pattern_ == Pattern::line) {  // LuaSocket drops every CR of a line
      for (char c : v.substr(0, take))
        if (c != '\r') luaL_addchar(&b, c);
    } else {
      luaL_addlstring(&b, v.data(), take);
    }
    luaL_pushresult(&b);
    in.consume(skip);
    if (in.empty()) in.shrink();  // an idle connection keeps no buffer
    if (ok) return 1;
    lua_pushnil(L);  // nil, message, partial
    lua_insert(L, -2);
    lua_pushstring(L, error_message(error).c_str());
    lua_insert(L, -2);
    return 3;
  }

 private:
  Socket* so_;
  Pattern pattern_;
  std::size_t count_;
  std::string prefix_;
  std::size_t take_ = 0, skip_ = 0;
  std::size_t direct_ = 0;  // bytes step_some() read into scratch()

  // The runtime's: push() follows a successful step at once (synchronously, before any
  // other receive can run), so the bytes never need a buffer of their own.
  char* scratch() { return runtime().scratch(); }

  // "At most count_ bytes, as soon as any are available": what is buffered, else one read.
  Status step_some(Socket& so) {
    ReadBuffer& in = so.input();
    if (!in.empty()) {
      take_ = skip_ = std::min(count_, in.size());
      return Status::done;
    }
    std::error_code ec;
    Status st = so.read(scratch(), std::min(count_, kChunk), direct_, ec);
    if (st == Status::done && ec) error = ec;
    return st;
  }
};

// client:receive([pattern [, prefix]])
int l_receive(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  ReceiveOp::Pattern p = ReceiveOp::Pattern::line;
  std::size_t count = 0;
  if (lua_isnumber(L, 2)) {  // a numeric string counts too, as in LuaSocket
    lua_Number n = lua_tonumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "invalid receive pattern");
    p = ReceiveOp::Pattern::count;
    count = static_cast<std::size_t>(n);
  } else if (!lua_isnoneornil(L, 2)) {
    const char* pat = luaL_checkstring(L, 2);
    if (*pat == '*') ++pat;
    if (*pat == 'l')
      p = ReceiveOp::Pattern::line;
    else if (*pat == 'a')
      p = ReceiveOp::Pattern::all;
    else
      return luaL_argerror(L, 2, "invalid receive pattern");
  }
  size_t plen = 0;
  const char* prefix = luaL_optlstring(L, 3, "", &plen);
  if (p == ReceiveOp::Pattern::count && count == 0) {  // nothing to wait for
    lua_pushlstring(L, prefix, plen);
    return 1;
  }
  if (!s->has_fd()) return push_error(L, Error::closed);
  auto* op = new (*s->rt) ReceiveOp(*s->rt, s->sock, p, count, std::string(prefix, plen));
  return SocketOp::start(L, op, s, Direction::read);
}

// client:receivesome([max [, prefix]]) -> 1..max bytes (default 65536), as soon as any are
// available (corio's own: LuaSocket has no such pattern; a stream echo or proxy needs it).
// Errors as receive: nil, message, partial ("" or the prefix).
int l_receivesome(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, static_cast<lua_Integer>(kChunk));
  luaL_argcheck(L, max > 0, 2, "must be positive");
  size_t plen = 0;
  const char* prefix = luaL_optlstring(L, 3, "", &plen);
  if (!s->has_fd()) return push_error(L, Error::closed);
  auto* op = new (*s->rt) ReceiveOp(*s->rt, s->sock, ReceiveOp::Pattern::some, static_cast<std::size_t>(max),
                                    std::string(prefix, plen));
  return SocketOp::start(L, op, s, Direction::read);
}

// ---- send ----

class SendOp final : public SocketOp {
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

  // Writes data[sent, len) for as long as the socket takes it.
  static Status write(Socket& so, const char* data, std::size_t len, std::size_t& sent, std::error_code& ec) {
    while (sent < len) {
      std::size_t n = 0;
      Status st = so.write(data + sent, len - sent, n, ec);
      if (st != Status::done || ec) return st;
      sent += n;
    }
    return Status::done;
  }
  // index of the last byte sent | nil, message, last
  static int push(lua_State* L, std::size_t first, std::size_t sent, std::error_code ec) {
    auto last = static_cast<lua_Integer>(first - 1 + sent);
    if (!ec) {
      lua_pushinteger(L, last);
      return 1;
    }
    push_error(L, ec);
    lua_pushinteger(L, last);
    return 3;
  }

  Status step(Socket& so) override { return write(so, data_, len_, sent_, error); }
  void queued(lua_State* L) override { anchor(L, 2); }  // the data outlives the calling frame
  int push(lua_State* L) override { return push(L, first_, sent_, error); }

 private:
  const char* data_;
  std::size_t len_;
  std::size_t first_;
  std::size_t sent_;
};

// client:send(data [, i [, j]]) -> index of the last byte sent | nil, message, last
int l_send(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  size_t size;
  const char* data = luaL_checklstring(L, 2, &size);
  auto len = static_cast<long long>(size);
  auto start = static_cast<long long>(luaL_optnumber(L, 3, 1));
  auto end = static_cast<long long>(luaL_optnumber(L, 4, -1));
  if (start < 0) start = len + start + 1;
  if (end < 0) end = len + end + 1;
  if (start < 1) start = 1;
  if (end > len) end = len;
  std::size_t n = start <= end ? static_cast<std::size_t>(end - start + 1) : 0;
  if (!s->has_fd()) {
    push_error(L, Error::closed);
    lua_pushinteger(L, static_cast<lua_Integer>(start - 1));
    return 3;
  }
  // Nothing queued before it (the usual case): write now, and make an op only to wait.
  std::size_t sent = 0;
  if (!s->sock->busy(Direction::write)) {
    std::error_code ec;
    if (SendOp::write(*s->sock, data + start - 1, n, sent, ec) == IoOp::Status::done)
      return SendOp::push(L, static_cast<std::size_t>(start), sent, ec);
  }
  auto* op = new (*s->rt) SendOp(*s->rt, data + start - 1, n, static_cast<std::size_t>(start), sent);
  return SocketOp::start(L, op, s, Direction::write);
}

// ---- accept ----

class AcceptOp final : public SocketOp {
 public:
  AcceptOp(Runtime& rt, LSocket* server) : SocketOp(rt), server_(server) {}

  // Shared with corio::Listener: backs off under EMFILE rather than spinning.
  Status step(Socket& so) override { return accept_one(so.fd(), fd_, error, backoff_, resume_at); }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    push_socket(L, runtime(), server_->kind, Role::client, server_->family, fd_);
    fd_ = -1;
    return 1;
  }

  ~AcceptOp() override {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  LSocket* server_;
  int fd_ = -1;
  Duration backoff_{};
};

int l_accept(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  if (!s->has_fd()) return push_error(L, Error::closed);
  return SocketOp::start(L, new AcceptOp(*s->rt, s), s, Direction::read);
}

// ---- bind, listen, connect ----

std::optional<Address> local_path(lua_State* L, int idx) {
  size_t len;
  const char* path = luaL_checklstring(L, idx, &len);
  return Address::from_path(std::string_view(path, len));
}

class BindOp final : public ResolveThen {
 public:
  BindOp(Runtime& rt, LSocket* s) : ResolveThen(rt), s_(s) {}
  Status step(Socket&) override { return Status::done; }
  bool resolved(std::vector<Address> addrs) override {
    for (const Address& a : addrs) {
      if (s_->family != AF_UNSPEC && s_->family != a.family()) continue;
      if ((error = ensure_fd(s_, a.family()))) return true;
      error = {};
      if (::bind(s_->sock->fd(), a.data(), a.size()) == 0) return true;
      error = {errno, std::generic_category()};
    }
    if (!error) error = std::make_error_code(std::errc::address_family_not_supported);
    return true;
  }
  int push(lua_State* L) override {
    if (resolve_error) return push_error(L, resolve_error);
    if (error) return push_error(L, error);
    lua_pushinteger(L, 1);
    return 1;
  }

 private:
  LSocket* s_;
};

// master:bind(address, port)
int l_bind(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  if (s->kind == Kind::unix_stream) {
    auto a = local_path(L, 2);
    if (!a) return luaL_argerror(L, 2, "path too long");
    if (::bind(s->sock->fd(), a->data(), a->size()) != 0) return push_error(L, {errno, std::generic_category()});
    lua_pushinteger(L, 1);
    return 1;
  }
  const char* host = luaL_checkstring(L, 2);
  std::uint16_t port = check_port(L, 3);
  if (std::strcmp(host, "*") == 0) host = s->family == AF_INET6 ? "::" : "0.0.0.0";
  return resolve_and(L, s, host, port, s->family, new BindOp(*s->rt, s));
}

// master:listen([backlog]): without one, the system's maximum (bursts of connects succeed).
int l_listen(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  int backlog = static_cast<int>(luaL_optinteger(L, 2, INT_MAX));
  if (::listen(s->sock->fd(), backlog) != 0) return push_error(L, {errno, std::generic_category()});
  set_role(L, 1, s, Role::server);
  lua_pushinteger(L, 1);
  return 1;
}

// Tries each address in turn, as LuaSocket does, so "localhost" works whichever family
// comes first. The op is its own IoOp: one connect attempt at a time, on write readiness.
class ConnectOp final : public ResolveThen {
 public:
  ConnectOp(Runtime& rt, LSocket* s) : ResolveThen(rt), s_(s) {}

  bool resolved(std::vector<Address> addrs) override {
    addrs_ = std::move(addrs);
    return attempt();
  }

  Status step(Socket& so) override {
    if (!started_) {
      started_ = true;
      const Address& a = addrs_[next_ - 1];
      if (::connect(so.fd(), a.data(), a.size()) == 0) return Status::done;
      if (errno == EINPROGRESS || errno == EINTR) return Status::wait;
      error = {errno, std::generic_category()};
      return Status::done;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(so.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err) error = {err, std::generic_category()};
    return Status::done;
  }

  void finish() override {
    // A refused or unreachable address: go on with the next one.
    bool retry = error && error != Error::timeout && error != Error::closed && next_ < addrs_.size();
    if (retry && !attempt()) return;
    SocketOp::finish();
  }

  int push(lua_State* L) override {
    if (resolve_error) return push_error(L, resolve_error);
    if (error) return push_error(L, error);
    push_anchor(L);
    set_role(L, lua_gettop(L), s_, Role::client);
    lua_pop(L, 1);
    lua_pushinteger(L, 1);
    return 1;
  }

 private:
  // Starts the next attempt; true if it finished at once (results via push()).
  bool attempt() {
    while (next_ < addrs_.size()) {
      const Address& a = addrs_[next_++];
      error = {};
      started_ = false;
      if (s_->has_fd() && s_->family != a.family()) {
        if (!s_->born_unspec) continue;  // an inet socket cannot reach an inet6 address
        s_->sock->close();
      }
      if ((error = ensure_fd(s_, a.family()))) continue;
      if (!s_->sock->submit(*this, Direction::write, s_->timeout)) return false;
      if (!error || next_ >= addrs_.size()) return true;
    }
    if (!error) error = std::make_error_code(std::errc::address_family_not_supported);
    return true;
  }

  LSocket* s_;
  std::vector<Address> addrs_;
  std::size_t next_ = 0;
  bool started_ = false;
};

// master:connect(address, port)
int l_connect(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  if (s->kind == Kind::unix_stream) {
    auto a = local_path(L, 2);
    if (!a) return luaL_argerror(L, 2, "path too long");
    if (::connect(s->sock->fd(), a->data(), a->size()) != 0) return push_error(L, {errno, std::generic_category()});
    set_role(L, 1, s, Role::client);
    lua_pushinteger(L, 1);
    return 1;
  }
  const char* host = luaL_checkstring(L, 2);
  std::uint16_t port = check_port(L, 3);
  if (*host == '\0') return push_error(L, ResolveError::not_found);  // as getaddrinfo says
  auto* op = new ConnectOp(*s->rt, s);
  op->anchor(L, 1);  // its class changes when it connects
  return resolve_and(L, s, host, port, s->family, op);
}

// client:shutdown(["both" | "send" | "receive"])
int l_shutdown(lua_State* L) {
  LSocket* s = check_socket(L, 1);
  static const char* const modes[] = {"receive", "send", "both", nullptr};
  int how = luaL_checkoption(L, 2, "both", modes);
  // LuaSocket ignores the outcome and returns 1 (a closed or unconnected socket included).
  ::shutdown(s->sock->fd(), how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR);
  lua_pushinteger(L, 1);
  return 1;
}

}  // namespace

void add_stream_methods(lua_State* L, Role r) {
  auto add = [L](const char* name, lua_CFunction f) { add_method(L, name, f); };
  add("shutdown", l_shutdown);
  switch (r) {
    case Role::master:
      add("bind", l_bind);
      add("listen", l_listen);
      add("connect", l_connect);
      break;
    case Role::client:
      add("receive", l_receive);
      add("receivesome", l_receivesome);
      add("send", l_send);
      break;
    case Role::server:
      add("accept", l_accept);
      add("listen", l_listen);
      break;
    default:
      break;
  }
}

}  // namespace corio::lua
