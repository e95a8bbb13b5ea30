-- corio.resty.timer: Kong's lua-resty-timer (recurring, cancellable, node-wide timers) on
-- corio's RecurringTimer (core.recurring). Only the require line changes:
--   local resty_timer = require "corio.resty.timer"
-- What differs from the original, where it had to (README, "resty.timer"):
-- * expire runs in a corio thread of its own (it may sleep and use sockets); a run never
--   overlaps the next: a check that comes while a run still lasts is skipped, and runs stay
--   on the grid t0 + jitter + k * interval (no drift, no catch-up burst).
-- * shm_name names a POSIX shared-memory region of this machine ("/corio.<uid>.<shm_name>"),
--   made on first use; a key's lease lasts interval - 1 ms, so across processes it runs once
--   per interval.
-- * CANCEL_SYSTEM: at corio.shutdown(), when a worker is stopped, and at the end of the
--   main script (the Lua state closing), once per live timer; new() then returns nil,
--   "process exiting".
local core = require "corio.core"

local pack = function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack
local newproxy = newproxy  -- LuaJIT: a userdata's __gc; Lua 5.4 finalizes tables

local KEY_PREFIX = "[lua-resty-timer]"
local CANCEL_GC = "GC"
local CANCEL_SYSTEM = "SYSTEM"
local CANCEL_USER = "USER"

-- An object whose __gc calls fn(proxy). Lua 5.4 finalizes the objects of a closing state
-- newest first, so the proxy made last is finalized before those made earlier.
local function gc_proxy(fn)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

-- An error in a callback goes to corio.onerror with its traceback, as a thread's does.
local function call(fn, ...)
  return xpcall(fn, debug.traceback, ...)
end

-- The timers of this runtime. A forked worker has a runtime of its own (another epoch): the
-- parent's timers never run there, nor their callbacks.
local state

local function results(ok, ...)
  if ok then return ... end
  core.report((...))
  return nil, (...)
end

local function cancel(self)
  if self.cancel_flag then
    return nil, "already cancelled"
  end
  local st = self.state
  if self.id then
    st.timers[self.id], st.anchored[self.id] = nil, nil
    self.id = nil
  end
  self.cancel_flag = true
  self.premature_reason = self.premature_reason or CANCEL_USER
  self.handle:cancel()
  local args = self.args
  self.args = nil -- lend GC a hand
  if self.cb_cancel then
    return results(call(self.cb_cancel, self.premature_reason, unpack(args, 1, args.n)))
  end
  return true
end

-- Cancels every live timer of st with CANCEL_SYSTEM, oldest first.
local function shutdown(st)
  st.down = true
  local live = {}
  for _, registry in ipairs({ st.timers, st.anchored }) do
    for id, t in pairs(registry) do live[#live + 1] = { id, t } end
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  for _, e in ipairs(live) do
    local t = e[2]
    if not t.cancel_flag then
      t.premature_reason = CANCEL_SYSTEM
      cancel(t)
    end
  end
end

local function current_state()
  local epoch = core.epoch()
  if state and state.epoch == epoch then return state end
  local st = {
    epoch = epoch,
    next_id = 0,
    timers = setmetatable({}, { __mode = "v" }),  -- not detached: collectable
    anchored = {},                                -- detached: kept until done
    sentinel = nil,
  }
  core.atshutdown(function() shutdown(st) end)
  state = st
  return st
end

-- The end of the main script: the state closes and finalizes every object, newest first. A
-- sentinel made after every timer (its handle and GC proxy) is finalized before them, and
-- gives the live timers CANCEL_SYSTEM rather than CANCEL_GC (those are then already
-- cancelled) while their handles still work. So each new timer makes a new one.
local function refresh_sentinel(st)
  local sentinel
  sentinel = gc_proxy(function()
    if st.sentinel == sentinel and st.epoch == core.epoch() then shutdown(st) end
  end)
  st.sentinel = sentinel
end

local function new(opts, ...)
  local self = {
    interval = tonumber(opts.interval),
    recurring = opts.recurring,
    immediate = opts.immediate,
    detached = opts.detached,
    args = pack(...),
    jitter = opts.jitter,
    cb_expire = opts.expire,
    cb_cancel = opts.cancel,
    key_name = opts.key_name,
    sub_interval = opts.sub_interval,
    cancel = cancel,
  }
  -- Kong's checks, in Kong's order and words (a bare message, as assert gives)
  local function check(ok, message) if not ok then error(message, 0) end end
  check(self.interval, "expected 'interval' to be a number")
  check(self.interval >= 0, "expected 'interval' to be greater than or equal to 0")
  check(type(self.cb_expire) == "function", "expected 'expire' to be a function")
  if not self.recurring then
    check(not self.immediate, "the 'immediate' option requires 'recurring'")
  end
  if self.cb_cancel then
    check(type(self.cb_cancel) == "function", "expected 'cancel' to be a function")
  end
  if self.sub_interval then
    self.sub_interval = tonumber(self.sub_interval)
    check(self.sub_interval, "expected 'sub_interval' to be a number")
    check(self.key_name, "'key_name' is required when specifying 'sub_interval'")
    check(self.immediate, "'immediate' is required when specifying 'sub_interval'")
    check(self.sub_interval >= 0, "expected 'sub_interval' to be greater than or equal to 0")
    check(self.sub_interval <= self.interval, "expected 'sub_interval' to be less than or equal to 'interval'")
  end
  if self.jitter ~= nil then
    check(type(self.jitter) == "number", "expected 'jitter' to be a number")
    check(self.jitter >= 0, "expected 'jitter' to be greater than or equal to 0")
  end
  local leases
  if self.key_name then
    check(type(self.key_name) == "string", "expected 'key_name' to be a string")
    check(opts.shm_name, "'shm_name' is required when specifying 'key_name'")
    local ok, err = pcall(core.leases, opts.shm_name)
    check(ok, "shm by name '" .. tostring(opts.shm_name) .. "' not usable: " .. tostring(err))
    leases = err
    self.key_name = KEY_PREFIX .. self.key_name
  end

  local st = current_state()
  if st.down then return nil, "process exiting" end  -- as ngx.timer.at says then
  self.state = st
  local function run()
    if not self.recurring and self.id then  -- done: collectable, as Kong's
      st.timers[self.id], st.anchored[self.id] = nil, nil
      self.id = nil
    end
    return self.cb_expire(unpack(self.args, 1, self.args.n))
  end
  local node = leases and self.recurring
  local ok, handle = pcall(core.recurring, {
    interval = self.interval,
    recurring = self.recurring and true or false,
    jitter = self.jitter,
    immediate = self.immediate and true or false,
    -- Kong's sub_interval 0 checks on every loop turn; a millisecond is as prompt and idles
    check = node and self.sub_interval and math.max(self.sub_interval, 0.001) or nil,
    leases = node and leases or nil,
    key = node and self.key_name or nil,
  }, run)
  if not ok then return nil, handle end
  self.handle = handle
  st.next_id = st.next_id + 1
  self.id = st.next_id
  if self.detached then
    st.anchored[self.id] = self
  else
    st.timers[self.id] = self
    if self.cb_cancel then
      self.gc_proxy = gc_proxy(function()
        if self.cancel_flag or st.epoch ~= core.epoch() then return end
        self.premature_reason = CANCEL_GC
        cancel(self)
      end)
    end
  end
  refresh_sentinel(st)
  return self
end

return setmetatable({
  new = new,
  CANCEL_GC = CANCEL_GC,
  CANCEL_SYSTEM = CANCEL_SYSTEM,
  CANCEL_USER = CANCEL_USER,
}, {
  __call = function(_, ...) return new(...) end,
})
