-- corio.tls: TLS on corio's sockets (the engine's, on OpenSSL), with LuaSec's parameter
-- names (mode, protocol, verify, cafile, capath, certificate, key, password, options,
-- ciphers, servername, alpn). A client verifies by default, against the system store
-- (OpenSSL's default paths; SSL_CERT_FILE / SSL_CERT_DIR) and the host name.
--   local tls = require "corio.tls"
--   local sock = assert(tls.connect("example.org", 443))            -- verified
--   local sock = assert(tls.connect("127.0.0.1", 8883, { cafile = "ca.pem" }))
--   corio.serve(host, port, handler, { tls = { certificate = "c.pem", key = "k.pem" } })
-- On any corio tcp client: sock:starttls([params | context [, servername]]),
-- sock:info(), sock:getpeercertificate() (README, "TLS").
local core = require "corio.core"
local corio = require "corio"

local tls = {}

-- Contexts per params table: loading a CA store costs milliseconds, a handshake should not.
local contexts = setmetatable({}, { __mode = "k" })

-- context([params]) -> a context for starttls | nil, message
function tls.context(params)
  if params == nil then return tls.context(tls.defaults) end
  local ctx = contexts[params]
  if ctx then return ctx end
  local err
  ctx, err = core.tlscontext(params)
  if not ctx then return nil, err end
  contexts[params] = ctx
  return ctx
end
tls.defaults = {}  -- a verified client

-- Connects sock to host:port and makes it TLS with params: 1 | nil, message (sock closed).
local function secure(sock, host, port, params)
  local ctx, err = tls.context(params)
  local ok
  if ctx then ok, err = sock:connect(host, port) end
  if not ok then
    sock:close()
    return nil, err
  end
  ok, err = sock:starttls(ctx, params and params.servername or host)
  if not ok then return nil, err end
  return 1
end

-- connect(host, port [, params]) -> a tcp client past its handshake | nil, message.
-- params.timeout (seconds) bounds the connect and the handshake, as settimeout would.
function tls.connect(host, port, params)
  local sock = corio.tcp()
  if params and params.timeout then sock:settimeout(params.timeout) end
  local ok, err = secure(sock, host, port, params)
  if not ok then return nil, err end
  return sock
end

-- create([params]) -> a socket factory for LuaSocket's create hooks (socket.http's
-- request{create = ...}): each socket does the TLS handshake in connect(host, port),
-- verifying host unless params say otherwise.
--   http.request{ url = "https://localhost:8443/", create = tls.create{ cafile = "ca.pem" } }
function tls.create(params)
  return function()
    local sock = corio.tcp()
    -- the socket's methods, each forwarding closure made once
    local proxy = setmetatable({}, { __index = function(self, k)
      local v = sock[k]
      if type(v) ~= "function" then return v end
      local f = function(_, ...) return v(sock, ...) end
      rawset(self, k, f)
      return f
    end })
    function proxy.connect(_, host, port) return secure(sock, host, port, params) end
    return proxy
  end
end

-- The server side of params (mode = "server" unless given), for corio.serve.
function tls.server_context(params)
  if params.mode == nil then
    local copy = {}
    for k, v in pairs(params) do copy[k] = v end
    copy.mode = "server"
    params = copy
  end
  return core.tlscontext(params)
end

-- ---- LuaSec connections (ssl.wrap) driven by corio's loop ----
-- corio.wrap(luasec_conn) gives this wrapper: LuaSec does the TLS, corio the waiting. Each
-- call runs LuaSec without blocking and, on "wantread"/"wantwrite", waits for the
-- descriptor in corio's loop (a corio thread yields; the main thread runs the loop), so
-- code written for Copas + LuaSec keeps working. settimeout bounds each call as a whole.
local event = require "corio.event"

local LuaSec = {}
-- LuaSec's own methods (getpeercertificate, info, getalpn ...) on the connection: made once
-- per wrapper and name, so a call allocates nothing.
LuaSec.__index = function(self, k)
  local m = LuaSec[k]
  if m then return m end
  local conn = rawget(self, "conn")
  local v = conn[k]
  if type(v) ~= "function" then return v end
  local f = function(w, ...)
    if w == self then return v(conn, ...) end
    return v(w, ...)
  end
  rawset(self, k, f)
  return f
end
LuaSec.__tostring = function(self) return "corio " .. tostring(rawget(self, "conn")) end

-- An event set per direction: a reader and a writer may wait at the same time.
function tls.wrap_luasec(conn)
  conn:settimeout(0)
  return setmetatable({ conn = conn, wantread = event.newset(), wantwrite = event.newset() }, LuaSec)
end

function LuaSec:settimeout(t)
  self.timeout = (type(t) == "number" and t >= 0) and t or nil
  return 1
end

function LuaSec:gettimeout() return self.timeout or -1 end

-- Waits until the descriptor is ready for `want` ("wantread" / "wantwrite" / "timeout",
-- LuaSec's words) or the call's deadline: true, or nil and "timeout" (or "closed").
-- A close() meanwhile ends the wait (the next LuaSec call then says "closed").
local function ready(self, want, deadline)
  local left = deadline and deadline - corio.now()
  if left and left <= 0 then return nil, "timeout" end
  local write = want == "wantwrite"
  local ev = write and self.wantwrite or self.wantread
  local id, err = ev:add(write and "w" or "r", self.conn:getfd(), nil, left)
  if not id then return nil, err end
  local it, s, c = ev(true)
  local _, reason = it(s, c)
  ev:del(id)
  if reason == "timeout" then return nil, "timeout" end
  return true
end

local function deadline_of(self)
  return self.timeout and corio.now() + self.timeout
end

local function waits(err) return err == "wantread" or err == "wantwrite" or err == "timeout" end

function LuaSec:dohandshake()
  local deadline = deadline_of(self)
  while true do
    local ok, err = self.conn:dohandshake()
    if ok then return true end
    if not waits(err) then return nil, err end
    local ok, why = ready(self, err, deadline)
    if not ok then return nil, why end
  end
end

function LuaSec:receive(pattern, prefix)
  local deadline = deadline_of(self)
  local part = prefix
  while true do
    local data, err, partial = self.conn:receive(pattern, part)
    if data then return data end
    part = partial
    if not waits(err) then return nil, err, partial end
    local ok, why = ready(self, err, deadline)
    if not ok then return nil, why, partial end
  end
end

function LuaSec:send(data, i, j)
  local deadline = deadline_of(self)
  local from = i or 1
  while true do
    local last, err, sent = self.conn:send(data, from, j)
    if last then return last end
    if not waits(err) then return nil, err, sent end
    if sent and sent >= from then from = sent + 1 end
    local ok, why = ready(self, err, deadline)
    if not ok then return nil, why, sent end
  end
end

function LuaSec:close()
  local r = self.conn:close()
  self.wantread:clear()  -- a waiter's descriptor is gone: no readiness would come
  self.wantwrite:clear()
  return r
end

return tls
