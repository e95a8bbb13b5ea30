-- corio.workers: real forked workers, each scenario in a child interpreter (at most 20 s)
-- that supervises them, logs to a file and stops itself. A watchdog in every scenario sends
-- the supervisor SIGTERM after 12 s, and a worker whose supervisor dies gets SIGTERM
-- (PR_SET_PDEATHSIG), so no process outlives a failed test. Loopback only.
local S = require "corio_support"
local corio = require "corio"

-- Helpers every scenario starts with: LOG (arg[1]), log(...), pid(), pgid(), sh(cmd),
-- lines(pattern) (the log's lines matching it), wait_for(pred, limit) (in a thread),
-- blocked() (the signal mask), PARENT (the supervisor's pid), dog (the watchdog).
local prelude = [[
local corio = require "corio"
local LOG = arg[1]
local function log(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  local f = assert(io.open(LOG, "a"))
  f:write(table.concat(t, " "), "\n")
  f:close()
end
local function stat()
  local f = assert(io.open("/proc/self/stat"))
  local l = f:read("*l")
  f:close()
  return l
end
local function pid() return tonumber(stat():match("^(%d+)")) end
local function pgid() return tonumber(stat():match("^%d+ %b() %S+ %d+ (%d+)")) end
local function sh(cmd) local p = io.popen(cmd) p:read("*a") p:close() end
local function lines(pattern)
  local out = {}
  local f = io.open(LOG)
  if not f then return out end
  for l in f:lines() do
    if l:find(pattern) then out[#out + 1] = l end
  end
  f:close()
  return out
end
local function wait_for(pred, limit)
  local deadline = corio.now() + (limit or 5)
  while not pred() do
    if corio.now() > deadline then return false end
    corio.sleep(0.02)
  end
  return true
end
local PARENT = pid()
local function blocked()  -- this process's blocked signals, as /proc shows them
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return s:match("SigBlk:%s*(%x+)")
end
local dog = corio.after(12, function() log("WATCHDOG") sh("kill -TERM " .. PARENT) end)
]]

-- Runs a scenario under `prefix` (environment assignments); returns its output (stdout and
-- stderr), exit status and log lines.
local function scenario(source, prefix)
  local logpath = S.tmpname(".log")
  local out, status = S.child_in(prefix or "", prelude .. source, logpath)
  local log = {}
  local f = io.open(logpath)
  if f then
    for l in f:lines() do log[#log + 1] = l end
    f:close()
  end
  os.remove(logpath)
  os.remove(logpath .. ".mark")
  return out, status, log
end

-- The log's lines starting with word, split into fields.
local function fields(log, word)
  local out = {}
  for _, l in ipairs(log) do
    if l:sub(1, #word + 1) == word .. " " then
      local t = {}
      for w in l:gmatch("%S+") do t[#t + 1] = w end
      out[#out + 1] = t
    end
  end
  return out
end

describe("corio.workers", function()
  it("restarts a killed worker with the same index within 1 s; SIGTERM stops all cleanly, hooks once each, nothing of the parent's in the workers", function()
    local out, status, log = scenario([[
      corio.every(0.05, function() if pid() ~= PARENT then log("PARENT-TICK-IN-WORKER", pid()) end end)
      -- garbage of the parent's, collected in the workers: its destructors must be harmless
      for _ = 1, 20 do corio.after(100, function() end):cancel() end
      for _ = 1, 5 do corio.tcp() end
      do local dropped = assert(corio.bind("127.0.0.1", 0)) end
      local waiting = assert(corio.bind("127.0.0.1", 0))
      corio.spawn(function() waiting:accept() log("PARENT-ACCEPT-RETURNED", pid()) end)
      corio.atshutdown(function() log("PARENT-HOOK", pid()) end)
      local t_kill, t_back, t_term
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 3 end))
        local victim = lines("^start 2 ")[1]:match("^start 2 (%d+)")
        t_kill = corio.now()
        sh("kill -9 " .. victim)
        assert(wait_for(function() return #lines("^start 2 ") >= 2 end, 3))
        t_back = corio.now()
        corio.sleep(0.2)
        t_term = corio.now()
        sh("kill -TERM " .. PARENT)
      end)
      local mask_before = blocked()
      local ok, err = corio.workers(3, function(i)
        log("start", i, pid(), corio.epoch(), corio.worker, corio.worker_index())
        collectgarbage()
        collectgarbage()
        corio.atshutdown(function() log("hook", i, pid()) end)
        corio.every(1, function() end)  -- a timer, and nothing in flight
      end)
      local t_ret = corio.now()
      print("mask restored", mask_before == blocked(), mask_before)
      print("returned", ok, err)
      print("restart", t_back - t_kill)
      print("stop", t_ret - t_term)
      print("parent", PARENT, corio.epoch(), corio.worker, corio.worker_index())
      dog:cancel()
      corio.shutdown(0)  -- the parent's own hook runs here, in the parent
    ]])
    assert.equal(0, status, out)
    assert.matches("returned\ttrue\tnil", out, 1, true)
    assert.matches("mask restored\ttrue", out, 1, true)
    assert.is_true(tonumber(out:match("restart\t(%S+)")) < 1, out)
    assert.is_true(tonumber(out:match("stop\t(%S+)")) < 1, out)  -- nothing in flight: at once
    local parent, parent_epoch = out:match("parent\t(%d+)\t(%d+)\tnil\tnil")
    assert.truthy(parent, out)
    local starts = fields(log, "start")
    assert.equal(4, #starts, table.concat(log, "\n"))
    local last = {}
    for _, s in ipairs(starts) do
      assert.equal(s[2], s[5], "corio.worker") -- corio.worker == i
      assert.equal(s[2], s[6], "corio.worker_index()")
      assert.not_equal(parent_epoch, s[4], "a worker's epoch differs from the parent's")
      assert.not_equal(parent, s[3])
      last[s[2]] = s[3]
    end
    assert.not_equal(fields(log, "start")[2][3], last["2"], "worker 2 came back as a new process")
    local hooks = fields(log, "hook")
    assert.equal(3, #hooks, table.concat(log, "\n"))
    for _, h in ipairs(hooks) do assert.equal(last[h[2]], h[3], "a hook ran once in each last worker") end
    local parent_hooks = fields(log, "PARENT-HOOK")
    assert.equal(1, #parent_hooks, table.concat(log, "\n"))
    assert.equal(parent, parent_hooks[1][2])
    for _, l in ipairs(log) do assert.is_nil(l:find("PARENT-TICK-IN-WORKER", 1, true), l) end
    -- the parent's accepting thread ends only in the parent, at its own shutdown
    local accepts = fields(log, "PARENT-ACCEPT-RETURNED")
    assert.equal(1, #accepts, table.concat(log, "\n"))
    assert.equal(parent, accepts[1][2])
    for _, l in ipairs(log) do assert.is_nil(l:find("WATCHDOG", 1, true), l) end
  end)

  it("runs resty.timer in workers: a keyed timer once per interval among them; on stop CANCEL_SYSTEM once per live timer, never the parent's", function()
    local out, status, log = scenario([[
      local rt = require "corio.resty.timer"
      local shm = "workers" .. PARENT
      local function parent_cancel(reason) log("parent-cancel", reason, pid()) end
      local function parent_expire() if pid() ~= PARENT then log("PARENT-EXPIRE-IN-WORKER", pid()) end end
      local keep = rt({ interval = 0.05, recurring = true, expire = parent_expire, cancel = parent_cancel })
      rt({ interval = 0.05, recurring = true, detached = true, expire = parent_expire, cancel = parent_cancel })
      rt({ interval = 0.05, recurring = true, expire = parent_expire, cancel = parent_cancel })  -- dropped
      corio.spawn(function()
        assert(wait_for(function() return #lines("^run ") >= 6 end, 5))
        sh("kill -TERM " .. PARENT)
      end)
      local ok = corio.workers(3, function(i)
        collectgarbage()
        collectgarbage()
        _G.keyed = rt({ interval = 0.1, recurring = true, shm_name = shm, key_name = "cluster",
          expire = function() log("run", i, pid(), ("%.6f"):format(corio.now())) end,
          cancel = function(reason) log("cancel", reason, i, pid(), "keyed") end })
        rt({ interval = 5, recurring = true, detached = true, expire = function() end,
          cancel = function(reason) log("cancel", reason, i, pid(), "plain") end })
      end)
      print("returned", ok, keep ~= nil)
      dog:cancel()
      require("corio.core").unlink_leases(shm)
    ]])
    assert.equal(0, status, out)
    assert.matches("returned\ttrue\ttrue", out, 1, true)
    local cancels = fields(log, "cancel")
    local seen = {}
    for _, c in ipairs(cancels) do
      assert.equal("SYSTEM", c[2], table.concat(log, "\n"))
      local k = c[3] .. " " .. c[5]
      assert.is_nil(seen[k], "twice: " .. k)
      seen[k] = true
    end
    assert.equal(6, #cancels, table.concat(log, "\n"))  -- keyed and plain, in each of 3 workers
    local pcancels = fields(log, "parent-cancel")
    assert.equal(3, #pcancels, table.concat(log, "\n"))
    local ppid = pcancels[1][3]
    for _, c in ipairs(pcancels) do assert.equal(ppid, c[3], "a parent's cancel callback ran in a worker") end
    for _, w in ipairs(fields(log, "cancel")) do assert.not_equal(ppid, w[4]) end
    for _, l in ipairs(log) do assert.is_nil(l:find("PARENT-EXPIRE-IN-WORKER", 1, true), l) end
    local runs = fields(log, "run")
    assert.is_true(#runs >= 6)
    for k = 2, #runs do
      local gap = tonumber(runs[k][4]) - tonumber(runs[k - 1][4])
      assert.is_true(gap > 0.08, ("runs %d and %d %.3f s apart"):format(k - 1, k, gap))
    end
  end)

  -- The stop begins on the runtime's own thread, inside a C function: a hook that wakes a
  -- waiter must go on, and so must the hooks after it (LuaJIT stopped after the waiter once).
  it("runs every hook on stop, also after one that closes a socket another thread waits on", function()
    local out, status, log = scenario([[
      corio.spawn(function()
        assert(wait_for(function() return #lines("^ready ") >= 2 end))
        sh("kill -TERM " .. PARENT)
      end)
      local ok = corio.workers(2, function(i)
        local udp = assert(corio.udp4())
        assert(udp:setsockname("127.0.0.1", 0))
        corio.spawn(function() log("woken", i, select(2, udp:receivefrom())) end)
        corio.atshutdown(function() udp:close() log("closed", i) end)
        corio.atshutdown(function() log("second", i) end)
        log("ready", i)
      end)
      print("returned", ok)
      dog:cancel()
    ]])
    assert.equal(0, status, out)
    assert.matches("returned\ttrue", out, 1, true)
    for _, word in ipairs({ "woken", "closed", "second" }) do
      assert.equal(2, #fields(log, word), word .. ":\n" .. table.concat(log, "\n"))
    end
    for _, w in ipairs(fields(log, "woken")) do assert.equal("closed", w[3]) end
  end)

  it("reports an error escaping main(i) with its traceback and restarts the worker", function()
    local out, status, log = scenario([[
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 2 end))
        sh("kill -TERM " .. PARENT)
      end)
      print("returned", corio.workers(1, function(i)
        log("start", i, pid())
        local mark = LOG .. ".mark"
        if not io.open(mark) then
          io.open(mark, "w"):close()
          corio.sleep(0.05)
          error("boom in main")
        end
        corio.every(1, function() end)
      end))
    ]])
    assert.equal(0, status, out)
    assert.matches("returned\ttrue", out, 1, true)
    assert.matches("boom in main\nstack traceback:", out, 1, true)
    assert.matches("worker 1 %(pid %d+%) exited with status 1; restarting in 0.1 s", out)
    assert.equal(2, #fields(log, "start"), out)
  end)

  it("backs off: a worker that keeps failing at once is restarted after 0.1 s, then 0.2 s, 0.4 s", function()
    local out, status, log = scenario([[
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 4 end, 3))
        sh("kill -TERM " .. PARENT)
      end)
      print("returned", corio.workers(1, function(i)
        log("start", i, corio.now())
        error("failing at once")
      end))
    ]])
    assert.equal(0, status, out)
    assert.matches("returned\ttrue", out, 1, true)
    local delays = {}
    for d in out:gmatch("restarting in (%S+) s") do delays[#delays + 1] = d end
    assert.same({ "0.1", "0.2", "0.4" }, { delays[1], delays[2], delays[3] }, out)
    local starts = fields(log, "start")
    assert.is_true(#starts >= 4, out)
    -- the delays measured between starts: the third is about twice the second
    local gap2 = tonumber(starts[3][3]) - tonumber(starts[2][3])
    local gap3 = tonumber(starts[4][3]) - tonumber(starts[3][3])
    assert.is_true(gap2 >= 0.18 and gap3 >= 0.38 and gap3 < 1, out .. table.concat(log, "\n"))
  end)

  it("stops a worker with a thread in flight after opts.grace", function()
    local out, status, log = scenario([[
      local t_term
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 2 end))
        t_term = corio.now()
        sh("kill -TERM " .. PARENT)
      end)
      local ok = corio.workers(2, function(i)
        log("start", i, pid())
        corio.atshutdown(function() log("hook", i, pid()) end)
        corio.spawn(function() corio.sleep(10) log("SLEPT-TO-THE-END", i) end)
      end, { grace = 0.5 })
      print("returned", ok, "stop", corio.now() - t_term)
    ]])
    assert.equal(0, status, out)
    local took = tonumber(out:match("returned\ttrue\tstop\t(%S+)"))
    assert.truthy(took, out)
    assert.is_true(took >= 0.4 and took < 2, out)
    assert.equal(2, #fields(log, "hook"), table.concat(log, "\n"))
    assert.equal(0, #fields(log, "SLEPT-TO-THE-END"))
    assert.is_nil(out:find("restarting", 1, true), out)
  end)

  it("stops once, cleanly, on SIGINT to the whole process group, with no restart", function()
    local out, status, log = scenario([[
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 2 end))
        sh("kill -INT -" .. pgid())
      end)
      local t0 = corio.now()
      print("returned", corio.workers(2, function(i)
        log("start", i, pid())
        corio.atshutdown(function() log("hook", i, pid()) end)
        corio.spawn(function() corio.sleep(0.2) log("done", i) end)
        corio.every(1, function() end)
      end))
      print("took", corio.now() - t0)
    ]])
    assert.equal(0, status, out)
    assert.matches("returned\ttrue", out, 1, true)
    assert.is_nil(out:find("restarting", 1, true), out)
    assert.equal(2, #fields(log, "start"), table.concat(log, "\n"))
    assert.equal(2, #fields(log, "hook"), table.concat(log, "\n"))
    assert.is_true(tonumber(out:match("took\t(%S+)")) < 5, out)
  end)

  it("gives every worker the same port (SO_REUSEPORT), and no worker keeps the parent's server open", function()
    local out, status = scenario([[
      local pre = assert(corio.bind("127.0.0.1", 0))
      local pre_port = tonumber((select(2, pre:getsockname())))
      local probe = assert(corio.bind("127.0.0.1", 0))
      local port = tonumber((select(2, probe:getsockname())))
      probe:close()
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 2 end))
        pre:close()  -- the parent's copy: if a worker kept its own, a connect would succeed
        local c, err = corio.connect("127.0.0.1", pre_port)
        print("pre", c and "connected" or err)
        local pids, n = {}, 0
        for _ = 1, 40 do
          local c2 = assert(corio.connect("127.0.0.1", port))
          c2:settimeout(2)
          local who = c2:receive("*l")
          c2:close()
          if who and not pids[who] then pids[who] = true n = n + 1 end
        end
        print("distinct", n)
        sh("kill -TERM " .. PARENT)
      end)
      print("returned", corio.workers(2, function(i)
        assert(corio.serve("127.0.0.1", port, function(c) c:send(pid() .. "\n") c:close() end))
        log("start", i, pid())
      end, { grace = 1 }))
    ]])
    assert.equal(0, status, out)
    assert.matches("pre\tconnection refused", out, 1, true)
    assert.matches("distinct\t2", out, 1, true)
    assert.matches("returned\ttrue", out, 1, true)
    assert.is_nil(out:find("restarting", 1, true), out)
  end)

  it("stops the workers when the parent calls corio.shutdown", function()
    local out, status, log = scenario([[
      corio.spawn(function()
        assert(wait_for(function() return #lines("^start ") >= 2 end))
        print("parent shutdown", corio.shutdown(1))
      end)
      print("returned", corio.workers(2, function(i)
        log("start", i, pid())
        corio.atshutdown(function() log("hook", i, pid()) end)
        corio.every(1, function() end)
      end))
      dog:cancel()
    ]])
    assert.equal(0, status, out)
    assert.matches("parent shutdown	true", out, 1, true)
    assert.matches("returned	true", out, 1, true)
    assert.equal(2, #fields(log, "hook"), table.concat(log, "\n"))
    assert.is_nil(out:find("restarting", 1, true), out)
  end)

  it("returns nil and a message when a worker cannot be forked (CORIO_WORKERS_FAIL_FORK)", function()
    local out, status = scenario([[
      local t0 = corio.now()
      print("returned", corio.workers(3, function(i) log("start", i) corio.every(1, function() end) end))
      print("took", corio.now() - t0)
      dog:cancel()
    ]], "CORIO_WORKERS_FAIL_FORK=2")
    assert.equal(0, status, out)
    assert.matches("returned\tnil\tcannot fork worker 2: ", out, 1, true)
    assert.is_true(tonumber(out:match("took\t(%S+)")) < 1, out)
  end)

  it("refuses bad arguments", function()
    local f = function() end
    for _, case in ipairs({
      { 0, f }, { 1025, f }, { 1.5, f }, { "2", f }, { nil, f }, { 0 / 0, f }, { math.huge, f },
      { 1, nil }, { 1, "main" },
      { 1, f, 5 }, { 1, f, { grace = -1 } }, { 1, f, { grace = 0 / 0 } }, { 1, f, { grace = "3" } },
      { 1, f, { grace = math.huge } },
    }) do
      local ok, err = pcall(corio.workers, case[1], case[2], case[3])
      assert.is_false(ok)
      assert.matches("bad argument", err)
    end
  end)

  it("refuses to run inside a corio thread", function()
    S.run(function()
      local ok, err = pcall(corio.workers, 1, function() end)
      assert.is_false(ok)
      assert.matches("not inside a corio thread", err, 1, true)
    end)
  end)

  it("is nil in corio.worker and corio.worker_index() outside a worker", function()
    assert.is_nil(corio.worker)
    assert.is_nil(corio.worker_index())
  end)
end)
