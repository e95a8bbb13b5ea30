-- corio.ioloop: luamqtt's ioloop API, event-driven. The MQTT clients here are
-- tests/lua/mqtt_contract.lua (luamqtt 3.x's contract with its ioloop; the real luamqtt is
-- checked by scripts/luamqtt-check), against a real mosquitto started by the tests.
package.loaded["mqtt.ioloop"] = require "corio.ioloop"
local ioloop = require "corio.ioloop"
local corio = require "corio"
local socket = require "socket"
local S = require "corio_support"

-- get(false) is nil until the default instance exists: before anything else asks for it.
local no_default_at_first = ioloop.get(false) == nil

local cpu = S.cpu

-- Runs loop:run_until_clients() under a watchdog: after `limit` seconds every entry is
-- removed (a corio timer, independent of the ioloop) and the test fails.
local function run(loop, limit)
  local timed_out = false
  local dog = corio.after(limit or 10, function()
    timed_out = true
    while loop.clients[1] do loop:remove(loop.clients[1]) end
  end)
  loop:run_until_clients()
  dog:cancel()
  assert(not timed_out, ("ioloop still running after %g s"):format(limit or 10))
end

-- A loop function that records when it is called and returns `wish`; with `loop` and
-- `limit`, its last call removes it from loop.
local function recorder(wish, loop, limit)
  local calls = {}
  local f
  f = function()
    calls[#calls + 1] = corio.now()
    if limit and #calls >= limit then loop:remove(f) end
    return wish
  end
  return f, calls
end

local function gaps(calls)
  local g = {}
  for i = 2, #calls do g[#g + 1] = calls[i] - calls[i - 1] end
  return g
end

local function maximum(t)
  local m = -math.huge
  for _, v in ipairs(t) do if v > m then m = v end end
  return m
end

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c[math.ceil(#c / 2)]
end

-- Removes f from loop after `seconds`.
local function remove_after(loop, f, seconds)
  corio.after(seconds, function() loop:remove(f) end)
end

-- Allowed lateness of a wake-up on a loaded 2-core CI machine.
local LATE = 0.03

describe("corio.ioloop API", function()
  it("get: nil while no default exists and autocreate is false, then one default", function()
    assert.is_true(no_default_at_first)
    local opts = { sleep_max = 0.5 }
    local d = ioloop.get(true, opts)
    assert.equal(d, ioloop.get())
    assert.equal(d, ioloop.get(false))
    assert.equal(0.5, d.opts.sleep_max)
    assert.is_not.equal(d, ioloop.create())
  end)

  it("create: luamqtt's defaults written into the options table, which is also .args", function()
    local opts = {}
    local loop = ioloop.create(opts)
    assert.equal(opts, loop.opts)
    assert.equal(opts, loop.args)
    assert.equal(0, opts.sleep_min)
    assert.equal(0.002, opts.sleep_step)
    assert.equal(0.030, opts.sleep_max)
    assert.equal(0.005, opts.timeout)
    assert.is_false(loop.running)
    assert.same({}, loop.clients)
    assert.equal(0, ioloop.create().opts.sleep_min)
  end)

  it("create: a bad option is an error that names it", function()
    for _, bad in ipairs({ { sleep_max = 0 / 0 }, { sleep_min = -1 }, { sleep_step = "x" }, { timeout = -0.5 },
                           { sleep_max = true } }) do
      local name = next(bad)
      assert.has_error(function() ioloop.create(bad) end)
      local ok, err = pcall(ioloop.create, bad)
      assert.is_false(ok)
      assert.truthy(err:find("option " .. name, 1, true), err)
    end
    assert.has_error(function() ioloop.create({ sleep_min = 1, sleep_max = 0.5 }) end,
      "corio.ioloop: option sleep_min must not exceed sleep_max")
    assert.has_error(function() ioloop.create({ sleep_function = 42 }) end,
      "corio.ioloop: option sleep_function must be a function")
    assert.has_error(function() ioloop.create(42) end, "bad argument #1 to 'create' (table expected, got number)")
    assert.equal(math.huge, ioloop.create({ sleep_max = math.huge }).opts.sleep_max)
  end)

  it("add and remove: true, or false and a message; set_ioloop on add and on remove", function()
    local loop = ioloop.create()
    local f = function() end
    assert.same({ true }, { loop:add(f) })
    assert.same({ false, "MQTT loop function was already added to this ioloop" }, { loop:add(f) })
    local seen = {}
    local client = { _ioloop_iteration = function() end, set_ioloop = function(_, l) seen[#seen + 1] = l or "nil" end }
    assert.is_true(loop:add(client))
    assert.same({ false, "MQTT client was already added to this ioloop" }, { loop:add(client) })
    assert.same({ loop }, seen)
    assert.same({ f, client }, { loop.clients[1], loop.clients[2] })
    assert.is_true(loop.clients[f])
    assert.is_true(loop:remove(client))
    assert.same({ loop, "nil" }, seen)
    assert.same({ false, "MQTT client not found" }, { loop:remove(client) })
    assert.is_true(loop:remove(f))
    assert.same({ false, "MQTT loop function not found" }, { loop:remove(f) })
    assert.same({ false, "MQTT client not found" }, { loop:remove(nil) })
    assert.same({}, loop.clients)
  end)

  it("add: anything but a client or a function is an argument error", function()
    local loop = ioloop.create()
    for _, bad in ipairs({ 42, "x", true, {} }) do
      assert.has_error(function() loop:add(bad) end,
        ("bad argument #1 to 'add' (MQTT client or loop function expected, got %s)"):format(type(bad)))
    end
    assert.has_error(function() loop:add(nil) end, "bad argument #1 to 'add' (MQTT client or loop function expected, got nil)")
  end)

  it("iteration with nothing added returns at once; run_until_clients too", function()
    local loop = ioloop.create({ sleep_max = 5 })
    local t = S.time(function() loop:iteration() end)
    assert.is_true(t < 0.01, t)
    t = S.time(function() loop:run_until_clients() end)
    assert.is_true(t < 0.01, t)
  end)

  it("200 loop functions: each called in the first iteration, in order", function()
    local loop = ioloop.create()
    local order = {}
    for i = 1, 200 do
      local f
      f = function() order[#order + 1] = i loop:remove(f) end
      loop:add(f)
    end
    run(loop, 5)
    assert.equal(200, #order)
    for i = 1, 200 do assert.equal(i, order[i]) end
  end)
end)

describe("corio.ioloop loop functions", function()
  it("are called when they asked, never later", function()
    local loop = ioloop.create()
    local f, calls = recorder(0.05)
    local g, gcalls = recorder(0.2)
    loop:add(f)
    loop:add(g)
    remove_after(loop, f, 0.62)
    remove_after(loop, g, 0.62)
    run(loop)
    assert.is_true(#calls >= 11 and #calls <= 14, #calls)
    assert.is_true(maximum(gaps(calls)) <= 0.05 + LATE, maximum(gaps(calls)))
    assert.is_true(#gcalls >= 3 and #gcalls <= 5, #gcalls)  -- not every time f is called
    assert.is_true(maximum(gaps(gcalls)) <= 0.2 + LATE, maximum(gaps(gcalls)))
  end)

  it("nil asks for sleep_max; a wait is never cut short by a blind sleep_max", function()
    local loop = ioloop.create({ sleep_max = 0.05 })
    local f, calls = recorder(nil)
    loop:add(f)
    remove_after(loop, f, 0.42)
    run(loop)
    assert.is_true(#calls >= 7 and #calls <= 10, #calls)
    assert.is_true(maximum(gaps(calls)) <= 0.05 + LATE)
  end)

  it("-1 (idle) follows the polling schedule: sleep_min, one sleep_step more each time, at most sleep_max", function()
    local loop = ioloop.create({ sleep_min = 0.01, sleep_step = 0.02, sleep_max = 0.07 })
    local f, calls = recorder(-1, loop, 8)
    loop:add(f)
    run(loop)
    local gs = gaps(calls)
    local want = { 0.03, 0.05, 0.07, 0.07, 0.07 }
    for i, w in ipairs(want) do
      assert.is_true(gs[i] >= w - 0.006 and gs[i] <= w + LATE, ("gap %d: %g, want %g"):format(i, gs[i], w))
    end
  end)

  it("hostile results: NaN is sleep_max, a negative number now, math.huge never again", function()
    local loop = ioloop.create({ sleep_max = 0.02 })
    local nan, ncalls = recorder(0 / 0)
    local neg, negcalls = recorder(-5)
    local hugef, hcalls = recorder(math.huge)
    local str, scalls = recorder("soon")
    for _, f in ipairs({ nan, neg, hugef, str }) do loop:add(f) end
    corio.after(0.2, function() for _, f in ipairs({ nan, neg, hugef, str }) do loop:remove(f) end end)
    run(loop)
    assert.equal(1, #hcalls)
    assert.is_true(#ncalls >= 7 and #ncalls <= 12, #ncalls)
    assert.is_true(#scalls >= 7 and #scalls <= 12, #scalls)
    assert.is_true(#negcalls > 100, #negcalls)  -- called in every iteration
    assert.is_true(#ncalls < #negcalls / 5)
  end)

  it("may remove themselves or others, and add others, while running", function()
    local loop = ioloop.create()
    local log = {}
    local a, b, c, added
    added = function() log[#log + 1] = "added" loop:remove(added) end
    a = function()
      log[#log + 1] = "a"
      if #log >= 3 then
        loop:remove(a)   -- itself
        loop:remove(b)   -- one after it in this iteration: not called again
        loop:add(added)
      end
      return 0.01
    end
    b = function() log[#log + 1] = "b" return 0.01 end
    c = function() log[#log + 1] = "c" loop:remove(c) end
    loop:add(a) loop:add(b) loop:add(c)
    run(loop, 5)
    assert.same({ "a", "b", "c", "a", "added" }, log)
  end)

  it("run_until_clients: running is true inside, false after, and after an error", function()
    local loop = ioloop.create()
    local inside
    local f
    f = function() inside = loop.running loop:remove(f) end
    loop:add(f)
    run(loop)
    assert.is_true(inside)
    assert.is_false(loop.running)
    loop:add(function() error("boom in a loop function") end)
    local ok, err = pcall(loop.run_until_clients, loop)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("boom in a loop function", 1, true))
    assert.is_false(loop.running)
    loop:remove(loop.clients[1])
    local g, gcalls = recorder(nil, loop, 1)
    loop:add(g)
    loop:iteration()  -- usable again
    assert.equal(1, #gcalls)
  end)

  it("iterating from inside the same ioloop is a clear error", function()
    local loop = ioloop.create()
    local err
    local f
    f = function()
      local ok, e = pcall(loop.iteration, loop)
      err = not ok and e
      loop:remove(f)
    end
    loop:add(f)
    run(loop)
    assert.truthy(tostring(err):find("already iterating", 1, true), err)
  end)

  it("iteration() by hand waits at most sleep_max", function()
    local loop = ioloop.create({ sleep_max = 0.05 })
    local f = function() return 10 end
    loop:add(f)
    loop:iteration()  -- calls f
    local t = S.time(function() loop:iteration() end)
    assert.is_true(t >= 0.045 and t <= 0.05 + LATE, t)
    loop:remove(f)
  end)

  it("a sleep_function given replaces the wait, called with what the ioloop would wait", function()
    local slept = {}
    local loop = ioloop.create({ sleep_max = 0.04, sleep_function = function(t)
      slept[#slept + 1] = t
      socket.sleep(t)
    end })
    local f, calls = recorder(0.01, loop, 6)
    loop:add(f)
    run(loop)
    assert.equal(6, #calls)
    assert.equal(5, #slept)  -- none after the last entry left
    for i = 1, 5 do assert.is_true(slept[i] > 0.005 and slept[i] <= 0.0101, slept[i]) end
    local g = recorder(5)
    loop:add(g)
    loop:iteration()
    assert.equal(0.04, slept[6])  -- by hand: at most sleep_max
  end)

  it("corio threads and timers run while run_until_clients waits; a thread's add wakes it", function()
    local loop = ioloop.create()
    local ticks = 0
    local tick = corio.every(0.01, function() ticks = ticks + 1 end)
    local long = function() return 0.3 end
    loop:add(long)
    local added_at, called_at
    corio.spawn(function()
      corio.sleep(0.05)
      added_at = corio.now()
      loop:add(function()
        called_at = called_at or corio.now()
        loop:remove(long)
        return nil
      end)
    end)
    corio.after(0.2, function() while loop.clients[1] do loop:remove(loop.clients[1]) end end)
    run(loop)
    tick:cancel()
    assert.is_true(ticks >= 12, ticks)
    assert.is_true(called_at - added_at < 0.01, called_at - added_at)
  end)

  it("two instances, one driven from a corio thread, keep their own times", function()
    local one, two = ioloop.create(), ioloop.create()
    local f, fcalls = recorder(0.03)
    local g, gcalls = recorder(0.05)
    one:add(f)
    two:add(g)
    remove_after(one, f, 0.5)
    remove_after(two, g, 0.5)
    local finished
    corio.spawn(function() two:run_until_clients() finished = corio.now() end)
    run(one)
    local deadline = corio.now() + 2
    while not finished and corio.now() < deadline do corio.step(0.01) end
    assert.truthy(finished)
    assert.is_true(maximum(gaps(fcalls)) <= 0.03 + LATE)
    assert.is_true(maximum(gaps(gcalls)) <= 0.05 + LATE)
    assert.is_true(#fcalls >= 15 and #gcalls >= 9, #fcalls .. " " .. #gcalls)
  end)
end)

describe("corio.ioloop luamqtt 4.x clients (step, check_keep_alive)", function()
  it("a keep-alive function comes and goes with its client; step follows the polling schedule", function()
    local loop = ioloop.create({ sleep_min = 0, sleep_step = 0.01, sleep_max = 0.04 })
    local steps, checks = {}, 0
    local client = { opts = {} }
    function client:step() steps[#steps + 1] = corio.now() return -1 end
    function client:check_keep_alive() checks = checks + 1 return 0.05 end
    assert.is_true(loop:add(client))
    assert.equal(2, #loop.clients)
    corio.after(0.3, function() loop:remove(client) end)
    run(loop)
    assert.same({}, loop.clients)
    assert.is_true(checks >= 5 and checks <= 8, checks)
    local gs = gaps(steps)
    assert.is_true(gs[1] < 0.01 + LATE and gs[#gs] >= 0.035, gs[1] .. " " .. gs[#gs])
  end)

  it("connected through a socket: an idle client waits for readability, not the schedule", function()
    local loop = ioloop.create({ sleep_max = 0.01 })
    local a, b = S.pair()
    local steps, lines = 0, {}
    local client = { opts = {}, connection = { sock = a } }
    function client:step()
      steps = steps + 1
      a:settimeout(0)
      local line = a:receive("*l")
      if not line then return -1 end
      lines[#lines + 1] = { line, corio.now() }
      return 0
    end
    loop:add(client)
    local sent
    corio.after(0.2, function() sent = corio.now() b:send("one\ntwo\n") end)
    corio.after(0.4, function() loop:remove(client) end)
    run(loop)
    a:close() b:close()
    assert.same({ "one", "two" }, { lines[1][1], lines[2][1] })
    assert.is_true(lines[2][2] - sent < 0.01, lines[2][2] - sent)
    assert.is_true(steps <= 6, steps)  -- polling every 10 ms would make 40
  end)

  it("a step error removes a client that does not reconnect, and retries one that does", function()
    local loop = ioloop.create()
    local a = { opts = {}, n = 0 }
    function a:step() self.n = self.n + 1 return nil, "broken" end
    local b = { opts = { reconnect = true }, n = 0 }
    function b:step() self.n = self.n + 1 if self.n == 3 then loop:remove(self) end return nil, "broken" end
    loop:add(a) loop:add(b)
    run(loop)
    assert.equal(1, a.n)
    assert.equal(3, b.n)
  end)
end)

describe("corio.ioloop hosting MQTT clients (a real mosquitto)", function()
  local mq = require "mosquitto_support"
  local C = require "mqtt_contract"
  local broker

  setup(function() broker = mq.start({ tls = true }) end)
  teardown(function() if broker then broker:stop() end end)

  local function uri(b) return "127.0.0.1:" .. (b or broker).port end

  -- A contract client that subscribes to topic and calls on_message(msg, client).
  local function subscriber(loop, topic, on_message, args)
    args = args or {}
    args.uri = args.uri or uri()
    local c = C.client(args)
    c.received = {}
    c:on({
      connect = function() c:subscribe(topic) end,
      subscribe = function() c.subscribed = true end,
      message = function(m)
        c.received[#c.received + 1] = m
        if on_message then on_message(m, c) end
      end,
      error = function(e) c.last_error = e end,
    })
    loop:add(c)
    return c
  end

  local function until_(loop, cond, limit)
    local f
    local deadline = corio.now() + (limit or 5)
    f = function()
      if cond() or corio.now() > deadline then loop:remove(f) end
      return 0.01
    end
    loop:add(f)
    return f
  end

  it("connects, subscribes, publishes and receives; disconnect removes the client", function()
    local loop = ioloop.create()
    local c
    c = subscriber(loop, "corio/basic", function(m, cl)
      if m.payload == "hello" then cl:disconnect() end
    end)
    local f
    f = function()
      if c.subscribed then c:publish("corio/basic", "hello") loop:remove(f) end
      return 0.01
    end
    loop:add(f)
    run(loop, 5)
    assert.equal("hello", c.received[1].payload)
    assert.is_nil(c.connection)
    assert.is_nil(loop.clients[c])
  end)

  it("a client made inside a running default ioloop adds itself (luamqtt's auto-add)", function()
    local loop = ioloop.get()
    local made
    local f
    f = function()
      made = C.client({ uri = uri() })
      made:on({ connect = function() made:disconnect() end })
      loop:remove(f)
    end
    loop:add(f)
    run(loop, 5)
    assert.truthy(made)
    assert.is_nil(made.connection)  -- connected, then disconnected
    assert.is_nil(loop.clients[made])
  end)

  it("handles a message within a few ms of its publish while sleep_max is 1 s", function()
    local loop = ioloop.create({ sleep_max = 1 })
    local lat = {}
    local c = subscriber(loop, "corio/latency", function(m, cl)
      lat[#lat + 1] = socket.gettime() - tonumber(m.payload)
      if #lat == 20 then cl:disconnect() end
    end)
    local started
    local f
    f = function()
      if c.subscribed and not started then
        started = true
        -- one mosquitto_pub connection; each line stamped just before it is written
        os.execute(("(sleep 0.3; for i in $(seq 20); do date +%%s.%%N; sleep 0.05; done) | %s >/dev/null 2>&1 &")
          :format(broker:pub_lines("corio/latency")))
        loop:remove(f)
      end
      return 0.01
    end
    loop:add(f)
    run(loop, 10)
    assert.equal(20, #lat)
    table.sort(lat)
    print(("\n    latency mosquitto_pub -> callback, sleep_max 1 s: median %.2f ms, max %.2f ms")
      :format(median(lat) * 1e3, lat[#lat] * 1e3))
    assert.is_true(median(lat) < 0.01, median(lat))
    assert.is_true(lat[#lat] < 0.1, lat[#lat])
  end)

  it("keeps a connection alive with PINGREQ by keep_alive, and answers arrive", function()
    local loop = ioloop.create()
    local c = subscriber(loop, "corio/ka", nil, { keep_alive = 1 })
    corio.after(3.6, function() c:disconnect() end)
    run(loop, 10)
    assert.is_true(c.pings >= 2 and c.pings <= 5, c.pings)
    assert.is_true(c.pongs >= c.pings - 1, c.pongs)
    assert.is_nil(c.last_error)
  end)

  it("10 idle clients over 5 s use next to no CPU", function()
    local loop = ioloop.create()
    local clients = {}
    for i = 1, 10 do clients[i] = subscriber(loop, "corio/idle/" .. i, nil, { keep_alive = 2 }) end
    local t0, c0
    corio.after(0.5, function()
      t0, c0 = corio.now(), cpu()
      corio.after(5, function() for _, c in ipairs(clients) do c:disconnect() end end)
    end)
    run(loop, 10)
    local used = cpu() - c0
    print(("\n    10 idle clients, keep_alive 2 s: %.1f ms CPU in %.2f s"):format(used * 1e3, corio.now() - t0))
    for _, c in ipairs(clients) do
      assert.is_true(c.subscribed)
      assert.is_true(c.pings >= 2, c.pings)
    end
    assert.is_true(used <= 0.025, used)
  end)

  it("a broker stopped with SIGSTOP stalls only its own client", function()
    local other = mq.start()
    local ok, err = pcall(function()
      local loop = ioloop.create()
      local late = 0
      local a = subscriber(loop, "corio/a", function(m)
        late = math.max(late, socket.gettime() - tonumber(m.payload))
      end, { keep_alive = 1 })
      -- (mosquitto would drop b on waking if its keep-alive had run out meanwhile)
      local b = subscriber(loop, "corio/b", nil, { uri = uri(other) })
      local sent, paused = 0, false
      local f
      f = function()
        if not (a.subscribed and b.subscribed) then return 0.01 end
        if not paused then other:pause() paused = corio.now() end
        if sent < 20 then
          sent = sent + 1
          a:publish("corio/a", tostring(socket.gettime()))
          b:publish("corio/b", "while stopped")
          return 0.1
        end
        if #a.received >= 20 then
          other:resume()
          if #b.received >= 20 then
            a:disconnect() b:disconnect()
            loop:remove(f)
          end
        end
        return 0.01
      end
      loop:add(f)
      run(loop, 15)
      assert.equal(20, #a.received)
      assert.is_true(late < 0.05, late)
      assert.equal(20, #b.received)  -- all delivered once the broker went on
      assert.is_nil(a.last_error)
    end)
    other:stop()
    assert(ok, err)
  end)

  it("a reconnecting client comes back when its broker does; nothing spins meanwhile", function()
    local own = mq.start()
    local port = own.port
    local ok, err = pcall(function()
      local loop = ioloop.create()
      local connects = 0
      local c = subscriber(loop, "corio/re", nil, { uri = uri(own), reconnect = 1, keep_alive = 1 })
      c:on({ connect = function() connects = connects + 1 end })
      local phase, c0, down_cpu = "up", nil, nil
      local f
      f = function()
        if phase == "up" and c.subscribed then
          own:stop()
          phase, c0 = "down", cpu()
          corio.after(2, function()
            down_cpu = cpu() - c0
            own = mq.start({ port = port })
            phase = "back"
          end)
        elseif phase == "back" and connects == 2 then
          c:publish("corio/re", "again")
          phase = "sent"
        elseif phase == "sent" and c.received[1] then
          c.args.reconnect = nil
          c:disconnect()
          loop:remove(f)
        end
        return 0.01
      end
      loop:add(f)
      run(loop, 15)
      assert.equal(2, connects)
      assert.equal("again", c.received[1].payload)
      assert.is_true(down_cpu < 0.1, down_cpu)
    end)
    own:stop()
    assert(ok, err)
  end)

  it("TLS through LuaSec (luamqtt's luasocket_ssl connector), verified against the test CA", function()
    local loop = ioloop.create()
    local c
    c = subscriber(loop, "corio/tls", function(m, cl) if m.payload == "secret" then cl:disconnect() end end, {
      uri = "127.0.0.1:" .. broker.tls_port,
      secure = { mode = "client", protocol = "any", verify = "peer", options = "all", cafile = broker.ca },
    })
    local f
    f = function()
      if c.subscribed then c:publish("corio/tls", "secret") loop:remove(f) end
      return 0.01
    end
    loop:add(f)
    run(loop, 5)
    assert.equal("secret", c.received[1] and c.received[1].payload)
    assert.is_nil(c.last_error)
  end)

  it("a client without a descriptor is polled on the sleep_min/step/max schedule", function()
    local loop = ioloop.create({ sleep_min = 0, sleep_step = 0.01, sleep_max = 0.05 })
    local hidden = setmetatable({}, { __index = C.connectors.plain })
    function hidden.connect(conn)
      local ok, err = C.connectors.plain.connect(conn)
      if ok then conn.sock = setmetatable({ inner = conn.sock }, { __index = function(t, k)
        if k == "getfd" or k == "dirty" then return nil end
        return function(_, ...) return t.inner[k](t.inner, ...) end
      end }) end
      return ok, err
    end
    local iterations = 0
    local c
    c = subscriber(loop, "corio/poll", function(_, cl) cl:disconnect() end, { connector = hidden })
    local inner = c._ioloop_iteration
    c._ioloop_iteration = function(self) iterations = iterations + 1 return inner(self) end
    local f, t0
    f = function()
      if c.subscribed then
        t0 = t0 or corio.now()
        if corio.now() - t0 > 0.5 then c:publish("corio/poll", "x") loop:remove(f) end
      end
      return 0.01
    end
    loop:add(f)
    run(loop, 5)
    assert.equal(1, #c.received)
    assert.is_true(iterations < 40, iterations)  -- ~0.5 s at 0.05: a dozen, not thousands
    assert.is_true(iterations > 5, iterations)
  end)

  it("two packets in one segment, and one packet in two segments: each handled at once", function()
    -- a broker of another process (a thread of this one could not send while the client's
    -- receive blocks): LuaSocket, sends what the test needs, segment by segment
    local script = S.tmpname(".lua")
    local f = assert(io.open(script, "w"))
    f:write([[
      local socket = require "socket"
      local function publish(topic, payload)
        local body = string.char(0, #topic) .. topic .. payload
        return string.char(0x30, #body) .. body
      end
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      print(port)
      io.stdout:flush()
      server:settimeout(10)
      local peer = assert(server:accept())
      peer:settimeout(5)
      local head = assert(peer:receive(2))
      assert(peer:receive(head:byte(2)))  -- CONNECT
      peer:send("\32\2\0\0")             -- CONNACK
      peer:send(publish("t", "one") .. publish("t", "two"))
      socket.sleep(0.05)
      local p = publish("t", "three")
      peer:send(p:sub(1, 4))
      socket.sleep(0.002)
      peer:send(p:sub(5))
      peer:receive("*a")
    ]])
    f:close()
    local child = assert(io.popen(S.interpreter() .. " " .. script))
    local port = assert(tonumber(child:read("*l")))
    local loop = ioloop.create()
    local c = C.client({ uri = "127.0.0.1:" .. port })
    local at, connack = {}, nil
    c:on({ connect = function() connack = corio.now() end, message = function(m)
      at[#at + 1] = { m.payload, corio.now() }
      if #at == 3 then c:disconnect() end
    end })
    loop:add(c)
    local ok, err = pcall(run, loop, 5)
    child:close()
    os.remove(script)
    assert(ok, err)
    assert.same({ "one", "two", "three" }, { at[1][1], at[2][1], at[3][1] })
    -- one and two come right after CONNACK, maybe in its segment: from LuaSocket's buffer
    -- then, which no readiness announces; three comes 50 ms later
    assert.is_true(at[2][2] - connack < 0.02, at[2][2] - connack)
    assert.is_true(at[3][2] - connack >= 0.045, at[3][2] - connack)
  end)

  it("hostile clients: a ping that does not count as a send, reconnect = NaN: no spinning", function()
    local loop = ioloop.create({ sleep_max = 0.05 })
    local a, b = S.pair()
    local pings = 0
    local deaf = { connection = { sock = a }, args = { keep_alive = 0.2 }, send_time = 0,
      _ioloop_iteration = function() end, send_pingreq = function() pings = pings + 1 end }
    local calls = 0
    local lost = { args = { reconnect = 0 / 0 }, reconnect_timer_start = os.time(),
      _ioloop_iteration = function(self) calls = calls + 1 self.ioloop = loop loop:can_sleep() end }
    loop:add(deaf)
    loop:add(lost)
    local c0 = cpu()
    corio.after(1, function() loop:remove(deaf) loop:remove(lost) end)
    run(loop)
    a:close() b:close()
    assert.is_true(pings >= 4 and pings <= 6, pings)   -- every keep_alive, not every pass
    assert.is_true(calls >= 15 and calls <= 25, calls) -- every sleep_max
    assert.is_true(cpu() - c0 < 0.05, cpu() - c0)
  end)

  it("an error in a client's callback leaves run_until_clients with that error", function()
    local loop = ioloop.create()
    local c = subscriber(loop, "corio/err", nil)
    c:on({ subscribe = function() error("callback failed on purpose") end })
    local ok, err = pcall(loop.run_until_clients, loop)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("callback failed on purpose", 1, true), err)
    assert.is_false(loop.running)
    c:disconnect()
    assert.same({}, loop.clients)
  end)
end)
