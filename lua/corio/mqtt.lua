-- corio.mqtt: luamqtt's client API on corio's native MQTT client (src/mqtt, through
-- core.mqtt_client). A luamqtt user changes only the require line:
--
--   local mqtt = require "corio.mqtt"          -- was: require "mqtt"
--   local client = mqtt.client{ uri = "127.0.0.1", clean = true, keep_alive = 30 }
--   client:on{ connect = function(connack) client:subscribe{ topic = "t/#", qos = 1 } end,
--              message = function(msg) client:acknowledge(msg); print(msg.topic, msg.payload) end }
--   mqtt.run_ioloop(client)
--
-- Handlers run in corio threads: they may sleep and do socket I/O. Requests made before the
-- connection is up wait for it (luamqtt refuses them), so they answer true, not a packet id.
-- Keep-alive, reconnect (with back-off and jitter), QoS 1/2 flows and retransmission are the
-- engine's; corio clients go into corio.ioloop beside luamqtt's own.
local core = require "corio.core"
local corio = require "corio"

local mqtt = {
  v311 = 4,
  v50 = 5,
  _VERSION = "3.4.3-corio",
}

local EVENTS = { connect = true, subscribe = true, unsubscribe = true, message = true,
                 acknowledge = true, error = true, close = true, auth = true }
-- reconnect = true: the first retry after this many seconds, then doubling (with jitter)
local RECONNECT_BASE = 0.5

local Client = {}
Client.__index = Client
Client._corio_mqtt = true

local function check(cond, msg)
  if not cond then error(msg, 3) end
end

-- uri: "host", "host:port", "mqtt://host[:port]", "mqtts://host[:port]"
local function parse_uri(uri)
  local scheme, rest = uri:match("^(%a+)://(.*)$")
  if scheme and scheme ~= "mqtt" and scheme ~= "mqtts" then
    error("corio.mqtt: unsupported uri scheme " .. scheme .. " (mqtt or mqtts)", 3)
  end
  rest = rest or uri
  local host, port = rest:match("^%[(.-)%]:?(%d*)$")  -- [v6]:port
  if not host then host, port = rest:match("^([^:/]+):?(%d*)/?$") end
  check(host and host ~= "", "expecting uri to hold a host, got " .. uri)
  return host, tonumber(port), scheme == "mqtts"
end

local function handle(self, event, ...)
  local list = self.handlers[event]
  self._handling[event] = true
  for i = 1, #list do list[i](...) end
  self._handling[event] = nil
  local gone = self._to_remove[event]
  if gone then
    self._to_remove[event] = nil
    for _, f in ipairs(gone) do self:off(event, f) end
  end
end

-- The engine's events (dispatch runs in a corio thread of its own).
local function dispatcher(self)
  return function(kind, a, b, c)
    if kind == "done" then
      local done = self._pending[a]
      self._pending[a] = nil
      if done then done(b, c) end
      return
    end
    if kind == "connect" then
      self.connection = self.connection or { send_time = 0 }
      handle(self, "connect", a, self)
    elseif kind == "message" then
      handle(self, "message", a, self)
    elseif kind == "error" then
      handle(self, "error", a, self)
    elseif kind == "close" then
      local conn = self.connection or {}
      self.connection = nil
      conn.close_reason = a
      handle(self, "close", conn, self)
      local _, active = self._core:state()
      if not active then self:_finished() end
    end
  end
end

local function new_client(args)
  check(type(args) == "table", "expecting args to be a table")
  local a = {}
  for key, value in pairs(args) do
    check(type(key) == "string", "expecting string key in args, got: " .. type(key))
    a[key] = value
  end
  check(type(a.uri) == "string", 'expecting uri="..." to create MQTT client')
  check(type(a.clean) == "boolean", "expecting clean=true or clean=false to create MQTT client")
  check(a.version == nil or a.version == 4 or a.version == 5, "expecting version to be a value either 4 or 5")
  check(a.id == nil or type(a.id) == "string", "expecting id to be a string")
  check(a.username == nil or type(a.username) == "string", "expecting username to be a string")
  check(a.password == nil or type(a.password) == "string", "expecting password to be a string")
  check(not a.password or a.username, "password is not accepted in absence of username")
  check(a.keep_alive == nil or type(a.keep_alive) == "number", "expecting keep_alive to be a number")
  check(a.reconnect == nil or type(a.reconnect) == "boolean" or type(a.reconnect) == "number",
        "expecting reconnect to be a boolean or number")
  check(a.secure == nil or type(a.secure) == "boolean" or type(a.secure) == "table",
        "expecting secure to be a boolean or table")
  check(a.will == nil or type(a.will) == "table", "expecting will to be a table")
  if a.will then
    check(type(a.will.topic) == "string", "expecting will.topic to be a string")
    check(type(a.will.payload) == "string", "expecting will.payload to be a string")
  end
  local host, port, tls_scheme = parse_uri(a.uri)
  a.version = a.version or 4
  a.keep_alive = a.keep_alive or 60
  a.id = a.id or ("corio-mqtt-%07x"):format(math.random(1, 0xFFFFFFF))
  local reconnect = a.reconnect
  if reconnect == true then reconnect = RECONNECT_BASE elseif reconnect == false then reconnect = nil end
  check(reconnect == nil or reconnect >= 0, "expecting reconnect to be a positive number of seconds")
  -- TLS: secure = true or an mqtts uri (a verified client with the defaults), or LuaSec-named params
  local tls = nil
  if a.secure or tls_scheme then tls = type(a.secure) == "table" and a.secure or true end
  local self = setmetatable({
    args = a,
    handlers = {},
    _handling = {},
    _to_remove = {},
    _pending = {},  -- request token -> completion
    _token = 0,
    _finish_waiters = {},
  }, Client)
  for e in pairs(EVENTS) do self.handlers[e] = {} end
  self._core = core.mqtt_client({
    host = host, port = port, version = a.version, id = a.id, clean = a.clean,
    username = a.username, password = a.password, keep_alive = a.keep_alive,
    will = a.will, properties = a.properties, user_properties = a.user_properties,
    reconnect = reconnect, tls = tls,
    ping_deadline = a.ping_deadline, connect_timeout = a.connect_timeout,
    max_packet_size = a.max_packet_size, receive_maximum = a.receive_maximum,
    topic_alias_maximum = a.topic_alias_maximum, manual_ack = true,
  }, dispatcher(self))
  return self
end

function mqtt.client(args)
  return new_client(args)
end

--- on(event, func) or on{ event = func, ... }
function Client:on(...)
  local n = select("#", ...)
  local events
  if n == 2 then events = { [select(1, ...)] = select(2, ...) }
  elseif n == 1 then events = select(1, ...)
  else error("invalid args: expected only one or two arguments", 2) end
  for event, func in pairs(events) do
    check(type(event) == "string", "expecting event to be a string")
    check(type(func) == "function", "expecting func to be a function")
    local list = self.handlers[event]
    if not list then error("invalid event '" .. tostring(event) .. "' to handle", 2) end
    list[#list + 1] = func
  end
end

function Client:off(event, func)
  local list = self.handlers[event]
  if not list then error("invalid event '" .. tostring(event) .. "' to handle", 2) end
  if self._handling[event] then
    local gone = self._to_remove[event] or {}
    gone[#gone + 1] = func
    self._to_remove[event] = gone
    return true
  end
  for i, f in ipairs(list) do
    if f == func then table.remove(list, i) break end
  end
  return true
end

-- A token for a request whose completion someone wants (a callback or a handler).
function Client:_expect(fn)
  local t = self._token + 1
  self._token = t
  self._pending[t] = fn
  return t
end

local function check_qos(q) return q == nil or q == 0 or q == 1 or q == 2 end

function Client:subscribe(args)
  check(type(args) == "table", "expecting args to be a table")
  local subs = args.subscriptions
  if not subs then
    check(type(args.topic) == "string", "expecting args.topic to be a string")
    check(check_qos(args.qos), "expecting valid args.qos value")
    subs = { { topic = args.topic, qos = args.qos, no_local = args.no_local,
               retain_as_published = args.retain_as_published, retain_handling = args.retain_handling } }
  end
  local callback = args.callback
  local token = 0
  if callback or #self.handlers.subscribe > 0 then
    token = self:_expect(function(err, reasons)
      local suback = { type = "SUBACK", rc = reasons or {}, error = err }
      handle(self, "subscribe", suback, self)
      if callback then callback(suback, self) end
    end)
  end
  self._core:subscribe(subs, args.properties, args.user_properties, token)
  return true
end

function Client:unsubscribe(args)
  check(type(args) == "table", "expecting args to be a table")
  local topics = args.subscriptions or { args.topic }
  check(type(topics[1]) == "string", "expecting args.topic to be a string")
  local callback = args.callback
  local token = 0
  if callback or #self.handlers.unsubscribe > 0 then
    token = self:_expect(function(err, reasons)
      local unsuback = { type = "UNSUBACK", rc = reasons or {}, error = err }
      handle(self, "unsubscribe", unsuback, self)
      if callback then callback(unsuback, self) end
    end)
  end
  self._core:unsubscribe(topics, args.properties, args.user_properties, token)
  return true
end

function Client:publish(args)
  check(type(args) == "table", "expecting args to be a table")
  check(type(args.topic) == "string", "expecting args.topic to be a string")
  check(args.payload == nil or type(args.payload) == "string", "expecting args.payload to be a string")
  check(check_qos(args.qos), "expecting valid args.qos value")
  check(args.retain == nil or type(args.retain) == "boolean", "expecting args.retain to be a boolean")
  local callback = args.callback
  local token = 0
  if callback or (#self.handlers.acknowledge > 0 and (args.qos or 0) > 0) then
    token = self:_expect(function(err)
      local ack = { type = (args.qos or 0) == 2 and "PUBCOMP" or "PUBACK", error = err }
      if (args.qos or 0) > 0 then handle(self, "acknowledge", ack, self) end
      if callback then callback(ack, self) end
    end)
  end
  self._core:publish(args.topic, args.payload, args.qos, args.retain, args.dup,
                     args.properties, args.user_properties, token)
  return true
end

function Client:acknowledge(msg, rc, properties, user_properties)
  check(type(msg) == "table" and msg.type == "PUBLISH", "expecting msg to be a publish packet")
  check(rc == nil or type(rc) == "number", "expecting rc to be a number")
  if not self._core:state() then return false, "network connection is not opened" end
  if msg.packet_id then self._core:acknowledge(msg.qos, msg.packet_id, rc, properties, user_properties) end
  return true
end

function Client:disconnect(rc, properties, user_properties)
  check(rc == nil or type(rc) == "number", "expecting rc to be a number")
  self._core:disconnect(rc, properties, user_properties)
  local _, active = self._core:state()
  if not active then self:_finished() end
  return true
end

--- start_connecting(): connects in the background (again after a drop, as reconnect says).
function Client:start_connecting()
  self._core:start()
  return true
end

-- No connection now nor to come: out of its ioloop, run_sync returns.
function Client:_finished()
  if self.ioloop then self.ioloop:remove(self) end
  local waiters = self._finish_waiters
  self._finish_waiters = {}
  for _, th in ipairs(waiters) do corio.resume(th) end
end

function Client:set_ioloop(loop) self.ioloop = loop end

function Client:__tostring()
  return "corio.mqtt client{uri=\"" .. self.args.uri .. "\", id=\"" .. self.args.id .. "\"}"
end

--- mqtt.get_ioloop(): corio.ioloop's default, which hosts corio and luamqtt clients alike.
function mqtt.get_ioloop(...) return require("corio.ioloop").get(...) end

--- run_ioloop(client_or_function, ...): until no client is left.
function mqtt.run_ioloop(...)
  local loop = mqtt.get_ioloop()
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    loop:add(c)
    if type(c) ~= "function" and c.start_connecting then c:start_connecting() end
  end
  return loop:run_until_clients()
end

--- run_sync(client): connects and returns once the client is done (disconnected, or
-- closed with no reconnect).
function mqtt.run_sync(c)
  c:start_connecting()
  local th = corio.current()
  if th then
    while select(2, c._core:state()) do
      c._finish_waiters[#c._finish_waiters + 1] = th
      corio.suspend()
    end
  else
    while select(2, c._core:state()) do corio.step() end
  end
  return true
end

return mqtt
