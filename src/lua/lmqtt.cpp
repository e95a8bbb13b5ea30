// core.mqtt_client: corio::mqtt::Client for Lua, the engine under lua/corio/mqtt.lua
// (luamqtt's client API). The binding stays small: requests in, events out. Every event
// calls the client's dispatch function in a pooled corio thread, so a handler may sleep or
// do socket I/O:
//   dispatch("connect", connack) / ("message", msg) / ("error", text) / ("close", text)
//   dispatch("done", token, err | nil [, reasons])   -- a request given a token completed
// A client is anchored while it is active (connected, connecting or waiting to reconnect).
#include "lmqtt.hpp"
#include "lprotect.hpp"
#include "lthread.hpp"
#include "ltls.hpp"

#include <corio/mqtt_client.hpp>

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

namespace corio::lua {
namespace {

namespace mqtt = corio::mqtt;
constexpr const char* kClientType = "corio.mqtt_client";

struct LClient {
  static constexpr std::uint64_t kMagic = 0x636f72696f6d7174ull;  // "coriomqt"
  std::uint64_t magic = kMagic;
  Runtime* rt;
  mqtt::Client* client = nullptr;  // nullptr once closed
  int anchor = Anchors::kNone;     // the userdata (and so dispatch) while active
  bool settling = false;           // a settle() is queued
};

LClient* check_client(lua_State* L) {
  auto* c = to_magic_userdata<LClient>(L, 1);
  if (!c) luaL_argerror(L, 1, "corio mqtt client expected");
  if (!c->client) luaL_error(L, "mqtt client is closed");
  return c;
}

// ---- Lua values to the codec's ----

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

std::string field_string(lua_State* L, int t, const char* k, bool required = false) {
  lua_getfield(L, t, k);
  std::string v;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t n;
    const char* s = lua_tolstring(L, -1, &n);
    v.assign(s, n);
  } else if (!lua_isnil(L, -1) || required) {
    lua_pop(L, 1);
    bad(std::string("expecting ") + k + " to be a string");
  }
  lua_pop(L, 1);
  return v;
}

bool has(lua_State* L, int t, const char* k) {
  lua_getfield(L, t, k);
  bool present = !lua_isnil(L, -1);
  lua_pop(L, 1);
  return present;
}

double field_number(lua_State* L, int t, const char* k, double def, double lo, double hi) {
  lua_getfield(L, t, k);
  double v = def;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    v = lua_tonumber(L, -1);
    if (!(v >= lo && v <= hi)) {  // NaN too
      lua_pop(L, 1);
      bad(std::string("expecting ") + k + " to be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    bad(std::string("expecting ") + k + " to be a number");
  }
  lua_pop(L, 1);
  return v;
}

bool field_bool(lua_State* L, int t, const char* k, bool def) {
  lua_getfield(L, t, k);
  bool v = def;
  if (lua_isboolean(L, -1))
    v = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    bad(std::string("expecting ") + k + " to be a boolean");
  }
  lua_pop(L, 1);
  return v;
}

// properties = { name = value, ... } and user_properties = { key = value } or { {key, value}, ... }
void read_properties(lua_State* L, int props, int user, mqtt::Properties& out) {
  if (props > 0 && !lua_isnil(L, props)) {
    if (!lua_istable(L, props)) bad("expecting properties to be a table");
    lua_pushnil(L);
    while (lua_next(L, props)) {
      if (lua_type(L, -2) != LUA_TSTRING) bad("expecting property names to be strings");
      std::string name = lua_tostring(L, -2);
      auto id = mqtt::property_id(name);
      if (!id) bad("unknown property " + name);
      auto kind = mqtt::property_kind(*id);
      auto pid = static_cast<mqtt::PropertyId>(*id);
      if (kind == mqtt::PropertyKind::string || kind == mqtt::PropertyKind::binary) {
        if (lua_type(L, -1) != LUA_TSTRING) bad("expecting property " + name + " to be a string");
        std::size_t n;
        const char* s = lua_tolstring(L, -1, &n);
        out.set(pid, std::string(s, n));
      } else if (kind == mqtt::PropertyKind::pair) {
        bad("user properties go in user_properties");
      } else {
        if (lua_type(L, -1) != LUA_TNUMBER) bad("expecting property " + name + " to be a number");
        double v = lua_tonumber(L, -1);
        if (!(v >= 0 && v <= 4294967295.0) || v != std::floor(v)) bad("property " + name + " out of range");
        out.set(pid, static_cast<std::uint32_t>(v));
      }
      lua_pop(L, 1);
    }
  }
  if (user > 0 && !lua_isnil(L, user)) {
    if (!lua_istable(L, user)) bad("expecting user_properties to be a table");
    lua_pushnil(L);
    while (lua_next(L, user)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
        out.add_user(lua_tostring(L, -2), lua_tostring(L, -1));
      } else if (lua_istable(L, -1)) {  // { key, value }
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) bad("expecting user property pairs of strings");
        out.add_user(lua_tostring(L, -2), lua_tostring(L, -1));
        lua_pop(L, 2);
      } else {
        bad("expecting user_properties to map strings to strings");
      }
      lua_pop(L, 1);
    }
  }
}

// Pushes properties and user_properties (two tables).
void push_properties(lua_State* L, const mqtt::Properties& p) {
  lua_newtable(L);
  lua_newtable(L);
  for (const auto& prop : p.list) {
    auto id = static_cast<std::uint8_t>(prop.id);
    if (prop.id == mqtt::PropertyId::user_property) {
      lua_pushlstring(L, prop.value.data(), prop.value.size());
      lua_setfield(L, -2, prop.text.c_str());
      continue;
    }
    const char* name = mqtt::property_name(id);
    if (!name) continue;
    auto kind = mqtt::property_kind(id);
    if (kind == mqtt::PropertyKind::string || kind == mqtt::PropertyKind::binary)
      lua_pushlstring(L, prop.text.data(), prop.text.size());
    else
      lua_pushnumber(L, prop.number);
    lua_setfield(L, -3, name);
  }
}

// ---- events ----

// dispatch(kind, ...) with nargs values pushed on main above dispatch and kind.
void call(LClient* c, int nargs) { c->rt->call_in_thread(nargs + 1); }

// Pushes dispatch and the event's name on M; false if the client has none (closed).
bool begin_event(LClient* c, const char* kind) {
  lua_State* M = c->rt->main;
  if (c->anchor == Anchors::kNone || !lua_checkstack(M, 12 + Anchors::kSpare)) return false;
  c->rt->anchors.push(M, c->anchor);
  push_uservalues(M, lua_gettop(M), 1);  // dispatch
  lua_remove(M, -2);
  lua_pushstring(M, kind);
  return true;
}

// An inactive client needs no anchor (it is collectable again). Looked at on the turn
// after a connection ended, once the events of that end (requests failed) have gone out.
void settle(Runtime&, const Soon& s) {
  auto* c = static_cast<LClient*>(s.p);
  c->settling = false;
  if ((!c->client || !c->client->is_active()) && c->anchor != Anchors::kNone)
    c->rt->anchors.drop(std::exchange(c->anchor, Anchors::kNone));
}
void settle_soon(LClient* c) {
  if (c->settling || c->anchor == Anchors::kNone) return;
  c->rt->soon(Soon{settle, nullptr, c, Anchors::kNone, 0});
  c->settling = true;
}

void push_publish(lua_State* L, const mqtt::Publish& m) {
  lua_createtable(L, 0, 9);
  lua_pushliteral(L, "PUBLISH");
  lua_setfield(L, -2, "type");
  lua_pushlstring(L, m.topic.data(), m.topic.size());
  lua_setfield(L, -2, "topic");
  lua_pushlstring(L, m.payload.data(), m.payload.size());
  lua_setfield(L, -2, "payload");
  lua_pushinteger(L, m.qos);
  lua_setfield(L, -2, "qos");
  lua_pushboolean(L, m.retain);
  lua_setfield(L, -2, "retain");
  lua_pushboolean(L, m.dup);
  lua_setfield(L, -2, "dup");
  if (m.qos > 0) {
    lua_pushinteger(L, m.packet_id);
    lua_setfield(L, -2, "packet_id");
  }
  push_properties(L, m.props);
  lua_setfield(L, -3, "user_properties");
  lua_setfield(L, -2, "properties");
}

void wire_events(LClient* c) {
  mqtt::Client& cl = *c->client;
  cl.on_connect = [c](const mqtt::Connack& a) {
    if (!begin_event(c, "connect")) return;
    lua_State* M = c->rt->main;
    lua_createtable(M, 0, 5);
    lua_pushliteral(M, "CONNACK");
    lua_setfield(M, -2, "type");
    lua_pushboolean(M, a.session_present);
    lua_setfield(M, -2, "sp");
    lua_pushinteger(M, a.reason);
    lua_setfield(M, -2, "rc");
    push_properties(M, a.props);
    lua_setfield(M, -3, "user_properties");
    lua_setfield(M, -2, "properties");
    call(c, 1);
  };
  cl.on_message = [c](mqtt::Publish& m) {
    if (!begin_event(c, "message")) return;
    lua_State* M = c->rt->main;
    push_publish(M, m);
    call(c, 1);
  };
  cl.on_error = [c](std::error_code, const std::string& what) {
    if (!begin_event(c, "error")) return;
    lua_State* M = c->rt->main;
    lua_pushlstring(M, what.data(), what.size());
    call(c, 1);
  };
  cl.on_close = [c](std::error_code ec) {
    if (begin_event(c, "close")) {
      lua_State* M = c->rt->main;
      std::string why = ec.message();
      lua_pushlstring(M, why.data(), why.size());
      call(c, 1);
    }
    settle_soon(c);
  };
}

// The completion of a request with a token: dispatch("done", token, err|nil [, reasons]).
void done_event(LClient* c, lua_Integer token, std::error_code ec, const mqtt::SubAck* ack) {
  if (token == 0 || !begin_event(c, "done")) return;
  lua_State* M = c->rt->main;
  lua_pushinteger(M, token);
  if (ec) {
    std::string why = ec.message();
    lua_pushlstring(M, why.data(), why.size());
  } else {
    lua_pushnil(M);
  }
  int n = 2;
  if (ack) {
    lua_createtable(M, static_cast<int>(ack->reasons.size()), 0);
    for (std::size_t i = 0; i < ack->reasons.size(); ++i) {
      lua_pushinteger(M, ack->reasons[i]);
      lua_rawseti(M, -2, static_cast<int>(i + 1));
    }
    ++n;
  }
  call(c, n);
}

void anchor(lua_State* L, LClient* c) {
  if (c->anchor != Anchors::kNone) return;
  lua_pushvalue(L, 1);
  c->anchor = c->rt->anchors.hold(L);
}

// ---- functions ----

// core.mqtt_client(opts, dispatch) -> client
int l_client(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  mqtt::Options o;
  o.host = field_string(L, 1, "host", true);
  o.port = static_cast<std::uint16_t>(field_number(L, 1, "port", 0, 0, 65535));
  double v = field_number(L, 1, "version", 4, 4, 5);
  if (v != 4 && v != 5) bad("expecting version to be a value either 4 or 5");
  o.version = v == 5 ? mqtt::Version::v50 : mqtt::Version::v311;
  o.client_id = field_string(L, 1, "id");
  o.clean = field_bool(L, 1, "clean", true);
  if (has(L, 1, "username")) o.username = field_string(L, 1, "username");
  if (has(L, 1, "password")) o.password = field_string(L, 1, "password");
  o.keep_alive = static_cast<std::uint16_t>(field_number(L, 1, "keep_alive", 60, 0, 65535));
  if (has(L, 1, "ping_deadline")) o.ping_deadline = from_seconds(field_number(L, 1, "ping_deadline", 0, 0.001, 1e6));
  o.connect_timeout = from_seconds(field_number(L, 1, "connect_timeout", 30, 0.001, 1e6));
  if (has(L, 1, "reconnect")) o.reconnect = from_seconds(field_number(L, 1, "reconnect", 0, 0, 1e6));
  o.reconnect_max = from_seconds(field_number(L, 1, "reconnect_max", 60, 0, 1e6));
  o.jitter = field_number(L, 1, "jitter", 0.25, 0, 1);
  o.max_packet_size = static_cast<std::uint32_t>(field_number(L, 1, "max_packet_size", 16 * 1024 * 1024, 16, 268435460));
  o.receive_maximum = static_cast<std::uint16_t>(field_number(L, 1, "receive_maximum", 65535, 1, 65535));
  o.topic_alias_maximum = static_cast<std::uint16_t>(field_number(L, 1, "topic_alias_maximum", 0, 0, 65535));
  o.manual_ack = field_bool(L, 1, "manual_ack", true);
  lua_getfield(L, 1, "properties");
  lua_getfield(L, 1, "user_properties");
  read_properties(L, lua_gettop(L) - 1, lua_gettop(L), o.connect_props);
  lua_pop(L, 2);
  lua_getfield(L, 1, "will");
  if (lua_istable(L, -1)) {
    int w = lua_gettop(L);
    mqtt::Will will;
    will.topic = field_string(L, w, "topic", true);
    will.payload = field_string(L, w, "payload");
    will.qos = static_cast<std::uint8_t>(field_number(L, w, "qos", 0, 0, 2));
    will.retain = field_bool(L, w, "retain", false);
    lua_getfield(L, w, "properties");
    lua_getfield(L, w, "user_properties");
    read_properties(L, lua_gettop(L) - 1, lua_gettop(L), will.props);
    lua_pop(L, 2);
    o.will = std::move(will);
  } else if (!lua_isnil(L, -1)) {
    bad("expecting will to be a table");
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "tls");
  if (!lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
    if (lua_isboolean(L, -1)) {  // true: a verified client with the defaults
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    o.tls = tls_context_of(L, lua_gettop(L), &o.servername);
  }
  lua_pop(L, 1);

  Runtime& rt = runtime(L);
  auto* c = static_cast<LClient*>(new_userdata_values(L, sizeof(LClient), 1));
  new (c) LClient{LClient::kMagic, &rt, nullptr, Anchors::kNone, false};
  luaL_setmetatable(L, kClientType);
  lua_pushvalue(L, 2);
  set_uservalue_at(L, lua_gettop(L) - 1, 1);
  c->client = new mqtt::Client(rt.loop, std::move(o));
  wire_events(c);
  return 1;
}

int l_start(lua_State* L) {
  LClient* c = check_client(L);
  anchor(L, c);
  c->client->start();
  return 0;
}

lua_Integer token_at(lua_State* L, int idx) { return luaL_optinteger(L, idx, 0); }

// client:publish(topic, payload, qos, retain, dup, properties, user_properties, token)
int l_publish(lua_State* L) {
  LClient* c = check_client(L);
  mqtt::Publish p;
  std::size_t n;
  const char* t = luaL_checklstring(L, 2, &n);
  p.topic.assign(t, n);
  const char* pl = luaL_optlstring(L, 3, "", &n);
  p.payload.assign(pl, n);
  lua_Integer q = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, q >= 0 && q <= 2, 4, "expecting qos to be 0, 1 or 2");
  p.qos = static_cast<std::uint8_t>(q);
  p.retain = lua_toboolean(L, 5);
  read_properties(L, 7, 8, p.props);
  lua_Integer token = token_at(L, 9);
  c->client->publish(std::move(p), [c, token](std::error_code ec) { done_event(c, token, ec, nullptr); });
  return 0;
}

// client:subscribe({ {topic=, qos=, no_local=, retain_as_published=, retain_handling=}, ... },
//                  properties, user_properties, token)
int l_subscribe(lua_State* L) {
  LClient* c = check_client(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  mqtt::Subscribe s;
  for (int i = 1;; ++i) {
    lua_rawgeti(L, 2, i);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    if (!lua_istable(L, -1)) bad("expecting subscriptions to be tables");
    int e = lua_gettop(L);
    mqtt::Subscription one;
    one.filter = field_string(L, e, "topic", true);
    one.qos = static_cast<std::uint8_t>(field_number(L, e, "qos", 0, 0, 2));
    one.no_local = field_bool(L, e, "no_local", false);
    one.retain_as_published = field_bool(L, e, "retain_as_published", false);
    one.retain_handling = static_cast<std::uint8_t>(field_number(L, e, "retain_handling", 0, 0, 2));
    s.subscriptions.push_back(std::move(one));
    lua_pop(L, 1);
  }
  read_properties(L, 3, 4, s.props);
  lua_Integer token = token_at(L, 5);
  c->client->subscribe(std::move(s),
                       [c, token](std::error_code ec, const mqtt::SubAck& a) { done_event(c, token, ec, &a); });
  return 0;
}

// client:unsubscribe({ topic, ... }, properties, user_properties, token)
int l_unsubscribe(lua_State* L) {
  LClient* c = check_client(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  mqtt::Unsubscribe u;
  for (int i = 1;; ++i) {
    lua_rawgeti(L, 2, i);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    if (lua_type(L, -1) != LUA_TSTRING) bad("expecting topics to be strings");
    u.filters.emplace_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  read_properties(L, 3, 4, u.props);
  lua_Integer token = token_at(L, 5);
  c->client->unsubscribe(std::move(u),
                         [c, token](std::error_code ec, const mqtt::SubAck& a) { done_event(c, token, ec, &a); });
  return 0;
}

// client:acknowledge(qos, packet_id, rc, properties, user_properties)
int l_acknowledge(lua_State* L) {
  LClient* c = check_client(L);
  mqtt::Publish m;
  m.qos = static_cast<std::uint8_t>(luaL_checkinteger(L, 2));
  m.packet_id = static_cast<std::uint16_t>(luaL_checkinteger(L, 3));
  lua_Integer rc = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, rc >= 0 && rc <= 255, 4, "expecting rc to be a reason code");
  mqtt::Properties props;
  read_properties(L, 5, 6, props);
  c->client->acknowledge(m, static_cast<std::uint8_t>(rc), std::move(props));
  return 0;
}

// client:disconnect(rc, properties, user_properties)
int l_disconnect(lua_State* L) {
  LClient* c = check_client(L);
  lua_Integer rc = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, rc >= 0 && rc <= 255, 2, "expecting rc to be a reason code");
  mqtt::Properties props;
  read_properties(L, 3, 4, props);
  c->client->disconnect(static_cast<std::uint8_t>(rc), std::move(props));
  settle_soon(c);
  return 0;
}

// client:state() -> connected, active, finished, in_flight, keep_alive, id
int l_state(lua_State* L) {
  LClient* c = check_client(L);
  const mqtt::Client& cl = *c->client;
  lua_pushboolean(L, cl.is_connected());
  lua_pushboolean(L, cl.is_active());
  lua_pushboolean(L, cl.is_finished());
  lua_pushinteger(L, static_cast<lua_Integer>(cl.in_flight()));
  lua_pushinteger(L, cl.keep_alive());
  lua_pushlstring(L, cl.client_id().data(), cl.client_id().size());
  return 6;
}

void destroy(LClient* c) {
  delete std::exchange(c->client, nullptr);  // closes the connection, no more events
  // A queued settle() holds on to c through the anchor: it drops it.
  if (c->anchor != Anchors::kNone && !c->settling) c->rt->anchors.drop(std::exchange(c->anchor, Anchors::kNone));
}

// client:close(): the connection closed at once (no DISCONNECT: the will is published).
int l_close(lua_State* L) {
  if (auto* c = to_magic_userdata<LClient>(L, 1); c && c->client) destroy(c);
  return 0;
}

int l_gc(lua_State* L) {
  if (auto* c = to_magic_userdata<LClient>(L, 1)) {
    if (c->client) destroy(c);
    c->~LClient();
  }
  return 0;
}

const luaL_Reg kMethods[] = {
    {"start", protect<l_start>},           {"publish", protect<l_publish>},
    {"subscribe", protect<l_subscribe>},   {"unsubscribe", protect<l_unsubscribe>},
    {"acknowledge", protect<l_acknowledge>}, {"disconnect", protect<l_disconnect>},
    {"state", protect<l_state>},           {"close", protect<l_close>},
    {nullptr, nullptr},
};

}  // namespace

void register_mqtt(lua_State* L) {
  if (luaL_newmetatable(L, kClientType)) {
    lua_pushcfunction(L, protect<l_gc>);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_setfuncs(L, kMethods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2);  // the runtime, as upvalue 1
  lua_pushcclosure(L, protect<l_client>, 1);
  lua_setfield(L, -2, "mqtt_client");
}

}  // namespace corio::lua
