-- corio.mqtt: luamqtt's client API on corio's native client, against a real mosquitto the
-- spec starts (and stops by PID). Handlers run in corio threads (they may sleep); every
-- QoS both ways, cross-checked with mosquitto_pub / mosquitto_sub; 3.1.1 and 5.0 with
-- properties; run_ioloop / run_sync; corio clients in corio.ioloop beside a luamqtt-style
-- client (tests/lua/mqtt_contract.lua); the last will; mqtts; hostile arguments.
package.loaded["mqtt.ioloop"] = require "corio.ioloop"  -- for mqtt_contract, luamqtt-style
local mqtt = require "corio.mqtt"
local corio = require "corio"
local S = require "corio_support"
local mq = require "mosquitto_support"

describe("corio.mqtt (luamqtt's client API) against a real mosquitto", function()
  local broker
  setup(function() broker = mq.start({ tls = true }) end)
  teardown(function() if broker then broker:stop() end end)
  local function uri() return "127.0.0.1:" .. broker.port end

  -- Runs until cond() or `limit` seconds, from a corio thread.
  local function wait_for(cond, limit)
    local deadline = corio.now() + (limit or 5)
    while not cond() do
      assert(corio.now() < deadline, "condition not met in time")
      corio.sleep(0.005)
    end
  end

  for _, version in ipairs({ mqtt.v311, mqtt.v50 }) do
    it("every QoS to itself, acknowledged by hand, version " .. version, function()
      S.run(10, function()
        local got, acks, suback = {}, {}, nil
        local c = mqtt.client{ uri = uri(), clean = true, version = version, id = S.unique("self") }
        c:on{
          connect = function(connack, client)
            assert.equal(c, client)
            assert.equal(0, connack.rc)
            c:subscribe{ topic = "corio/lua/#", qos = 2, callback = function(s) suback = s end }
          end,
          message = function(msg)
            corio.sleep(0.01)  -- a handler may wait: it runs in a thread of its own
            assert(c:acknowledge(msg))
            got[#got + 1] = msg
          end,
        }
        c:start_connecting()
        wait_for(function() return suback end)
        assert.same({ 2 }, suback.rc)
        for q = 0, 2 do
          local props = version == mqtt.v50 and { content_type = "text/plain" } or nil
          local user = version == mqtt.v50 and { k = "v" .. q } or nil
          assert.is_true(c:publish{ topic = "corio/lua/" .. q, payload = "p\0" .. q, qos = q,
            properties = props, user_properties = user,
            callback = function(ack) acks[#acks + 1] = ack end })
        end
        wait_for(function() return #got == 3 and #acks == 3 end)
        table.sort(got, function(a, b) return a.qos < b.qos end)
        for q = 0, 2 do
          local m = got[q + 1]
          assert.equal("corio/lua/" .. q, m.topic)
          assert.equal("p\0" .. q, m.payload)
          assert.equal(q, m.qos)
          if version == mqtt.v50 then
            assert.equal("text/plain", m.properties.content_type)
            assert.equal("v" .. q, m.user_properties.k)
          end
        end
        c:disconnect()
      end)
    end)
  end

  it("cross-checked with mosquitto_pub and mosquitto_sub at every QoS", function()
    S.run(20, function()
      local got = {}
      local ready = false
      local c = mqtt.client{ uri = uri(), clean = true, id = S.unique("cross") }
      c:on{
        connect = function() c:subscribe{ topic = "corio/lua/in", qos = 2, callback = function() ready = true end } end,
        message = function(msg) c:acknowledge(msg) got[msg.payload] = msg.qos end,
      }
      c:start_connecting()
      wait_for(function() return ready end)
      for q = 0, 2 do
        os.execute(("timeout 10 %s -h 127.0.0.1 -p %d -q %d -t corio/lua/in -m from-pub-%d")
          :format(mq.exe("mosquitto_pub"), broker.port, q, q))
      end
      wait_for(function() return got["from-pub-2"] and got["from-pub-1"] and got["from-pub-0"] end)
      for q = 0, 2 do assert.equal(q, got["from-pub-" .. q]) end
      local out = S.tmpname(".sub")
      os.execute(("timeout 10 %s -h 127.0.0.1 -p %d -q 2 -t corio/lua/out -C 3 -F '%%q %%p' > %s 2>&1 &")
        :format(mq.exe("mosquitto_sub"), broker.port, out))
      corio.sleep(0.5)  -- its SUBSCRIBE is in
      for q = 0, 2 do c:publish{ topic = "corio/lua/out", payload = "from-corio-" .. q, qos = q } end
      local text
      wait_for(function()
        local f = io.open(out)
        text = f and f:read("*a") or ""
        if f then f:close() end
        return #text >= 45
      end, 10)
      os.remove(out)
      assert.equal("0 from-corio-0\n1 from-corio-1\n2 from-corio-2\n", text)
      c:disconnect()
    end)
  end)

  it("run_ioloop returns once every client has disconnected; corio.ioloop hosts both kinds", function()
    local contract = require "mqtt_contract"
    local loop = require("corio.ioloop").get()
    local seen, old_seen = {}, {}
    local c = mqtt.client{ uri = uri(), clean = true, id = S.unique("ioloop") }
    local old = contract.client{ uri = uri(), id = S.unique("old"), clean = true, keep_alive = 30 }
    old:on{ message = function(msg) old_seen[#old_seen + 1] = msg.payload end }
    c:on{
      connect = function()
        c:subscribe{ topic = "corio/lua/both", qos = 1, callback = function()
          c:publish{ topic = "corio/lua/both", payload = "hello", qos = 1 }
        end }
      end,
      message = function(msg)
        c:acknowledge(msg)
        seen[#seen + 1] = msg.payload
        c:disconnect()
        loop:remove(old)
      end,
    }
    local dog = corio.after(10, function() c:disconnect() loop:remove(old) end)
    loop:add(old)
    mqtt.run_ioloop(c)
    dog:cancel()
    assert.same({ "hello" }, seen)
    assert.is_nil(next(loop.clients))
  end)

  it("run_sync returns when the client is done", function()
    local c = mqtt.client{ uri = uri(), clean = true, id = S.unique("sync") }
    local n = 0
    c:on{ connect = function() n = n + 1 c:disconnect() end }
    local dog = corio.after(10, function() c:disconnect() end)
    assert.is_true(mqtt.run_sync(c))
    dog:cancel()
    assert.equal(1, n)
  end)

  it("the last will goes out when a client is closed without DISCONNECT", function()
    S.run(10, function()
      local wills = {}
      local watcher = mqtt.client{ uri = uri(), clean = true, id = S.unique("watcher") }
      local ready = false
      watcher:on{
        connect = function() watcher:subscribe{ topic = "corio/lua/will", qos = 1, callback = function() ready = true end } end,
        message = function(msg) watcher:acknowledge(msg) wills[#wills + 1] = msg.payload end,
      }
      watcher:start_connecting()
      wait_for(function() return ready end)
      local up = false
      local c = mqtt.client{ uri = uri(), clean = true, id = S.unique("doomed"),
        will = { topic = "corio/lua/will", payload = "gone", qos = 1 } }
      c:on{ connect = function() up = true end }
      c:start_connecting()
      wait_for(function() return up end)
      c._core:close()  -- the socket closes: no DISCONNECT
      wait_for(function() return #wills == 1 end)
      assert.same({ "gone" }, wills)
      -- a client process killed with SIGKILL once connected
      local out = S.child(([[
        local mqtt = require "corio.mqtt"
        local c = mqtt.client{ uri = %q, clean = true, id = "killed",
          will = { topic = "corio/lua/will", payload = "killed", qos = 1 } }
        c:on{ connect = function()
          local pid = io.open("/proc/self/stat"):read("*l"):match("^(%%d+)")
          os.execute("kill -KILL " .. pid)
        end }
        mqtt.run_ioloop(c)
      ]]):format(uri()))
      assert.truthy(out:find("status 137", 1, true), out)
      wait_for(function() return #wills == 2 end)
      assert.same({ "gone", "killed" }, wills)
      watcher:disconnect()
    end)
  end)

  it("mqtts:// verified against the broker's CA; a wrong CA is a clear error", function()
    S.run(10, function()
      local got
      local c = mqtt.client{ uri = "mqtts://127.0.0.1:" .. broker.tls_port, clean = true, id = S.unique("tls"),
        secure = { cafile = broker.ca } }
      c:on{
        connect = function() c:subscribe{ topic = "corio/lua/tls", qos = 1, callback = function()
          c:publish{ topic = "corio/lua/tls", payload = "secret", qos = 1 } end } end,
        message = function(msg) c:acknowledge(msg) got = msg.payload end,
      }
      c:start_connecting()
      wait_for(function() return got end)
      assert.equal("secret", got)
      c:disconnect()
      local err
      local bad = mqtt.client{ uri = "mqtts://127.0.0.1:" .. broker.tls_port, clean = true, id = S.unique("untrusting") }
      bad:on{ error = function(e) err = e end }
      bad:start_connecting()
      wait_for(function() return err end)
      assert.truthy(err:find("certificate verify failed", 1, true), err)
    end)
  end)

  it("hostile arguments are clear errors", function()
    local function fails(args, pattern)
      local ok, err = pcall(mqtt.client, args)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(pattern, 1, true), tostring(err))
    end
    fails({ clean = true }, "uri")
    fails({ uri = "127.0.0.1" }, "clean")
    fails({ uri = "127.0.0.1", clean = true, version = 3 }, "version")
    fails({ uri = "ws://127.0.0.1", clean = true }, "scheme")
    fails({ uri = "127.0.0.1", clean = true, keep_alive = 0 / 0 }, "keep_alive")
    fails({ uri = "127.0.0.1", clean = true, keep_alive = math.huge }, "keep_alive")
    fails({ uri = "127.0.0.1", clean = true, password = "x" }, "username")
    fails({ uri = "127.0.0.1", clean = true, [1] = "x" }, "string key")
    fails({ uri = "127.0.0.1", clean = true, version = 5, properties = { no_such = 1 } }, "unknown property")
    local c = mqtt.client{ uri = uri(), clean = true }
    assert.has_error(function() c:publish{ topic = "t", qos = 3 } end)
    assert.has_error(function() c:publish{ payload = "no topic" } end)
    assert.has_error(function() c:subscribe{ topic = 42 } end)
    assert.has_error(function() c:on("nonsense", print) end)
    assert.has_error(function() c:on("message", 1, 2) end)
  end)

  it("a broker that goes away: the error and close handlers, then a reconnect when it is back", function()
    local b = mq.start()
    S.run(20, function()
      local errors, closes, connects = {}, 0, 0
      local c = mqtt.client{ uri = "127.0.0.1:" .. b.port, clean = true, id = S.unique("back"), reconnect = 0.1 }
      c:on{
        connect = function() connects = connects + 1 end,
        error = function(e) errors[#errors + 1] = e end,
        close = function(conn) closes = closes + 1 assert.is_string(conn.close_reason) end,
      }
      local loop = require("corio.ioloop").create()
      loop:add(c)  -- starts it
      wait_for(function() return connects == 1 end)
      local port = b.port
      b:stop()
      wait_for(function() return closes == 1 end)
      assert.truthy(errors[1])
      assert.is_true(loop.clients[c], "a client that will reconnect stays in its ioloop")
      b = mq.start({ port = port })
      wait_for(function() return connects == 2 end, 15)
      c:disconnect()
      wait_for(function() return not loop.clients[c] end)  -- done: it leaves
    end)
    b:stop()
  end)
end)
