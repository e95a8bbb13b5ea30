-- corio.ioloop: luamqtt's ioloop (mqtt.ioloop) on corio's loop. luamqtt programs run
-- unchanged once it stands in for luamqtt's own module, before require "mqtt":
--   package.loaded["mqtt.ioloop"] = require "corio.ioloop"
-- It hosts luamqtt 3.x clients (_ioloop_iteration, set_ioloop), 4.x clients (step,
-- check_keep_alive), corio.mqtt clients (their engine does the work: added, they start;
-- done, they leave) and loop functions. Where luamqtt polls every client and sleeps, this
-- ioloop waits in corio's loop for what can happen next: a client's socket readable, the
-- time a loop function asked for, a keep-alive or a reconnect due. corio threads, sockets
-- and timers run meanwhile; an idle ioloop costs no CPU (README, "Coming from luamqtt").
local corio = require "corio"
local event = require "corio.event"

local has_socket, socket = pcall(require, "socket")
local wallclock = has_socket and socket.gettime or os.time  -- luamqtt's clock is os.time
local os_time = os.time
local now = corio.now
local huge, min = math.huge, math.min
local type, next = type, next

local ioloop = {}
local Ioloop = {}
Ioloop.__index = Ioloop

-- Contexts of the ioloop's own events in its event set.
local TIMER, WAKE = {}, {}
-- The longest single wait: the next iteration computes the wait again.
local LONGEST = 86400
-- A keep-alive is due once os.time() reaches send_time + keep_alive: wake just after. time()
-- reads a coarse clock, a tick behind the wall clock at most; when it has not got there
-- yet, look again RETRY later.
local SLACK, RETRY = 0.005, 0.005

local function kind(entry)
  local t = type(entry)
  if t == "function" then return "function" end
  if t == "table" or t == "userdata" then
    if entry._corio_mqtt then return "corio" end      -- corio.mqtt: its engine does the work
    if entry._ioloop_iteration then return "v3" end  -- luamqtt 3.x
    if entry.step then return "v4" end                -- luamqtt 4.x
  end
  return nil
end

local function seconds(opts, name, default)
  local v = opts[name]
  if v == nil then
    v = default
  elseif type(v) ~= "number" or v ~= v or v < 0 then
    error(("corio.ioloop: option %s must be a number of seconds >= 0, got %s"):format(name, tostring(v)), 4)
  end
  opts[name] = v
end

-- Options as luamqtt's: its defaults are written into opts, which is also .args (3.x
-- clients read loop.args.timeout and apply it to their sockets).
function Ioloop:__init(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #1 to 'create' (table expected, got " .. type(opts) .. ")", 3)
  end
  seconds(opts, "sleep_min", 0)
  seconds(opts, "sleep_step", 0.002)
  seconds(opts, "sleep_max", 0.030)
  seconds(opts, "timeout", 0.005)
  seconds(opts, "sleep", 0)  -- luamqtt 3.x's fixed sleep: accepted; nothing sleeps blindly here
  if opts.sleep_min > opts.sleep_max then
    error("corio.ioloop: option sleep_min must not exceed sleep_max", 3)
  end
  if opts.sleep_function ~= nil and type(opts.sleep_function) ~= "function" then
    error("corio.ioloop: option sleep_function must be a function", 3)
  end
  self.opts, self.args = opts, opts
  self.clients = {}   -- as luamqtt's: an array in add order, and entry -> true
  self.running = false
  self.timeouted = false
  self._due = {}      -- entry -> corio.now() when it is next called (functions, polled clients)
  self._poll = {}     -- polled entry -> its current interval, sleep_min .. sleep_max
  self._watches = {}  -- client -> { sock = its socket, id = event id or false }
  self._ready = {}    -- client -> true: its socket became readable
  self._keepalive = {}  -- 4.x client -> the loop function that keeps it alive
  self._kind = {}     -- entry -> "function", "v3" or "v4"
  self._next_at = -huge  -- before this corio.now() time only readable clients need a call
  self._list = {}     -- the entries of the current pass
  self._ev = event.newset()
  self._wake = self._ev:add("V", nil, WAKE)
end

-- A change made from elsewhere (a corio thread, a callback) ends the current wait.
function Ioloop:_poke()
  if self._waiting then self._ev:trigger(self._wake) end
end

--- add(client_or_function) -> true | false, message
function Ioloop:add(client)
  local k = kind(client)
  if not k then
    error(("bad argument #1 to 'add' (MQTT client or loop function expected, got %s)"):format(type(client)), 2)
  end
  local clients = self.clients
  if clients[client] then
    if k == "function" then return false, "MQTT loop function was already added to this ioloop" end
    return false, "MQTT client was already added to this ioloop"
  end
  clients[#clients + 1] = client
  clients[client] = true
  self._kind[client] = k
  self._added = true
  self._due[client] = -huge
  self._poll[client] = self.opts.sleep_min
  if (k == "v3" or k == "corio") and client.set_ioloop then
    client:set_ioloop(self)
    if k == "corio" then client:start_connecting() end
  elseif k == "v4" and client.check_keep_alive then
    local function keep_alive() return client:check_keep_alive() end
    self._keepalive[client] = keep_alive
    self:add(keep_alive)
  end
  self:_poke()
  return true
end

--- remove(client_or_function) -> true | false, message
function Ioloop:remove(client)
  local clients = self.clients
  if client == nil or not clients[client] then
    if type(client) == "function" then return false, "MQTT loop function not found" end
    return false, "MQTT client not found"
  end
  clients[client] = nil
  for i = 1, #clients do
    if clients[i] == client then
      table.remove(clients, i)
      break
    end
  end
  local k = self._kind[client]
  self._due[client], self._poll[client], self._ready[client], self._kind[client] = nil, nil, nil, nil
  self:_unwatch(client)
  local keep_alive = self._keepalive[client]
  if keep_alive then
    self._keepalive[client] = nil
    self:remove(keep_alive)
  end
  if (k == "v3" or k == "corio") and client.set_ioloop then client:set_ioloop(nil) end
  self:_poke()
  return true
end

-- luamqtt 3.x: a client waiting for its reconnect time asks the loop to sleep a little.
-- The wait here already knows that time.
function Ioloop:can_sleep()
  self.timeouted = true
end

function Ioloop:_unwatch(client)
  local w = self._watches[client]
  if w then
    if w.id then self._ev:del(w.id) end
    self._watches[client] = nil
  end
  self._ready[client] = nil
end

-- The socket of a connected client whose descriptor is watched, else nil. Follows the
-- client's connection as it comes and goes: a closed connection's socket stays readable
-- (EOF) until collected and must not be waited on.
function Ioloop:_watched(client)
  local conn = client.connection
  local sock = type(conn) == "table" and conn.sock or nil
  local w = self._watches[client]
  if w and w.sock == sock then return w.id and sock or nil end
  self:_unwatch(client)
  if not sock then return nil end
  local fd = type(sock.getfd) == "function" and sock:getfd()
  local id = type(fd) == "number" and fd >= 0 and self._ev:add("R", fd, client) or false
  self._watches[client] = { sock = sock, id = id }
  return id and sock or nil
end

local function dirty(sock)
  return type(sock.dirty) == "function" and sock:dirty()
end

-- What a loop function's result asks for, in seconds. 4.x: nil is sleep_max, -1 is idle
-- (the polling schedule).
function Ioloop:_wish(entry, t)
  if t == -1 then return self:_polled(entry, true) end
  self._poll[entry] = self.opts.sleep_min
  if type(t) ~= "number" or t ~= t then return self.opts.sleep_max end
  return t > 0 and t or 0
end

-- The polling schedule (a client with no descriptor to wait on, an idle 4.x step):
-- sleep_min after a call that did something, one sleep_step more after each idle one, at
-- most sleep_max.
function Ioloop:_polled(entry, idle)
  local opts = self.opts
  local p = idle and min(self._poll[entry] + opts.sleep_step, opts.sleep_max) or opts.sleep_min
  self._poll[entry] = p
  return p
end

-- A connected 3.x client whose socket is watched: called when the socket is readable or its
-- buffer holds data the previous call left; sent PINGREQ when luamqtt's own test
-- (os.time() - send_time >= keep_alive) says so. Returns when it is next due. t, wall:
-- corio.now() and the wall clock at the start of the pass; the keep-alive deadline is
-- worked out once per send_time.
function Ioloop:_serve_watched(client, w, t, wall)
  if self._ready[client] or w.buffered then
    self._ready[client], w.buffered = nil, nil
    client:_ioloop_iteration()
    local sock = self:_watched(client)
    if sock ~= w.sock then return -huge end  -- closed or replaced: look again now
    if dirty(sock) then  -- more read than handled: no readiness will tell
      w.buffered = true
      return -huge
    end
  end
  local ka = client.args and client.args.keep_alive
  if type(ka) ~= "number" or not (ka > 0) then return huge end
  local sent = client.send_time or 0
  if w.sent ~= sent then w.sent, w.keep_alive_at = sent, t + (sent + ka - wall) + SLACK end
  if t >= w.keep_alive_at then
    if os_time() - sent < ka then
      w.keep_alive_at = t + RETRY
    else
      if client.send_pingreq then client:send_pingreq() else client:_ioloop_iteration() end
      if self:_watched(client) ~= w.sock then return -huge end
      -- the next test counts from this send; from now if the ping did not count as one
      local after = client.send_time or 0
      w.sent, w.keep_alive_at = after, t + (after ~= sent and after + ka - wall or ka) + SLACK
    end
  end
  return w.keep_alive_at
end

-- A 3.x client without a watched socket: not connected (connect, reconnect when its
-- reconnect time comes, or leave the ioloop), or a connector without descriptors (polled).
function Ioloop:_serve_unwatched(client, t)
  if self._due[client] > t then return self._due[client] end
  self.timeouted = false
  client:_ioloop_iteration()
  if not self.clients[client] then return huge end
  if self:_watched(client) then
    self._poll[client] = self.opts.sleep_min
    return -huge
  end
  local wait
  local start, reconnect = client.reconnect_timer_start, client.args and client.args.reconnect
  if not client.connection and start and type(reconnect) == "number" then
    wait = start + reconnect - wallclock() + SLACK
    if wait ~= wait then wait = self.opts.sleep_max  -- reconnect = NaN: never due
    elseif wait <= 0 then wait = RETRY end          -- os.time() behind the wall clock
    self._poll[client] = self.opts.sleep_min
  else
    wait = self:_polled(client, not client.connection or self.timeouted)
  end
  self._due[client] = now() + wait
  return self._due[client]
end

-- A 4.x client: step() -> 0 (handled a packet: again now), -1 (idle), seconds (reconnect
-- delay) or nil, error. Connected through a socket with a descriptor, an idle client is
-- called again when it becomes readable; otherwise on the polling schedule.
function Ioloop:_serve_step(client, t)
  local sock = self:_watched(client)
  local w = sock and self._watches[client]
  if self._due[client] > t and not (w and (self._ready[client] or w.buffered)) then return self._due[client] end
  self._ready[client] = nil
  if w then w.buffered = nil end
  local r = client:step()
  if not self.clients[client] then return huge end
  local wait
  if r == nil or r == false then
    if not (client.opts and client.opts.reconnect) then
      self:remove(client)
      return huge
    end
    wait = self:_polled(client, false)
  elseif r == -1 and w and self:_watched(client) == sock then
    w.buffered = dirty(sock) or nil
    wait = w.buffered and 0 or huge  -- readiness will tell
  else
    wait = min(self:_wish(client, r), self.opts.sleep_max)
  end
  self._due[client] = now() + wait
  return self._due[client]
end

-- Serves one entry if it is due; returns when it is next due (corio.now() time).
function Ioloop:_serve(entry, t, wall)
  local k = self._kind[entry]
  if k == "function" then
    if self._due[entry] > t then return self._due[entry] end
    local r = entry()
    if not self.clients[entry] then return huge end
    self._due[entry] = now() + self:_wish(entry, r)
    return self._due[entry]
  elseif k == "v3" then
    if self:_watched(entry) then return self:_serve_watched(entry, self._watches[entry], t, wall) end
    return self:_serve_unwatched(entry, t)
  elseif k == "corio" then
    return huge  -- never due: it leaves the ioloop (remove) once it is done
  end
  return self:_serve_step(entry, t)
end

-- Waits up to `t` seconds for a watched socket to become readable (or a poke); then
-- notes every socket found readable.
function Ioloop:_wait(t)
  local ev, ready = self._ev, self._ready
  if t > 0 then
    local sleep = self.opts.sleep_function
    if sleep then
      sleep(t)  -- the user's own sleep replaces the wait: polling, as luamqtt's loop does
    else
      local tid = t < huge and ev:add("t", min(t, LONGEST), TIMER)
      self._waiting = true
      local it, s, c = ev(true)
      local ok, _, _, _, who = pcall(it, s, c)
      self._waiting = false
      if tid and who ~= TIMER then ev:del(tid) end
      if not ok then error(_, 0) end
      if who ~= nil and who ~= TIMER and who ~= WAKE then ready[who] = true end
    end
  end
  for _, _, _, who in ev(false) do
    if who ~= TIMER and who ~= WAKE then ready[who] = true end
  end
end

-- One pass: serve what is due, then wait (at most `bound` seconds) for what comes next.
function Ioloop:_pass(bound)
  self.timeouted = false
  local clients, list = self.clients, self._list  -- list: reused, so a wake allocates no table
  local t, wall, next_at = now(), wallclock(), huge
  local n = 0
  if self._added or t >= self._next_at then
    -- something may be due: every entry, in order
    self._added = false
    for i = 1, #clients do list[i] = clients[i] end
    n = #clients
  else
    -- nothing is due before _next_at: only the clients whose sockets became readable
    -- (so a wake costs what it brings, not the number of entries)
    next_at = self._next_at
    for c in pairs(self._ready) do
      n = n + 1
      list[n] = c
    end
  end
  for i = 1, n do
    local c = list[i]
    list[i] = nil
    if clients[c] then next_at = min(next_at, self:_serve(c, t, wall)) end  -- removed meanwhile: skipped
  end
  if self._added then next_at = -huge end  -- added meanwhile: due now
  self._next_at = next_at
  if next(clients) then self:_wait(min(bound, next_at - now())) end  -- nothing left: no wait
end

function Ioloop:_iterate(bound)
  if self._busy then
    error("corio.ioloop: this ioloop is already iterating (called from its own client or loop function, or from two threads)", 3)
  end
  self._busy = true
  local ok, err = pcall(self._pass, self, bound)
  self._busy = false
  if not ok then
    for k in pairs(self._list) do self._list[k] = nil end  -- an error left part of the pass
    error(err, 0)
  end
end

--- iteration(): calls what is due (clients with data, loop functions whose time came,
-- keep-alives), then waits at most sleep_max for the next thing.
function Ioloop:iteration()
  self:_iterate(self.opts.sleep_max)
end

--- run_until_clients(): iterates while any client or loop function is left; between
-- iterations it waits as long as nothing is due, however long that is.
function Ioloop:run_until_clients()
  self.running = true
  local ok, err = pcall(function()
    while next(self.clients) do self:_iterate(huge) end
  end)
  self.running = false
  if not ok then error(err, 0) end
end

--- create([opts]) -> a new ioloop
function ioloop.create(opts)
  local inst = setmetatable({}, Ioloop)
  inst:__init(opts)
  return inst
end

local default

--- get([autocreate = true [, opts]]) -> the default ioloop (nil when none and not autocreate)
function ioloop.get(autocreate, opts)
  if autocreate == nil then autocreate = true end
  if autocreate and not default then default = ioloop.create(opts) end
  return default
end

return ioloop
