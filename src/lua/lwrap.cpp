// corio.wrap(luasocket_object): a LuaSocket socket (tcp master/client/server, udp) made
// asynchronous. The wrapper is a corio socket (the same engine and methods) whose engine
// borrows the LuaSocket object's descriptor: the object stays its owner and is kept as
// wrapper.socket; closing the wrapper closes it too.
//
// A fresh LuaSocket object has no descriptor (getfd() == -1) until bind/connect. The
// wrapper then resolves the name itself (asynchronously) and creates the descriptor of
// the address's family, handing it to the object with setfd (wrapped_adopted). Calling
// LuaSocket's connect with timeout 0 instead would resolve the name with a blocking
// getaddrinfo.
//
// Lua calls on the object go through a thread of the wrapper's own, never the caller's:
// the engine may need them from a loop callback or from a push() onto a yielded thread.
// They may nest (the object's close, patched by corio.asok, closing the wrapper), so they
// leave that thread's stack as they found it and find the object in a weak table (kObjects,
// keyed by that thread): the wrapper's uservalue keeps it, and nothing else must.
#include "lsocket.hpp"

#include "../net/accept.hpp"

#include <cstring>
#include <new>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace corio::lua {

struct Wrapped {
  lua_State* T;      // calls on the object run here; anchored in the uservalue
  Role synced_role;  // the object's class follows the wrapper's role (master -> client ...)
};

namespace {

struct LWrapped {
  LSocket s;  // first: check_socket() and every corio method see an LSocket
  Wrapped w;
};

const char* const kMeta = "corio.wrapped";
const char* const kObjects = "corio.wrapped.objects";  // thread -> object, weak values

// objects[w.T] = the value at the top of L (popped).
void set_object(lua_State* L, lua_State* T) {
  lua_getfield(L, LUA_REGISTRYINDEX, kObjects);
  lua_pushlightuserdata(L, T);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

// LuaSocket's class names, which are also its registry names.
const char* luasocket_class(Kind k, Role r) {
  if (k == Kind::udp) return r == Role::connected ? "udp{connected}" : "udp{unconnected}";
  return r == Role::client ? "tcp{client}" : r == Role::server ? "tcp{server}" : "tcp{master}";
}

bool parse_class(const char* c, Kind& k, Role& r) {
  static const struct {
    const char* name;
    Kind k;
    Role r;
  } kClasses[] = {
      {"tcp{master}", Kind::tcp, Role::master},       {"tcp{client}", Kind::tcp, Role::client},
      {"tcp{server}", Kind::tcp, Role::server},       {"udp{unconnected}", Kind::udp, Role::unconnected},
      {"udp{connected}", Kind::udp, Role::connected},
  };
  for (const auto& e : kClasses)
    if (std::strcmp(c, e.name) == 0) {
      k = e.k;
      r = e.r;
      return true;
    }
  return false;
}

void push_object(Wrapped* w) {
  lua_getfield(w->T, LUA_REGISTRYINDEX, kObjects);
  lua_pushlightuserdata(w->T, w->T);
  lua_rawget(w->T, -2);
  lua_remove(w->T, -2);
}

// object:method(args...) on the wrapper's thread, the nargs arguments pushed on it; leaves
// nres results there. False on error (nothing left).
bool call_on_object(Wrapped* w, const char* method, int nargs, int nres) {
  lua_State* T = w->T;
  push_object(w);
  if (!lua_isuserdata(T, -1)) {
    lua_pop(T, 1 + nargs);
    return false;
  }
  lua_getfield(T, -1, method);
  lua_insert(T, -2 - nargs);  // method, args, object
  lua_insert(T, -1 - nargs);  // method, object, args
  if (lua_pcall(T, nargs + 1, nres, 0) == 0) return true;
  lua_pop(T, 1);
  return false;
}

int object_fd(Wrapped* w) {
  int top = lua_gettop(w->T);
  int fd = -1;
  if (call_on_object(w, "getfd", 0, 1) && is_integer(w->T, -1)) fd = static_cast<int>(lua_tonumber(w->T, -1));
  lua_settop(w->T, top);
  return fd;
}

// The object's class (LuaSocket's class field, read without metamethods: any userdata may
// be passed to wrap), as kind and role.
bool object_class(Wrapped* w, Kind& k, Role& r) {
  lua_State* T = w->T;
  int top = lua_gettop(T);
  push_object(w);
  bool known = false;
  if (lua_isuserdata(T, -1) && lua_getmetatable(T, -1)) {
    lua_pushliteral(T, "__index");
    lua_rawget(T, -2);
    if (lua_istable(T, -1)) {
      lua_pushliteral(T, "class");
      lua_rawget(T, -2);
      known = lua_type(T, -1) == LUA_TSTRING && parse_class(lua_tostring(T, -1), k, r);
    }
  }
  lua_settop(T, top);
  return known;
}

int fd_family(int fd) {
  int family = AF_UNSPEC;
  socklen_t len = sizeof family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) family = AF_UNSPEC;
  return family;
}

void borrow(LSocket* s, int fd) {
  s->sock->adopt(fd, false);
  s->family = fd_family(fd);
  s->born_unspec = false;
}

// Brings wrapper and object into agreement before any use: a descriptor the object got on
// its own (LuaSocket calls on .socket) is taken up, with its class; one it closed itself
// is let go of (the wrapper then answers nil, "closed" as LuaSocket would).
void sync(LSocket* s) {
  Wrapped* w = s->wrapped;
  int fd = object_fd(w);
  if (fd != s->sock->fd()) {
    if (s->has_fd()) s->sock->close();
    if (fd >= 0) {
      borrow(s, fd);
      Kind k;
      Role r;
      if (object_class(w, k, r) && k == s->kind) s->role = w->synced_role = r;
    }
  }
  if (w->synced_role != s->role) wrapped_role(s);
}

LSocket* check_wrapped(lua_State* L, int idx) {
  LSocket* s = check_socket(L, idx);
  if (!s->wrapped) luaL_argerror(L, idx, "corio.wrap() socket expected");
  return s;
}

// Pushes the corio method `name` of s's class (nil if it has none).
void push_class_method(lua_State* L, LSocket* s, const char* name) {
  std::string reg = std::string("corio.") + luasocket_class(s->kind, s->role);
  luaL_getmetatable(L, reg.c_str());
  lua_getfield(L, -1, "__index");
  lua_getfield(L, -1, name);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

// Replaces the LuaSocket object at the top of L's stack by its wrapper, or by nil, message.
// Calls Lua only on the wrapper's thread (L may be a yielded thread being resumed).
int push_wrapper(lua_State* L, Runtime& rt) {
  int obj = lua_gettop(L);
  lua_State* T = lua_newthread(L);
  lua_pushvalue(L, obj);
  set_object(L, T);
  Wrapped w{T, Role::master};
  Kind k = Kind::tcp;
  if (!object_class(&w, k, w.synced_role)) {
    lua_pushnil(L);
    set_object(L, T);
    lua_settop(L, obj - 1);
    lua_pushnil(L);
    lua_pushliteral(L, "LuaSocket tcp or udp socket expected");
    return 2;
  }
  int fd = object_fd(&w);
  auto* u = static_cast<LWrapped*>(new_userdata(L, sizeof(LWrapped)));
  u->s.sock = nullptr;
  luaL_getmetatable(L, kMeta);
  lua_setmetatable(L, -2);
  new (&u->s) LSocket{&rt, new Socket(rt.loop, -1), k, w.synced_role, AF_UNSPEC, true, std::nullopt, Loop::now()};
  u->w = w;
  u->s.wrapped = &u->w;
  if (fd >= 0) borrow(&u->s, fd);
  lua_createtable(L, 1, 1);  // uservalue: { socket = object, [1] = the thread }
  lua_pushvalue(L, obj);
  lua_setfield(L, -2, "socket");
  lua_pushvalue(L, obj + 1);
  lua_rawseti(L, -2, 1);
  set_uservalue(L, -2);
  lua_replace(L, obj);
  lua_settop(L, obj);
  return 1;
}

// corio.wrap(object) -> wrapper; a corio socket (wrapped or not) is returned as it is.
int l_wrap(lua_State* L) {
  lua_settop(L, 1);
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__corio_socket");
    bool corio_socket = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (corio_socket) return 1;
  }
  luaL_checktype(L, 1, LUA_TUSERDATA);
  return push_wrapper(L, runtime(L));
}

// close(): the engine first (waiters wake with nil, "closed"; the poller lets go of the
// descriptor while it is still open), then the object, which owns the descriptor.
int l_close(lua_State* L) {
  LSocket* s = check_wrapped(L, 1);
  push_class_method(L, s, "close");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  call_on_object(s->wrapped, "close", 0, 0);
  lua_pushinteger(L, 1);
  return 1;
}

// setfd(fd): both agree on the new descriptor (neither closes the old one, as in LuaSocket).
int l_setfd(lua_State* L) {
  LSocket* s = check_wrapped(L, 1);
  lua_Integer fd = luaL_checkinteger(L, 2);
  s->sock->close();
  lua_pushinteger(s->wrapped->T, fd);
  call_on_object(s->wrapped, "setfd", 1, 0);
  if (fd >= 0) borrow(s, static_cast<int>(fd));
  return 0;
}

// accept() -> a wrapped client: a LuaSocket tcp{client} on the accepted descriptor.
class AcceptOp final : public SocketOp {
 public:
  AcceptOp(Runtime& rt, LSocket* server) : SocketOp(rt), server_(server) {}
  ~AcceptOp() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status step(Socket& so) override { return accept_one(so.fd(), fd_, error, backoff_, resume_at); }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    // socket.tcp() given the descriptor and made a client, as LuaSocket's accept would.
    lua_State* T = server_->wrapped->T;
    int top = lua_gettop(T);
    lua_getfield(T, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(T, -1, "socket");
    if (lua_istable(T, -1)) lua_getfield(T, -1, "tcp");
    luaL_getmetatable(T, "tcp{client}");
    int client_mt = lua_gettop(T);
    lua_pushvalue(T, -2);
    if (!lua_istable(T, client_mt) || lua_pcall(T, 0, 1, 0) != 0 || !lua_isuserdata(T, -1)) {
      lua_settop(T, top);
      return push_error(L, std::make_error_code(std::errc::not_supported));
    }
    int client = lua_gettop(T);
    lua_getfield(T, client, "setfd");
    lua_pushvalue(T, client);
    lua_pushinteger(T, fd_);
    if (lua_pcall(T, 2, 0, 0) != 0) {
      lua_settop(T, top);
      return push_error(L, std::make_error_code(std::errc::not_supported));
    }
    fd_ = -1;  // the object owns it now
    lua_pushvalue(T, client_mt);
    lua_setmetatable(T, client);
    lua_xmove(T, L, 1);
    lua_settop(T, top);
    return push_wrapper(L, runtime());
  }

 private:
  LSocket* server_;
  int fd_ = -1;
  Duration backoff_{};
};

int l_accept(lua_State* L) {
  LSocket* s = check_wrapped(L, 1);
  if (!s->has_fd()) return push_error(L, Error::closed);
  return SocketOp::start(L, new AcceptOp(*s->rt, s), s, Direction::read);
}

// A method the object has and corio lacks: called on the object itself.
int l_forward(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_replace(L, 2);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// __index: the wrapper's own methods, then corio's for its class, then the uservalue
// (socket, fields set on the wrapper), then the object's own methods.
int l_index(lua_State* L) {
  LSocket* s = check_wrapped(L, 1);
  sync(s);
  const char* key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : nullptr;
  if (key && !(std::strcmp(key, "accept") == 0 && s->role != Role::server)) {
    lua_getfield(L, lua_upvalueindex(1), key);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    push_class_method(L, s, key);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
  }
  get_uservalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1) || !key) return 1;
  lua_getfield(L, -2, "socket");
  lua_getfield(L, -1, key);
  if (!lua_isfunction(L, -1)) return 1;
  lua_insert(L, -2);  // function, object
  lua_pushcclosure(L, l_forward, 2);
  return 1;
}

// __newindex: fields set on a wrapper are kept beside .socket (a facade's methods, user data).
int l_newindex(lua_State* L) {
  check_wrapped(L, 1);
  get_uservalue(L, 1);
  lua_insert(L, 2);
  lua_rawset(L, 2);
  return 0;
}

int l_tostring(lua_State* L) {
  LSocket* s = check_wrapped(L, 1);
  lua_pushfstring(L, "%s: %p", luasocket_class(s->kind, s->role), static_cast<void*>(s));
  return 1;
}

// The engine goes; the descriptor stays with the object (closed by it, or by its __gc).
int l_gc(lua_State* L) {
  auto* s = static_cast<LSocket*>(lua_touserdata(L, 1));
  if (s && s->sock) {
    s->sock->destroy();
    s->sock = nullptr;
    lua_pushnil(L);
    set_object(L, s->wrapped->T);
  }
  return 0;
}

}  // namespace

// The object's class follows the wrapper's role (set_role: connect, listen, setpeername).
void wrapped_role(LSocket* s) {
  Wrapped* w = s->wrapped;
  lua_State* T = w->T;
  int top = lua_gettop(T);
  push_object(w);
  luaL_getmetatable(T, luasocket_class(s->kind, s->role));
  if (lua_isuserdata(T, -2) && lua_istable(T, -1)) {
    lua_setmetatable(T, -2);
    w->synced_role = s->role;
  }
  lua_settop(T, top);
}

void wrapped_adopted(LSocket* s) {
  // Replacing a descriptor this wrapper made (a connect trying the next family): the old
  // one is ours to close; a fresh object had none.
  int old = object_fd(s->wrapped);
  if (old >= 0 && old != s->sock->fd()) ::close(old);
  lua_pushinteger(s->wrapped->T, s->sock->fd());
  call_on_object(s->wrapped, "setfd", 1, 0);
}

void register_wrap(lua_State* L) {
  // module table at -1, runtime at -2
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kObjects);
  luaL_newmetatable(L, kMeta);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__corio_socket");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
#endif
  lua_createtable(L, 0, 3);  // the wrapper's own methods: __index's upvalue
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "close");
  lua_pushcfunction(L, l_setfd);
  lua_setfield(L, -2, "setfd");
  lua_pushcfunction(L, l_accept);
  lua_setfield(L, -2, "accept");
  lua_pushcclosure(L, l_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, l_wrap, 1);
  lua_setfield(L, -2, "wrap");
}

}  // namespace corio::lua
