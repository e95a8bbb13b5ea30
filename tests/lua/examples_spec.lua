-- The examples run: examples/workers_echo.lua with 2 workers echoes over loopback, prints the
-- cluster's figures once per second from one worker at a time (a node-wide resty.timer),
-- and stops cleanly on SIGTERM. Bounded: the example runs under `timeout 15`.
local S = require "corio_support"
local socket = require "socket"

describe("examples/workers_echo.lua", function()
  it("echoes on every worker, prints cluster-wide stats once per second, stops on SIGTERM", function()
    local port = S.free_port()
    local out_path = S.tmpname(".out")
    local inner = ("echo $$; exec %s examples/workers_echo.lua %d 2 > %s 2>&1")
      :format(S.shquote(S.interpreter()), port, S.shquote(out_path))
    local p = assert(io.popen(("timeout 15 sh -c %s; echo \"status $?\""):format(S.shquote(inner))))
    local pid = assert(tonumber(p:read("*l")))
    local function output()
      local f = io.open(out_path)
      local s = f and f:read("*a") or ""
      if f then f:close() end
      return s
    end
    local deadline = socket.gettime() + 5
    local clients = {}
    while #clients < 3 and socket.gettime() < deadline do
      local c = socket.connect("127.0.0.1", port)
      if c then clients[#clients + 1] = c else socket.sleep(0.05) end
    end
    assert.equal(3, #clients, output())
    for k, c in ipairs(clients) do
      c:settimeout(5)
      assert(c:send(("hello %d\nagain %d\n"):format(k, k)))
      assert.equal("hello " .. k, c:receive("*l"))
      assert.equal("again " .. k, c:receive("*l"))
    end
    -- a stats line that counts all three connections and six lines, within ~2 intervals
    local stats
    deadline = socket.gettime() + 4
    while not stats and socket.gettime() < deadline do
      stats = output():match("%[worker %d%] cluster: 2/2 workers answered, 3 connections open, 3 in all, 6 lines echoed")
      if not stats then socket.sleep(0.1) end
    end
    for _, c in ipairs(clients) do c:close() end
    os.execute("kill -TERM " .. pid)
    local code = tonumber(p:read("*a"):match("status (%d+)"))
    p:close()
    local out = output()
    os.remove(out_path)
    assert.truthy(stats, out)
    assert.equal(0, code, out)
    assert.matches("all workers stopped", out, 1, true)
    assert.matches("worker 1 stopping", out, 1, true)
    assert.matches("worker 2 stopping", out, 1, true)
    -- once per second in all: never two stats lines from one second
    local n_stats = select(2, out:gsub("cluster:", ""))
    assert.is_true(n_stats >= 1 and n_stats <= 4, out)
  end)
end)
