-- The Lua echo server (bench/echo.lua) with N pending timers (due in 60..120 s, so none
-- fires during the idle CPU benchmark). Usage: lua5.4 bench/idle.lua PORT [N=10000]
local corio = require "corio"
local n = tonumber(arg[2]) or 10000
math.randomseed(42)
local function never() error("a pending timer fired") end
for _ = 1, n do corio.after(60 + 60 * math.random(), never) end
arg = { [0] = arg[0], arg[1] }
dofile((arg[0]:match("^(.*/)") or "./") .. "echo.lua")
