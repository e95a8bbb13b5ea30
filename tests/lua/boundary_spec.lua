-- No C++ exception crosses into Lua: one thrown by the binding (creating the loop when the
-- descriptor table is full, an allocation failing) becomes a Lua error with a message
-- that says what failed. Each case runs in a child interpreter: on Lua 5.4 an exception
-- through Lua's C frames aborts the process.
local S = require "corio_support"

local under_asan = (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) ~= nil

-- As S.child, under `shell` (a prefix: ulimit ...). Under AddressSanitizer the children
-- inherit LD_PRELOAD with libstdc++ in it (tests/CMakeLists.txt): a throw is interceptable.
local function run_child(source, shell)
  return S.child_in(shell or "", source)
end

describe("the C++/Lua boundary", function()
  it("loading corio.core with no descriptor left is a Lua error naming the cause", function()
    -- The library is linked in first (dlopen needs a descriptor); then every descriptor is
    -- taken, so creating the loop's epoll instance fails with EMFILE inside luaopen.
    local out, status = run_child([[
      local path = assert(package.searchpath("corio.core", package.cpath))
      assert(package.loadlib(path, "*"))
      local open = assert(package.loadlib(path, "luaopen_corio_core"))
      local held = {}
      while true do
        local f = io.open("/dev/null")
        if not f then break end
        held[#held + 1] = f
      end
      local ok, err = pcall(open, "corio.core")
      for _, f in ipairs(held) do f:close() end
      print("loaded:", ok, err)
      assert(not ok, "loaded with no descriptor left")
      assert(type(err) == "string" and err:find("open files", 1, true), "message: " .. tostring(err))
      -- with descriptors again, the module loads and works
      local corio = require "corio"
      local ran = false
      corio.run(function() corio.sleep(0.001) ran = true end)
      assert(ran)
      print("recovered")
    ]])
    assert.equal(0, status, out)
    assert.matches("recovered", out, 1, true)
  end)

  it("an allocation failing in the binding is a Lua 'not enough memory' error", function()
    if under_asan then
      pending("an address-space limit and AddressSanitizer do not mix")
      return
    end
    -- Under a 200 MiB address-space limit, events are added until an allocation fails:
    -- the C++ side (an Event, a map node) or Lua's, whichever comes first, must end as a
    -- Lua error, and the process goes on once memory is freed.
    local out, status = run_child([[
      local event = require "corio.event"
      local sets, err = {}, nil
      local ok = pcall(function()
        while true do
          local ev = event.newset()
          sets[#sets + 1] = ev
          for i = 1, 10000 do
            local good, e = pcall(ev.add, ev, "v", nil, i)
            if not good then err = e error(e, 0) end
          end
        end
      end)
      print("failed with:", err)
      assert(err, "no allocation failed")
      assert(err == "not enough memory" or err:find("not enough memory", 1, true), err)
      for _, ev in ipairs(sets) do ev:clear() end
      sets = nil
      collectgarbage()
      collectgarbage()
      local ev = event.newset()
      ev:add("v", true, "after")
      for _, _, _, ctx in ev(false) do print("delivered", ctx) end
    ]], "ulimit -v " .. 200 * 1024 .. ";")
    assert.equal(0, status, out)
    assert.matches("delivered\tafter", out, 1, true)
  end)
end)
