-- A real mosquitto for the specs (not a spec): started on free 127.0.0.1 ports with a
-- generated config, optionally with a TLS listener whose certificates the openssl CLI makes
-- by tls_support (a CA, and a server certificate for 127.0.0.1 and localhost), stopped by PID.
-- Every wait is bounded. Blocking LuaSocket calls only: usable before corio runs anything.
local socket = require "socket"

local M = {}

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function exe(name)
  for _, dir in ipairs({ "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin" }) do
    local path = dir .. "/" .. name
    local f = io.open(path)
    if f then f:close() return path end
  end
  error(name .. " not found: scripts/bootstrap installs mosquitto and mosquitto-clients", 0)
end
M.exe = exe

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A directory of its own, readable by the broker (which drops root for its own user).
local function tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(sh("mkdir -m 0755 " .. name), "cannot make " .. name)
  return name
end

local function listening(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok
end

-- start{ tls = true } -> broker: .port, .tls_port, .ca (path), .pid, :stop(), :pause(),
-- :resume(), :alive(). The broker lives until stop() (or the process exits: it is killed then).
function M.start(opts)
  opts = opts or {}
  local dir = tmpdir()
  local b = { dir = dir, port = opts.port or free_port() }
  local conf = { "per_listener_settings false", "allow_anonymous true", "persistence false",
    "listener " .. b.port .. " 127.0.0.1" }
  if opts.tls then
    b.certs = require("tls_support").make(dir)
    b.ca = b.certs.ca
    b.tls_port = free_port()
    conf[#conf + 1] = "listener " .. b.tls_port .. " 127.0.0.1"
    conf[#conf + 1] = "cafile " .. b.ca
    conf[#conf + 1] = "certfile " .. b.certs.server.cert
    conf[#conf + 1] = "keyfile " .. b.certs.server.key
  end
  write(dir .. "/mosquitto.conf", table.concat(conf, "\n") .. "\n")
  local p = assert(io.popen(("%s -c %s/mosquitto.conf >%s/log 2>&1 & echo $!"):format(exe("mosquitto"), dir, dir)))
  b.pid = tonumber(p:read("*l"))
  p:close()
  assert(b.pid, "mosquitto did not start")
  setmetatable(b, { __index = M.broker })
  local deadline = socket.gettime() + 10
  while not (listening(b.port) and (not b.tls_port or listening(b.tls_port))) do
    if socket.gettime() > deadline or not b:alive() then
      local log = io.open(dir .. "/log")
      local text = log and log:read("*a") or ""
      if log then log:close() end
      b:stop()
      error("mosquitto did not come up on 127.0.0.1:" .. b.port .. ": " .. text, 0)
    end
    socket.sleep(0.02)
  end
  return b
end

M.broker = {}

-- Running (or stopped by SIGSTOP); a zombie nobody reaped yet counts as gone.
function M.broker:alive()
  local f = self.pid and io.open("/proc/" .. self.pid .. "/stat")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

function M.broker:pause() assert(sh("kill -STOP " .. self.pid)) end
function M.broker:resume() assert(sh("kill -CONT " .. self.pid)) end

-- Stops the broker (SIGTERM, SIGKILL after 5 s) and waits until it is gone.
function M.broker:stop()
  if not self.pid then return end
  sh("kill -CONT " .. self.pid .. " 2>/dev/null; kill " .. self.pid .. " 2>/dev/null")
  local deadline = socket.gettime() + 5
  while self:alive() and socket.gettime() < deadline do socket.sleep(0.01) end
  if self:alive() then sh("kill -9 " .. self.pid .. " 2>/dev/null") end
  self.pid = nil
  sh("rm -rf " .. self.dir)
end

-- A shell command line that publishes each line of its stdin to topic (one connection).
function M.broker:pub_lines(topic)
  return ("%s -h 127.0.0.1 -p %d -t %s -l"):format(exe("mosquitto_pub"), self.port, topic)
end

return M
