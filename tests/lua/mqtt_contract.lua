-- A small MQTT 3.1.1 client that keeps luamqtt 3.x's contract with its ioloop (not a spec):
-- the specs host it where luamqtt itself is not installed (CI). What the ioloop sees is
-- luamqtt's: require "mqtt.ioloop" (so package.loaded["mqtt.ioloop"] decides which loop),
-- auto-add to a running default loop on creation, set_ioloop on add and remove, sockets
-- given loop.args.timeout, a receive coroutine that yields on "timeout"/"wantread" and sets
-- loop.timeouted, _ioloop_iteration (connect, reconnect after args.reconnect seconds with
-- loop:can_sleep(), leave the loop), send_time and PINGREQ by os.time, connection.sock a
-- LuaSocket (or LuaSec) object. QoS 0 only; enough to subscribe, publish and keep alive.
local socket = require "socket"

local M = {}
local Client = {}
Client.__index = Client

local function utf8str(s) return string.char(math.floor(#s / 256), #s % 256) .. s end

local function packet(first, body)
  local len, bytes = #body, {}
  repeat
    local b = len % 128
    len = math.floor(len / 128)
    bytes[#bytes + 1] = string.char(len > 0 and b + 128 or b)
  until len == 0
  return string.char(first) .. table.concat(bytes) .. body
end

-- luamqtt's connectors: mqtt.luasocket and mqtt.luasocket_ssl, in short.
local plain = {}
function plain.connect(conn)
  local sock, err = socket.connect(conn.host, conn.port)
  if not sock then return false, "socket.connect failed: " .. err end
  conn.sock = sock
  return true
end
function plain.shutdown(conn) conn.sock:shutdown() end
function plain.send(conn, data, i, j) return conn.sock:send(data, i, j) end
function plain.receive(conn, size) return conn.sock:receive(size) end
function plain.settimeout(conn, t) conn.sock:settimeout(t, "t") end

local secure = setmetatable({}, { __index = plain })
function secure.connect(conn)
  local ok, err = plain.connect(conn)
  if not ok then return false, err end
  local wrapped
  wrapped, err = require("ssl").wrap(conn.sock, conn.secure_params)
  if not wrapped then conn.sock:close() return false, "ssl.wrap() failed: " .. err end
  if not wrapped:dohandshake() then conn.sock:close() return false, "ssl dohandshake failed" end
  conn.sock = wrapped
  return true
end
function secure.shutdown(conn) conn.sock:close() end
M.connectors = { plain = plain, secure = secure }

-- client{ uri = "host:port", id =, keep_alive = 60, reconnect = nil|true|seconds,
--         secure = LuaSec params, connector = }
function M.client(args)
  local self = setmetatable({}, Client)
  self.args = {
    uri = args.uri, id = args.id or ("corio-" .. tostring(math.random(1e9))),
    keep_alive = args.keep_alive or 60, reconnect = args.reconnect, secure = args.secure,
    connector = args.connector or (args.secure and secure or plain),
  }
  self.handlers = { connect = {}, message = {}, close = {}, error = {}, subscribe = {} }
  self.first_connect = true
  self.send_time = 0
  self.pings, self.pongs = 0, 0
  local loop = require("mqtt.ioloop").get(false)
  if loop and loop.running then
    loop:add(self)
    self:start_connecting()
  end
  return self
end

function Client:on(events)
  for name, fn in pairs(events) do table.insert(assert(self.handlers[name], name), fn) end
end

function Client:handle(name, ...)
  for _, fn in ipairs(self.handlers[name]) do fn(...) end
end

function Client:_send(data)
  local conn = self.connection
  if not conn then return false, "network connection is not opened" end
  local i, err = 1, nil
  while i < #data do
    i, err = self.args.connector.send(conn, data, i)
    if not i then return false, "connector.send failed: " .. err end
  end
  self.send_time = os.time()
  return true
end

function Client:_fail(err)
  self:handle("error", err, self)
  self:close_connection("error")
  return false, err
end

function Client:subscribe(topic)
  self._id = (self._id or 0) % 65535 + 1
  local ok, err = self:_send(packet(0x82, string.char(math.floor(self._id / 256), self._id % 256) .. utf8str(topic) .. "\0"))
  if not ok then return self:_fail(err) end
  return self._id
end

function Client:publish(topic, payload)
  local ok, err = self:_send(packet(0x30, utf8str(topic) .. payload))
  if not ok then return self:_fail(err) end
  return true
end

function Client:send_pingreq()
  if not self.connection then return false, "network connection is not opened" end
  local ok, err = self:_send("\192\0")
  if not ok then return self:_fail("failed to send PINGREQ: " .. err) end
  self.pings = self.pings + 1
  return true
end

function Client:disconnect()
  if not self.connection then return false, "network connection is not opened" end
  self:_send("\224\0")
  return self:close_connection("disconnect")
end

function Client:close_connection(reason)
  local conn = self.connection
  if not conn then return true end
  self.args.connector.shutdown(conn)
  self.connection = nil
  conn.close_reason = reason
  self:handle("close", conn, self)
  if not self.connection and self.ioloop and not self.args.reconnect then self.ioloop:remove(self) end
  return true
end

function Client:open_connection()
  if self.connection then return true end
  local host, port = self.args.uri:match("^(.+):(%d+)$")
  local conn = { host = host, port = tonumber(port), secure_params = self.args.secure }
  local ok, err = self.args.connector.connect(conn)
  if not ok then
    err = "failed to open network connection: " .. err
    self:handle("error", err, self)
    return false, err
  end
  self.connection = conn
  conn.recv_func = function(size) return self.args.connector.receive(conn, size) end
  self:_apply_network_timeout()
  return true
end

function Client:start_connecting()
  local ok, err = self:open_connection()
  if not ok then return false, err end
  local a = self.args
  local body = utf8str("MQTT") .. "\4\2" .. string.char(math.floor(a.keep_alive / 256), a.keep_alive % 256) .. utf8str(a.id)
  ok, err = self:_send(packet(0x10, body))
  if not ok then return self:_fail("failed to send CONNECT: " .. err) end
  return true
end

function Client:set_ioloop(loop)
  self.ioloop = loop
  self:_apply_network_timeout()
end

-- One packet: its first byte, remaining length byte by byte, then the body (as luamqtt).
function Client:_receive_packet()
  local recv = self.connection.recv_func
  local first, err = recv(1)
  if not first then return false, err end
  local len, mul = 0, 1
  repeat
    local b
    b, err = recv(1)
    if not b then return false, err end
    b = b:byte()
    len = len + (b % 128) * mul
    mul = mul * 128
  until b < 128
  local body = ""
  if len > 0 then
    body, err = recv(len)
    if not body then return false, err end
  end
  return { type = math.floor(first:byte() / 16), body = body }
end

function Client:_apply_network_timeout()
  local conn = self.connection
  if not conn then return end
  local loop = self.ioloop
  if loop then
    self.args.connector.settimeout(conn, loop.args.timeout)
    conn.coro = coroutine.create(function()
      while true do
        local p, err = self:_receive_packet()
        if not p then return false, err end
        coroutine.yield(p)
      end
    end)
    local sync = conn.sync_recv_func or conn.recv_func
    conn.sync_recv_func = sync
    conn.recv_func = function(size)
      while true do
        local data, err = sync(size)
        if data or (err ~= "timeout" and err ~= "wantread") then return data, err end
        loop.timeouted = true
        coroutine.yield(err)
      end
    end
  else
    self.args.connector.settimeout(conn, nil)
    if conn.sync_recv_func then conn.recv_func, conn.sync_recv_func = conn.sync_recv_func, nil end
  end
end

function Client:_handle_packet(p)
  local conn = self.connection
  if not conn.connack then
    if p.type ~= 2 or p.body:byte(2) ~= 0 then return self:_fail("CONNECT refused") end
    conn.connack = p
    self:handle("connect", p, self)
  elseif p.type == 3 then
    local tlen = p.body:byte(1) * 256 + p.body:byte(2)
    self:handle("message", { topic = p.body:sub(3, 2 + tlen), payload = p.body:sub(3 + tlen) }, self)
  elseif p.type == 9 then
    self:handle("subscribe", p, self)
  elseif p.type == 13 then
    self.pongs = self.pongs + 1
  end
  return true
end

function Client:_ioloop_iteration()
  local loop, args = self.ioloop, self.args
  local conn = self.connection
  if conn then
    local ok, p, err = coroutine.resume(conn.coro)
    if not ok then return self:_fail("failed to resume receive packet coroutine: " .. tostring(p)) end
    if p == false then
      if err == "closed" then
        self:close_connection("connection closed by broker")
        return false, err
      end
      return self:_fail("failed to receive next packet: " .. tostring(err))
    end
    if p ~= "timeout" and p ~= "wantread" then
      local handled, herr = self:_handle_packet(p)
      if not handled then return false, herr end
    end
    if self.connection and os.time() - self.send_time >= args.keep_alive then self:send_pingreq() end
    return true
  elseif self.first_connect then
    self.first_connect = false
    self:start_connecting()
  elseif args.reconnect then
    if args.reconnect == true then
      self:start_connecting()
    elseif self.reconnect_timer_start then
      if os.time() - self.reconnect_timer_start >= args.reconnect then
        self.reconnect_timer_start = nil
        self:start_connecting()
      elseif loop then
        loop:can_sleep()
      end
    else
      self.reconnect_timer_start = os.time()
    end
  elseif loop then
    loop:remove(self)
  end
end

return M
