-- Thread spawn/switch micro-benchmark (Lua): ns per corio.spawn of a thread that ends at
-- once, per suspend/resume switch between two threads, and per yield through the loop
-- (corio.sleep(0)). Plain coroutine.create/resume as the reference.
-- Usage: lua5.4 bench/spawn.lua [N=1000000]
local corio = require "corio"
local n = tonumber(arg[1]) or 1000000
local clock = corio.now

local count = 0
local function nothing() count = count + 1 end

local t0 = clock()
for _ = 1, n do corio.spawn(nothing) end
local spawn_ns = (clock() - t0) * 1e9 / n

t0 = clock()
for _ = 1, n do coroutine.resume(coroutine.create(nothing)) end
local co_spawn_ns = (clock() - t0) * 1e9 / n

-- switch: a thread suspends, the main thread resumes it (resume runs it soon, via the loop)
local waiter = corio.spawn(function()
  for _ = 1, n / 10 do corio.suspend() end
end)
t0 = clock()
for _ = 1, n / 10 do
  corio.resume(waiter)
  corio.step(0)
end
local switch_ns = (clock() - t0) * 1e9 / (n / 10)

local yields = n / 10
t0 = clock()
corio.spawn(function()
  for _ = 1, yields do corio.sleep(0) end
end)
corio.run()
local yield_ns = (clock() - t0) * 1e9 / yields

print(string.format("impl=corio-lua(%s) n=%d spawn_ns=%.0f coroutine_create_resume_ns=%.0f switch_ns=%.0f yield_ns=%.0f ok=%d",
  jit and "luajit" or _VERSION:gsub("Lua ", "lua"), n, spawn_ns, co_spawn_ns, switch_ns, yield_ns,
  count == 2 * n and 1 or 0))
