-- corio.resty.timer's node-wide timers across real processes: several interpreters share a
-- key in one shm region; each interval exactly one of them runs it, and when the runner is
-- killed (SIGKILL) another takes over within interval + sub_interval.
local S = require "corio_support"
local core = require "corio.core"

-- A process: runs the keyed timer for `duration` seconds, logging "<pid> <time>" per run.
local CHILD = [[
local corio = require "corio"
local rt = require "corio.resty.timer"
local shm, log, duration, interval, sub = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local pid = io.open("/proc/self/stat"):read("*n")
local o = { interval = interval, recurring = true, shm_name = shm, key_name = "cluster",
  expire = function()
    local f = assert(io.open(log, "a"))
    f:write(("%d %.6f\n"):format(pid, corio.now()))
    f:close()
  end }
if sub > 0 then o.sub_interval, o.immediate = sub, true end
local t = assert(rt(o))
corio.after(duration, corio.stop)
corio.run()
]]

-- Starts n Lua processes (and cxx C++ ones: examples/node_timer, on the same key).
local function start(n, shm, log, duration, interval, sub, cxx)
  local script = S.tmpname(".lua")
  local f = assert(io.open(script, "w"))
  f:write(CHILD)
  f:close()
  local cmd = {}
  for _ = 1, n do
    cmd[#cmd + 1] = ("timeout 20 %s %s %s %s %s %s %s &"):format(S.shquote(S.interpreter()), script,
      shm, S.shquote(log), duration, interval, sub)
  end
  local examples = os.getenv("CORIO_EXAMPLES") or "build/examples"
  if (cxx or 0) > 0 then assert(io.open(examples .. "/node_timer"), "no " .. examples .. "/node_timer"):close() end
  for _ = 1, cxx or 0 do
    cmd[#cmd + 1] = ("timeout 20 %s/node_timer %s '[lua-resty-timer]cluster' %s %s %s | grep '^run ' >> %s &"):format(
      examples, shm, interval, duration, sub, S.shquote(log))
  end
  local p = assert(io.popen(table.concat(cmd, " ") .. " wait; echo done"))
  return function()  -- waits for every process, then gives the runs in time order
    local out = p:read("*a")
    p:close()
    os.remove(script)
    core.unlink_leases(shm)
    assert(out:find("done"), out)
    local runs = {}
    local lf = io.open(log)
    if lf then
      for line in lf:lines() do
        local pid, at = line:match("^(%d+) ([%d.]+)$")
        if not pid then pid, at = line:match("^run (%d+) ([%d.]+)$") end
        runs[#runs + 1] = { pid = tonumber(pid), at = tonumber(at) }
      end
      lf:close()
    end
    os.remove(log)
    table.sort(runs, function(a, b) return a.at < b.at end)
    return runs
  end
end

local function name() return ("node%d"):format(math.random(1, 1e9)) end

local function last_runner(log)
  local pid
  local f = io.open(log)
  if not f then return nil end
  for line in f:lines() do pid = tonumber(line:match("^(%d+)") or line:match("^run (%d+)")) or pid end
  f:close()
  return pid
end

describe("node-wide resty.timer across processes", function()
  it("4 processes, interval 0.2 s, 2 s: about 10 runs and never two in one interval", function()
    local log = S.tmpname(".log")
    local wait = start(4, name(), log, 2.05, 0.2, 0)
    local runs = wait()
    assert.is_true(#runs >= 8 and #runs <= 11, "runs " .. #runs)
    for i = 2, #runs do
      local gap = runs[i].at - runs[i - 1].at
      -- the lease lasts interval - 1 ms; a busy machine can only stamp a run late, not early
      assert.is_true(gap > 0.15, ("runs %d and %d %.3f s apart"):format(i - 1, i, gap))
    end
    local pids = {}
    for _, r in ipairs(runs) do pids[r.pid] = true end
    print(("\n  4 processes: %d runs in 2 s"):format(#runs))
  end)

  it("replaces a runner killed with SIGKILL within interval + sub_interval", function()
    local log = S.tmpname(".log")
    local interval, sub = 0.2, 0.05
    local wait = start(3, name(), log, 2.5, interval, sub)
    os.execute("sleep 1")
    local victim = last_runner(log)
    assert.is_not_nil(victim, "nobody ran in 1 s")
    os.execute("kill -9 " .. victim)
    local runs = wait()
    -- the victim's last run, then the first run after it (the runner may have changed hands
    -- before the kill too: a lease lost under load is not a takeover)
    local last_of_victim, next_other
    for _, r in ipairs(runs) do
      if r.pid == victim then last_of_victim = r.at end
    end
    for _, r in ipairs(runs) do
      if r.at > last_of_victim and not next_other then next_other = r.at end
    end
    for _, r in ipairs(runs) do
      if r.at > last_of_victim then assert.are_not.equal(victim, r.pid) end
    end
    assert.is_not_nil(next_other, "nobody took over")
    local delay = next_other - last_of_victim
    print(("\n  takeover %.3f s after the killed runner's last run (bound %.2f)"):format(delay, interval + sub))
    assert.is_true(delay >= interval - 0.002, "taken over too soon: " .. delay)
    assert.is_true(delay <= interval + sub + 0.05, "takeover took " .. delay)
  end)

  -- Had the two faces two keys (or two layouts), the C++ pair would add its own ~10 runs.
  it("shares a key between Lua and C++ processes (examples/node_timer): once per interval between them", function()
    local log = S.tmpname(".log")
    local runs = start(2, name(), log, 2.05, 0.2, 0, 2)()
    assert.is_true(#runs >= 8 and #runs <= 11, "runs " .. #runs)
    for i = 2, #runs do
      local gap = runs[i].at - runs[i - 1].at
      assert.is_true(gap > 0.15, ("runs %d and %d %.3f s apart"):format(i - 1, i, gap))
    end
    print(("\n  2 Lua + 2 C++ processes: %d runs in 2 s"):format(#runs))
  end)
end)
