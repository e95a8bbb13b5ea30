-- Timer lateness from Lua: how long after its deadline corio.sleep(0.001) returns, on an
-- otherwise idle loop. Usage: lua5.4 bench/timer_lateness.lua [count=10000] [delay_us=1000]
local corio = require "corio"
local count = tonumber(arg[1]) or 10000
local delay = (tonumber(arg[2]) or 1000) / 1e6
local late, early = {}, 0
corio.run(function()
  for i = 1, count do
    local deadline = corio.now() + delay
    corio.sleep(delay)
    local l = corio.now() - deadline
    if l < 0 then early = early + 1 end
    late[i] = l * 1e6
  end
end)
table.sort(late)
local function pct(p) return late[math.floor(p * (#late - 1)) + 1] end
print(string.format("timer_lateness impl=corio-lua count=%d delay_us=%d p50_us=%.1f p99_us=%.1f max_us=%.1f early=%d",
  count, delay * 1e6, pct(0.5), pct(0.99), late[#late], early))
os.exit(early == 0 and 0 or 1)
