// corio.wrap(luasocket_object): a LuaSocket socket (tcp master/client/server, udp,
// unixstream) made asynchronous. The wrapper is a corio socket (the same engine and
// methods) whose engine borrows the LuaSocket object's descriptor: the object stays its
// owner and is kept as wrapper.socket; closing the wrapper closes it too, and closing the
// object with LuaSocket's own close() closes the wrapper (its waiters wake with "closed").
//
// A fresh LuaSocket object has no descriptor (getfd() == -1) until bind/connect. The engine
// then resolves the name itself (asynchronously) and makes the descriptor of the address's
// family, which it hands to the object (Socket::Owner::replaced -> setfd); likewise the
// fresh descriptor of each further connect attempt.
//
// Lua calls on the object go through a thread of the wrapper's own, never the caller's:
// the engine may need them from a loop callback or from a push() onto a yielded thread.
// They may nest (the object's close closing the wrapper), so they leave that thread's stack
// as they found it and find the object in a weak table (kObjects, keyed by that thread):
// the wrapper's uservalue keeps it, and nothing else must.
#include "lsocket.hpp"

#include "lprotect.hpp"

#include <cstring>
#include <new>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace corio::lua {

namespace {
void call_setfd(lua_State* T, int fd);
}

struct Wrapped final : Socket::Owner {
  lua_State* T;      // calls on the object run here; anchored in the uservalue
  Role synced_role;  // the object's class follows the wrapper's role (master -> client ...)

  Wrapped(lua_State* t, Role r) : T(t), synced_role(r) {}
  // The engine made a fresh descriptor (its old one closed): the object takes it.
  void replaced(int new_fd) override { call_setfd(T, new_fd); }
};

namespace {

struct LWrapped {
  LSocket s;  // first: check_socket() and every corio method see an LSocket
  Wrapped w;
};

const char* const kMeta = "corio.wrapped";
const char* const kObjects = "corio.wrapped.objects";    // thread -> object, weak values
const char* const kWrappers = "corio.wrapped.wrappers";  // object -> wrapper, weak

// table[key] = the value at the top of L (popped), for the registry table `name`.
void set_weak(lua_State* L, const char* name, int key) {
  key = abs_index(L, key);
  lua_getfield(L, LUA_REGISTRYINDEX, name);
  lua_pushvalue(L, key);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

// objects[T] = the value at the top of L (popped).
void set_object(lua_State* L, lua_State* T) {
  lua_pushlightuserdata(L, T);
  lua_insert(L, -2);
  set_weak(L, kObjects, -2);
  lua_pop(L, 1);
}

// LuaSocket's class names, which are also its registry names.
const char* luasocket_class(Kind k, Role r) { return class_name(k, r); }

// LuaSocket's classes, as corio knows them.
const struct {
  Kind kind;
  Role role;
} kClasses[] = {
    {Kind::tcp, Role::master},         {Kind::tcp, Role::client},         {Kind::tcp, Role::server},
    {Kind::udp, Role::unconnected},    {Kind::udp, Role::connected},      {Kind::unix_stream, Role::master},
    {Kind::unix_stream, Role::client}, {Kind::unix_stream, Role::server},
};

bool parse_class(const char* c, Kind& k, Role& r) {
  for (const auto& cls : kClasses)
    if (std::strcmp(c, luasocket_class(cls.kind, cls.role)) == 0) {
      k = cls.kind;
      r = cls.role;
      return true;
    }
  return false;
}

// Pushes the object (nil if gone) with room for kRoom more values above it: the calls on T
// nest (an object's close closing its wrapper), and a thread's stack does not grow by itself.
constexpr int kRoom = 8;
void push_object(lua_State* T) {
  if (!lua_checkstack(T, kRoom + 2)) {  // cannot grow: the object is as good as gone
    lua_pushnil(T);
    return;
  }
  lua_getfield(T, LUA_REGISTRYINDEX, kObjects);
  lua_pushlightuserdata(T, T);
  lua_rawget(T, -2);
  lua_remove(T, -2);
}

// object:method(args...) on the wrapper's thread, the nargs arguments pushed on it; leaves
// nres results there. False on error (nothing left).
bool call_on_object(lua_State* T, const char* method, int nargs, int nres) {
  push_object(T);
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

void call_setfd(lua_State* T, int fd) {
  if (!lua_checkstack(T, 1)) return;
  lua_pushinteger(T, fd);
  call_on_object(T, "setfd", 1, 0);
}

int object_fd(Wrapped* w) {
  int top = lua_gettop(w->T);
  int fd = -1;
  if (call_on_object(w->T, "getfd", 0, 1) && is_integer(w->T, -1)) fd = static_cast<int>(lua_tonumber(w->T, -1));
  lua_settop(w->T, top);
  return fd;
}

// The object's class (LuaSocket's class field, read without metamethods: any userdata may
// be passed to wrap), as kind and role.
bool object_class(lua_State* T, Kind& k, Role& r) {
  int top = lua_gettop(T);
  push_object(T);
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

void borrow(LSocket* s, int fd) {
  s->sock->adopt(fd);
  s->family = s->sock->family();
}

// Brings wrapper and object into agreement before any use: a descriptor the object got on
// its own (LuaSocket calls on .socket) is taken up, one it let go of is let go of (the
// wrapper then answers nil, "closed" as LuaSocket would), and a class the object took by
// itself (its own connect, setpeername, listen) becomes the wrapper's.
void sync(LSocket* s) {
  Wrapped* w = s->wrapped;
  int fd = object_fd(w);
  if (fd != s->sock->fd()) {
    if (s->has_fd()) s->sock->close();
    if (fd >= 0) borrow(s, fd);
  }
  Kind k;
  Role r;
  if (object_class(w->T, k, r) && k == s->kind && r != w->synced_role) s->role = w->synced_role = r;
  if (w->synced_role != s->role) wrapped_role(s);
}

LSocket* check_wrapped(lua_State* L, int idx) {
  LSocket* s = check_any_socket(L, idx);
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

// LuaSocket's close() of an object that has a wrapper closes the wrapper first: threads
// waiting on it wake with "closed" instead of waiting on a descriptor number that a new
// connection may get. Upvalues: the class's own close, the table of wrappers.
int l_object_close(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  LSocket* w = to_magic_userdata<LSocket>(L, -1);
  if (w && w->sock && w->wrapped) w->sock->close();
  lua_pop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// Once per LuaSocket class present: its close goes through l_object_close.
void patch_luasocket_close(lua_State* L) {
  for (const auto& cls : kClasses) {
    luaL_getmetatable(L, luasocket_class(cls.kind, cls.role));
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "__index");
      if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "close");
        if (lua_isfunction(L, -1) && lua_tocfunction(L, -1) != protect<l_object_close>) {
          lua_getfield(L, LUA_REGISTRYINDEX, kWrappers);
          lua_pushcclosure(L, protect<l_object_close>, 2);
          lua_setfield(L, -2, "close");
        } else {
          lua_pop(L, 1);
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

// Replaces the LuaSocket object at the top of L's stack by its wrapper, or by nil, message.
// Calls Lua only on the wrapper's thread (L may be a yielded thread being resumed).
int push_wrapper(lua_State* L, Runtime& rt) {
  int obj = lua_gettop(L);
  lua_State* T = lua_newthread(L);
  lua_pushvalue(L, obj);
  set_object(L, T);
  Kind k = Kind::tcp;
  Role role = Role::master;
  if (!object_class(T, k, role)) {
    lua_pushnil(L);
    set_object(L, T);
    lua_settop(L, obj - 1);
    lua_pushnil(L);
    lua_pushliteral(L, "LuaSocket tcp, udp or unixstream socket expected");
    return 2;
  }
  patch_luasocket_close(L);
  auto* u = static_cast<LWrapped*>(new_userdata(L, sizeof(LWrapped)));
  u->s.sock = nullptr;
  luaL_getmetatable(L, kMeta);
  lua_setmetatable(L, -2);
  auto* engine = new Socket(rt.loop, -1);  // nothing may raise a Lua error while this is unowned
  new (&u->s) LSocket(&rt, engine, k, role, AF_UNSPEC);
  new (&u->w) Wrapped(T, role);
  u->s.wrapped = &u->w;
  engine->set_owner(&u->w);
  int fd = object_fd(&u->w);
  if (fd >= 0) borrow(&u->s, fd);
  lua_createtable(L, 1, 1);  // uservalue: { socket = object, [1] = the thread }
  lua_pushvalue(L, obj);
  lua_setfield(L, -2, "socket");
  lua_pushvalue(L, obj + 1);
  lua_rawseti(L, -2, 1);
  set_uservalue(L, -2);
  lua_pushvalue(L, -1);
  set_weak(L, kWrappers, obj);  // wrappers[object] = wrapper
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

#if LUA_VERSION_NUM >= 504
// __close: as close().
int l_close(lua_State* L) {
  wrapped_close(check_wrapped(L, 1));
  return 0;
}
#endif

// accept() -> a wrapped client: a LuaSocket tcp{client} (or unixstream{client}) object on
// the accepted descriptor, made as LuaSocket's accept would.
class AcceptOp final : public SocketOp<> {
 public:
  AcceptOp(Runtime& rt, LSocket* server) : SocketOp(rt), server_(server) {}
  ~AcceptOp() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status step(Socket& so) override { return so.accept(fd_, error, backoff_, resume_at); }

  int push(lua_State* L) override {
    if (error) return push_error(L, error);
    lua_State* T = server_->wrapped->T;
    if (!lua_checkstack(T, kRoom)) return push_error(L, std::make_error_code(std::errc::not_enough_memory));
    int top = lua_gettop(T);
    bool unix_stream = server_->kind == Kind::unix_stream;
    // socket.tcp(), or socket.unix.stream() (which makes a descriptor of its own: closed first)
    lua_getfield(T, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(T, -1, unix_stream ? "socket.unix" : "socket");
    if (lua_istable(T, -1)) lua_getfield(T, -1, unix_stream ? "stream" : "tcp");
    luaL_getmetatable(T, luasocket_class(server_->kind, Role::client));
    int client_mt = lua_gettop(T);
    lua_pushvalue(T, -2);
    bool ok = lua_istable(T, client_mt) && lua_pcall(T, 0, 1, 0) == 0 && lua_isuserdata(T, -1);
    int client = lua_gettop(T);
    if (ok && unix_stream) {  // its own descriptor goes first
      lua_getfield(T, client, "close");
      lua_pushvalue(T, client);
      ok = lua_pcall(T, 1, 0, 0) == 0;
    }
    if (ok) {
      lua_getfield(T, client, "setfd");
      lua_pushvalue(T, client);
      lua_pushinteger(T, fd_);
      ok = lua_pcall(T, 2, 0, 0) == 0;
    }
    if (!ok) {
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


// A method the object has and corio lacks: called on the object itself.
int l_forward(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_replace(L, 2);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// __index: corio's methods for its class (which know a wrapper: close, setfd, accept), then
// the uservalue (socket, fields set on the wrapper), then the object's own methods.
int l_index(lua_State* L) {
  LSocket* s = check_wrapped(L, 1);
  sync(s);
  const char* key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : nullptr;
  if (key) {
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
  lua_pushcclosure(L, protect<l_forward>, 2);
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
  if (s) std::string().swap(s->host);  // the userdata's memory is Lua's: no destructor runs
  return 0;
}

void new_weak_table(lua_State* L, const char* name, const char* mode) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, name);
}

}  // namespace

// close(): the engine first (waiters wake with nil, "closed"; the poller lets go of the
// descriptor while it is still open), then the object, which owns the descriptor.
void wrapped_close(LSocket* s) {
  s->sock->close();
  call_on_object(s->wrapped->T, "close", 0, 0);
}

// setfd(fd): both agree on the new descriptor (neither closes the old one, as in LuaSocket).
void wrapped_setfd(LSocket* s, int fd) {
  s->sock->detach();
  call_setfd(s->wrapped->T, fd);
  if (fd >= 0) borrow(s, fd);
}

int wrapped_accept(lua_State* L, LSocket* s) {
  auto* op = new AcceptOp(*s->rt, s);
  op->anchor(L, 1);
  return op->settle(L, s->sock->submit(*op, Direction::read, s->timeout()));
}

// The object's class follows the wrapper's role (set_role: connect, listen, setpeername).
void wrapped_role(LSocket* s) {
  Wrapped* w = s->wrapped;
  lua_State* T = w->T;
  int top = lua_gettop(T);
  push_object(T);
  luaL_getmetatable(T, luasocket_class(s->kind, s->role));
  if (lua_isuserdata(T, -2) && lua_istable(T, -1)) {
    lua_setmetatable(T, -2);
    w->synced_role = s->role;
  }
  lua_settop(T, top);
}

void register_wrap(lua_State* L) {
  // module table at -1, runtime at -2
  new_weak_table(L, kObjects, "v");
  new_weak_table(L, kWrappers, "kv");
  luaL_newmetatable(L, kMeta);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__corio_socket");
  lua_pushcfunction(L, protect<l_gc>);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, protect<l_tostring>);
  lua_setfield(L, -2, "__tostring");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, protect<l_close>);
  lua_setfield(L, -2, "__close");
#endif
  lua_pushcfunction(L, protect<l_index>);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, protect<l_newindex>);
  lua_setfield(L, -2, "__newindex");
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, protect<l_wrap>, 1);
  lua_setfield(L, -2, "wrap");
}

}  // namespace corio::lua
