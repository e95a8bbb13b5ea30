// TLS for Lua sockets, on the engine's TlsSession (corio/tls.hpp). Settings use LuaSec's names.
//
//   local ctx = core.tlscontext{ cafile = "ca.pem", alpn = "h2" }  -- or nil, message
//   sock:starttls([ctx_or_params [, servername]])  -- true | nil, message (the socket closed)
//   sock:info([field])        -- { protocol =, cipher =, alpn =, resumed = } | its field | nil
//   sock:getpeercertificate() -- { subject =, issuer =, notbefore =, notafter =, fingerprint = } | nil
//
// A client verifies the server by default (OpenSSL's default paths unless cafile/capath),
// against servername: the argument, else params.servername, else the host the socket
// connected to. settimeout bounds the handshake as any call.
#include "ltls.hpp"

#include "lprotect.hpp"
#include "lsocket.hpp"

#include <corio/tls.hpp>

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace corio::lua {
namespace {

constexpr const char* kContextType = "corio.tlscontext";

struct LTlsContext {
  static constexpr std::uint64_t kMagic = 0x636f72696f746c73ull;  // "coriotls"
  std::uint64_t magic = kMagic;
  std::shared_ptr<TlsContext> ctx;
  std::string servername;
};

std::string opt_string(lua_State* L, int t, const char* field) {
  lua_getfield(L, t, field);
  std::string v;
  if (lua_type(L, -1) == LUA_TSTRING) {
    v = lua_tostring(L, -1);
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    throw std::invalid_argument(std::string("tls parameter ") + field + " must be a string");
  }
  lua_pop(L, 1);
  return v;
}

// A string or a list of strings.
std::vector<std::string> opt_list(lua_State* L, int t, const char* field) {
  std::vector<std::string> out;
  lua_getfield(L, t, field);
  if (lua_type(L, -1) == LUA_TSTRING) {
    out.emplace_back(lua_tostring(L, -1));
  } else if (lua_istable(L, -1)) {
    for (int i = 1;; ++i) {
      lua_rawgeti(L, -1, i);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      if (lua_type(L, -1) != LUA_TSTRING) throw std::invalid_argument(std::string("tls parameter ") + field + " must be a string or a list of strings");
      out.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    throw std::invalid_argument(std::string("tls parameter ") + field + " must be a string or a list of strings");
  }
  lua_pop(L, 1);
  return out;
}

// params at t (a table, or none: a verified client) -> settings and servername. A bad one
// throws (protect<> raises it as a Lua error once the C++ objects are gone).
TlsParams parse(lua_State* L, int t, std::string& servername) {
  TlsParams p;
  if (lua_isnoneornil(L, t)) return p;
  if (!lua_istable(L, t)) throw std::invalid_argument("tls parameters must be a table");
  std::string mode = opt_string(L, t, "mode");
  if (mode == "server")
    p.mode = TlsParams::Mode::server;
  else if (!mode.empty() && mode != "client")
    throw std::invalid_argument("tls parameter mode must be \"client\" or \"server\"");
  std::string protocol = opt_string(L, t, "protocol");
  p.protocol = protocol.empty() || protocol == "sslv23" || protocol == "tlsv1_2_or_later" ? "any" : protocol;
  // verify: "none" | "peer" | a list of LuaSec's flags; a client verifies unless "none".
  auto verify = opt_list(L, t, "verify");
  bool none = false, peer = false;
  for (const auto& v : verify) (v == "none" ? none : peer) = true;
  p.verify = p.mode == TlsParams::Mode::client ? !none : peer && !none;
  p.cafile = opt_string(L, t, "cafile");
  p.capath = opt_string(L, t, "capath");
  p.certificate = opt_string(L, t, "certificate");
  p.key = opt_string(L, t, "key");
  p.password = opt_string(L, t, "password");
  p.ciphers = opt_string(L, t, "ciphers");
  p.alpn = opt_list(L, t, "alpn");
  opt_list(L, t, "options");  // LuaSec's option names: checked for type, OpenSSL's defaults kept
  servername = opt_string(L, t, "servername");
  // sni = { [name] = { certificate =, key = ... }, ... }: a server's other certificates
  lua_getfield(L, t, "sni");
  if (lua_istable(L, -1)) {
    int sni = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, sni)) {
      if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
        throw std::invalid_argument("tls parameter sni must map names to tables of parameters");
      std::string ignored;
      p.sni.emplace_back(lua_tostring(L, -2), parse(L, lua_gettop(L), ignored));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    throw std::invalid_argument("tls parameter sni must map names to tables of parameters");
  }
  lua_pop(L, 1);
  return p;
}

// core.tlscontext([params]) -> context | nil, message
int l_tlscontext(lua_State* L) {
  std::string servername;
  TlsParams p = parse(L, 1, servername);
  std::string why;
  auto r = TlsContext::create(p, &why);
  if (r.error) {
    lua_pushnil(L);
    lua_pushstring(L, why.c_str());
    return 2;
  }
  auto* u = static_cast<LTlsContext*>(lua_newuserdata(L, sizeof(LTlsContext)));
  new (u) LTlsContext{LTlsContext::kMagic, std::move(r.value), std::move(servername)};
  luaL_setmetatable(L, kContextType);
  return 1;
}

int l_context_gc(lua_State* L) {
  if (auto* u = to_magic_userdata<LTlsContext>(L, 1)) u->~LTlsContext();
  return 0;
}

class HandshakeOp final : public SocketOp<TlsHandshake> {
 public:
  HandshakeOp(Runtime& rt, LSocket* s) : SocketOp(rt), s_(s) {}
  int push(lua_State* L) override {
    if (error) {
      close_socket(s_);  // a failed starttls leaves the socket closed
      return push_error(L, error);
    }
    lua_pushboolean(L, 1);
    return 1;
  }

 private:
  LSocket* s_;
};

TlsSession* session_of(LSocket* s) {
  auto* t = dynamic_cast<TlsSession*>(s->sock->transport());
  return t && t->established() ? t : nullptr;
}

void set_field(lua_State* L, const char* k, const std::string& v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, k);
}

}  // namespace

std::shared_ptr<TlsContext> tls_context_of(lua_State* L, int idx, std::string* servername) {
  if (auto* c = to_magic_userdata<LTlsContext>(L, idx)) {
    if (servername) *servername = c->servername;
    return c->ctx;
  }
  std::string name;
  TlsParams p = parse(L, idx, name);
  std::string why;
  auto r = TlsContext::create(p, &why);
  if (r.error) throw std::invalid_argument(why);
  if (servername) *servername = name;
  return std::move(r.value);
}

// sock:starttls([ctx_or_params [, servername]])
int l_starttls(lua_State* L) {
  LSocket* s = check_role<Kind::tcp>(L, 1, Role::client);
  std::shared_ptr<TlsContext> ctx;
  std::string name;
  if (auto* c = to_magic_userdata<LTlsContext>(L, 2)) {
    ctx = c->ctx;
    name = c->servername;
  } else {
    TlsParams p = parse(L, 2, name);
    std::string why;
    auto r = TlsContext::create(p, &why);
    if (r.error) {
      close_socket(s);
      lua_pushnil(L);
      lua_pushstring(L, why.c_str());
      return 2;
    }
    ctx = std::move(r.value);
  }
  if (lua_type(L, 3) == LUA_TSTRING) name = lua_tostring(L, 3);
  if (name.empty() && ctx->params().mode == TlsParams::Mode::client) name = s->host;
  if (std::error_code ec = start_tls(*s->sock, std::move(ctx), name)) {
    close_socket(s);
    return push_error(L, ec);
  }
  auto* op = new HandshakeOp(*s->rt, s);
  op->anchor(L, 1);
  return op->settle(L, s->sock->submit(*op, Direction::read, s->timeout()));
}

// sock:info([field]): as LuaSec's conn:info, the table or one of its fields.
int l_info(lua_State* L) {
  TlsSession* t = session_of(check_role<Kind::tcp>(L, 1, Role::client));
  if (!t) return 0;
  const char* field = luaL_optstring(L, 2, nullptr);
  TlsInfo i = t->info();
  lua_createtable(L, 0, 4);
  set_field(L, "protocol", i.protocol);
  set_field(L, "cipher", i.cipher);
  if (!i.alpn.empty()) set_field(L, "alpn", i.alpn);
  lua_pushboolean(L, i.resumed);
  lua_setfield(L, -2, "resumed");
  if (field) lua_getfield(L, -1, field);
  return 1;
}

int l_getpeercertificate(lua_State* L) {
  TlsSession* t = session_of(check_role<Kind::tcp>(L, 1, Role::client));
  if (!t) return 0;
  TlsInfo i = t->info();
  if (i.peer.fingerprint.empty()) return 0;
  lua_createtable(L, 0, 5);
  set_field(L, "subject", i.peer.subject);
  set_field(L, "issuer", i.peer.issuer);
  set_field(L, "notbefore", i.peer.notbefore);
  set_field(L, "notafter", i.peer.notafter);
  set_field(L, "fingerprint", i.peer.fingerprint);
  return 1;
}

void register_tls(lua_State* L) {
  luaL_newmetatable(L, kContextType);
  lua_pushcfunction(L, l_context_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, protect<l_tlscontext>);
  lua_setfield(L, -2, "tlscontext");
}

}  // namespace corio::lua
