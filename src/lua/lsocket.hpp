// Lua sockets: the LuaSocket object API (tcp, udp, unix) on corio's Socket engine.
// Calls that must wait yield the calling coroutine (or, outside one, run the loop until
// done), so code written like blocking LuaSocket code runs concurrently.
#pragma once
#include "lcompat.hpp"
#include "lthread.hpp"

#include <corio/address.hpp>
#include <corio/socket.hpp>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace corio::lua {

enum class Kind { tcp, udp, unix_stream };
enum class Role { master, client, server, unconnected, connected };

class ResolveThen;
struct Wrapped;  // lwrap.cpp: the LuaSocket object a corio.wrap() socket borrows its descriptor from

struct LSocket {
  Runtime* rt;
  Socket* sock;  // the engine object; destroy()ed by __gc
  Kind kind;
  Role role;
  int family;  // AF_UNSPEC until a tcp()/udp() socket gets its descriptor
  bool born_unspec;  // its family follows the address (and may change between attempts)
  std::optional<Duration> timeout;
  TimePoint created;
  // bind/connect/setpeername ops still resolving a name: they wait on no descriptor, so
  // close() must end them itself (else a connect would go on with a fresh descriptor).
  ResolveThen* resolving = nullptr;
  Wrapped* wrapped = nullptr;  // set for corio.wrap(): the descriptor is the LuaSocket object's

  // Tells a corio socket from any other userdata in check_socket() without a metatable
  // lookup per call (that lookup was ~1/8 of a Lua echo's instructions).
  static constexpr std::uint64_t kMagic = 0x636f72696f736f6bull;  // "coriosok"
  std::uint64_t magic = kMagic;

  bool has_fd() const noexcept { return sock->fd() >= 0; }
};

// An operation a Lua thread waits on that is also queued on a socket.
class SocketOp : public Operation, public IoOp {
 public:
  explicit SocketOp(Runtime& rt) : Operation(rt) {}
  ~SocketOp() override { runtime().anchors.drop(anchor_); }
  // Pushes the results on L (the waiting state) and returns how many.
  virtual int push(lua_State* L) = 0;
  // Called when the op had to be queued, before the caller waits (L: the caller's stack).
  virtual void queued(lua_State* L) { (void)L; }
  void finish() override { complete(); }

  // Runs the op on s in direction d: returns its results at once, or waits for them.
  static int start(lua_State* L, SocketOp* op, LSocket* s, Direction d);

  // Keeps the Lua value at idx (the data being sent, the socket) alive while the op lasts.
  void anchor(lua_State* L, int idx) {
    lua_pushvalue(L, idx);
    anchor_ = runtime().anchors.hold(L);
  }
  void push_anchor(lua_State* L) const { runtime().anchors.push(L, anchor_); }

 private:
  int anchor_ = Anchors::kNone;
};

LSocket* check_socket(lua_State* L, int idx);
// Creates a socket userdata of kind/role around fd (-1: none yet) and pushes it.
LSocket* push_socket(lua_State* L, Runtime& rt, Kind kind, Role role, int family, int fd);
void set_role(lua_State* L, int idx, LSocket* s, Role role);  // switches the method set
// Gives a descriptor-less socket one of `family`; returns the error or {}.
std::error_code ensure_fd(LSocket* s, int family);
// A wrapped socket's new descriptor (from ensure_fd) is handed to its LuaSocket object.
void wrapped_adopted(LSocket* s);
void wrapped_role(LSocket* s);  // and its class follows the wrapper's role
void register_wrap(lua_State* L);  // corio.wrap into the module table at -1

// nil, message (LuaSocket's words) [, partial pushed by the caller afterwards].
int push_error(lua_State* L, std::error_code ec);
std::string error_message(std::error_code ec);

// Resolves host:port (names asynchronously) and then calls `then` with the addresses.
// Returns what the C function returns (results now or after waiting).
int resolve_and(lua_State* L, LSocket* s, const char* host, std::uint16_t port, int family, ResolveThen* then);

// What a name resolution leads to (a bind, a connect, a sendto ...): an operation run
// once the addresses are known.
class ResolveThen : public SocketOp {
 public:
  using SocketOp::SocketOp;
  // Called with the resolved addresses; returns true if finished (results via push()),
  // false if it went on waiting (it then finishes through IoOp::finish / complete()).
  virtual bool resolved(std::vector<Address> addrs) = 0;
  ~ResolveThen() override;
  std::error_code resolve_error;
  std::uint64_t resolver_id = 0;  // a lookup in flight
  // The lookup is over (answered, cancelled): leaves owner's list of resolving ops.
  void end_lookup() noexcept;
  LSocket* owner = nullptr;  // while resolving: the socket whose list holds this op
  ResolveThen* next_resolving = nullptr;
};

// Method tables per class and their registration.
void register_sockets(lua_State* L);            // metatables + corio.tcp/udp/... into module
// Into the methods table at the top of the stack; the runtime upvalue is at -3.
void add_stream_methods(lua_State* L, Role r);
void add_datagram_methods(lua_State* L, Role r);
inline void add_method(lua_State* L, const char* name, lua_CFunction f) {
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}
int l_setoption(lua_State* L);
int l_getoption(lua_State* L);

// Port argument: a number or a numeric string (socket.http passes strings).
std::uint16_t check_port(lua_State* L, int idx);

}  // namespace corio::lua
