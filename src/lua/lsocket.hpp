// Lua sockets: LuaSocket's object API (tcp, udp, unixstream) on corio's Socket engine.
// Calls that must wait yield the calling coroutine (or, outside one, run the loop until
// done), so code written like blocking LuaSocket code runs concurrently. Every rule lives in
// the engine (src/net); these files only translate arguments and results.
#pragma once
#include "lcompat.hpp"
#include "lthread.hpp"

#include <corio/socket.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace corio::lua {

enum class Kind { tcp, udp, unix_stream };
enum class Role { master, client, server, unconnected, connected };

struct Wrapped;  // lwrap.cpp: the LuaSocket object a corio.wrap() socket borrows its descriptor from

struct LSocket {
  LSocket(Runtime* r, Socket* so, Kind k, Role ro, int fam) noexcept
      : rt(r), sock(so), kind(k), role(ro), family(fam), created(Loop::now()) {}

  Runtime* rt;
  Socket* sock;  // the engine object; destroy()ed by __gc
  Kind kind;
  Role role;
  // LuaSocket's family: fixed for tcp4/tcp6/udp4/udp6; AF_UNSPEC for tcp()/udp() until a
  // bind or connect succeeds (addresses of any family are tried until then).
  int family;
  double block = -1;  // settimeout(t, "b") and (t, "t"), as given: negative means none
  double total = -1;
  std::optional<Duration> wait;  // the smaller of the two (LuaSocket measures both from the
                                 // start of the call): the longest one call waits
  TimePoint created;
  Wrapped* wrapped = nullptr;  // set for corio.wrap(): the descriptor is the LuaSocket object's
  std::string host;            // as given to connect: the name starttls checks by default

  // Tells a corio socket from any other userdata in check_socket() without a metatable
  // lookup per call (that lookup was ~1/8 of a Lua echo's instructions).
  static constexpr std::uint64_t kMagic = 0x636f72696f736f6bull;  // "coriosok"
  std::uint64_t magic = kMagic;

  bool has_fd() const noexcept { return sock->fd() >= 0; }
  std::optional<Duration> timeout() const noexcept { return wait; }
  void set_timeouts(double block_s, double total_s) noexcept;
};

// A Lua thread's wait on an engine operation (IoOp, or one built on it such as ConnectOp).
template <class Engine = IoOp>
class SocketOp : public Engine, public Operation {
 public:
  explicit SocketOp(Runtime& rt) : Operation(rt) {}
  ~SocketOp() override { runtime().anchors.drop(anchor_); }
  int push(lua_State* L) override = 0;  // the results, onto L (the waiting thread): how many
  void finish() override { complete(); }

  // Returns the results now if the op finished (submitted or started already: `done`),
  // or waits for them.
  int settle(lua_State* L, bool done) {
    if (!done) return wait(L);
    int n = push(L);
    delete this;
    return n;
  }
  // Keeps the Lua value at idx (the data being sent, the socket) alive while the op lasts.
  void anchor(lua_State* L, int idx) {
    lua_pushvalue(L, idx);
    anchor_ = runtime().anchors.hold(L);
  }
  void push_anchor(lua_State* L) const { runtime().anchors.push(L, anchor_); }

 private:
  int anchor_ = Anchors::kNone;
};

// Raises LuaSocket's "bad argument #1 to 'close' (tcp{any} expected)", or with a role
// "... (tcp{client} expected)".
[[noreturn]] void bad_socket(lua_State* L, int idx, Kind kind, std::optional<Role> role);
// The socket at idx if it is of kind K (a method of K's classes: K is known when compiled, so
// the check costs a compare), or of K and role; else LuaSocket's error.
template <Kind K>
[[gnu::always_inline]] inline LSocket* check_socket(lua_State* L, int idx) {
  LSocket* s = to_magic_userdata<LSocket>(L, idx);  // LWrapped starts with an LSocket too
  if (s && s->sock && s->kind == K) return s;
  bad_socket(L, idx, K, std::nullopt);
}
template <Kind K>
[[gnu::always_inline]] inline LSocket* check_role(lua_State* L, int idx, Role role) {  // LuaSocket checks the class alone
  LSocket* s = to_magic_userdata<LSocket>(L, idx);
  if (s && s->sock && s->kind == K && s->role == role) return s;
  bad_socket(L, idx, K, role);
}
LSocket* check_any_socket(lua_State* L, int idx);  // of any kind (a wrapper's metamethods)
// Creates a socket userdata of kind/role around fd (-1: none yet) and pushes it.
LSocket* push_socket(lua_State* L, Runtime& rt, Kind kind, Role role, int family, int fd);
void set_role(lua_State* L, int idx, LSocket* s, Role role);  // switches the class
const char* class_name(Kind k, Role r);                        // "tcp{client}" ...
void wrapped_role(LSocket* s);      // lwrap.cpp: a wrapper's object follows its class
void wrapped_close(LSocket* s);     // lwrap.cpp: the engine's side, then the object's close()
void wrapped_setfd(LSocket* s, int fd);
int wrapped_accept(lua_State* L, LSocket* s);  // a wrapped client on a LuaSocket object
void close_socket(LSocket* s);      // close(), of a wrapper too
void register_wrap(lua_State* L);   // corio.wrap into the module table at -1

// nil, message (LuaSocket's words) [, a third value pushed by the caller].
int push_error(lua_State* L, std::error_code ec);
std::string error_message(std::error_code ec);
// 1 | nil, message: what bind, connect, listen ... return.
int push_status(lua_State* L, std::error_code ec);
// A byte count argument that may be math.huge (no bound: SIZE_MAX).
std::size_t check_bytes(lua_State* L, int idx);

// Method tables per kind (beside the methods every kind has; the runtime is their upvalue)
// and their registration.
void register_sockets(lua_State* L);  // metatables + corio.tcp/udp/... into the module
const luaL_Reg* stream_methods(Kind kind);  // tcp, unixstream
const luaL_Reg* tls_methods(Kind kind);     // tcp: starttls, info, getpeercertificate (lstream.cpp); else nullptr
extern const luaL_Reg kDatagramMethods[];
template <Kind K>
int l_setoption(lua_State* L);
template <Kind K>
int l_getoption(lua_State* L);

// bind / connect (setsockname / setpeername) through the engine's ConnectOp.
int address_call(lua_State* L, LSocket* s, int host_idx, bool bind);

}  // namespace corio::lua
