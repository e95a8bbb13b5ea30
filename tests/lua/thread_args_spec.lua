-- Many arguments moved onto another thread's stack: corio.spawn/after/every/run(f, ...)
-- and corio.resume(thread, ...) give f (or suspend) every value, or raise a clear error
-- when the other stack cannot grow that far; never a crash. Each case runs in a child
-- interpreter: a stack overflowed by lua_xmove corrupts the heap.
local S = require "corio_support"

-- The child: calls each API with n values (1..n, via unpack) and prints one line per
-- call: "<api> <n> ok" (every value arrived), "<api> <n> error <message>" or "... WRONG".
local script = [[
local corio = require "corio"
local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end
local function same(n, got)
  if not got or got.n ~= n then return false end
  for i = 1, n do if got[i] ~= i then return false end end
  return true
end
local apis = {
  spawn = function(t, n, done) corio.spawn(function(...) done(pack(...)) end, unpack(t, 1, n)) end,
  run = function(t, n, done) corio.run(function(...) done(pack(...)) end, unpack(t, 1, n)) end,
  after = function(t, n, done) corio.after(0, function(...) done(pack(...)) end, unpack(t, 1, n)) end,
  every = function(t, n, done)
    local timer
    timer = corio.every(0.001, function(...) timer:cancel() done(pack(...)) end, unpack(t, 1, n))
  end,
  resume = function(t, n, done)
    local th = corio.spawn(function() done(pack(corio.suspend())) end)
    local ok, err = corio.resume(th, unpack(t, 1, n))
    if not ok then error(err, 0) end
  end,
}
for _, n in ipairs({ tonumber(arg[1]) }) do
  local t = {}
  for i = 1, n do t[i] = i end
  for _, name in ipairs({ "spawn", "run", "after", "every", "resume" }) do
    local got
    local ok, err = pcall(apis[name], t, n, function(p) got = p end)
    if ok then corio.run() end
    if not ok then
      print(name, n, "error", err)
    elseif same(n, got) then
      print(name, n, "ok")
    else
      print(name, n, "WRONG", got and got.n)
    end
    collectgarbage()
  end
end
print("done")
]]

local function run_child(n)
  local out = S.child(script, tostring(n))
  return out, tonumber(out:match("status (%d+)%s*$"))
end

describe("many arguments to another thread", function()
  for _, n in ipairs({ 40, 200, 5000, 100000, 1000000 }) do
    it(("with %d values: every value, or a clear error"):format(n), function()
      local out, status = run_child(n)
      assert.equal(0, status, out)
      assert.matches("done", out, 1, true)
      assert.not_matches("WRONG", out, 1, true)
      for _, name in ipairs({ "spawn", "run", "after", "every", "resume" }) do
        local line = out:match("\n?(" .. name .. "\t" .. n .. "\t[^\n]*)")
        assert(line, name .. " printed nothing:\n" .. out)
        if n <= 200 then
          assert.equal(name .. "\t" .. n .. "\tok", line)
        elseif not line:find("\tok$") then
          -- too many for some stack: said so in words, not a crash or a truncated list
          assert.matches("too many", line, 1, true)
        end
      end
    end)
  end
end)
