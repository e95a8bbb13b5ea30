-- core.leases: node-wide leases from Lua — acquire/lease/erase, another process (a child
-- interpreter) seeing the same table, and hostile arguments.
local core = require "corio.core"
local S = require "corio_support"

local function unique(tag)
  return ("spec.%s.%d.%d"):format(tag, math.floor(core.now() * 1e6) % 1000000, math.random(1, 1e6))
end

describe("core.leases", function()
  local name, leases
  before_each(function()
    name = unique("l")
    leases = core.leases(name)
  end)
  after_each(function()
    core.unlink_leases(name)
  end)

  it("takes a lease once until it expires, even against its holder", function()
    assert.is_true(leases:acquire("job", 0.05))
    assert.is_false(leases:acquire("job", 0.05))
    local pid, left = leases:lease("job")
    assert.is_number(pid)
    assert.is_true(pid > 0)
    assert.is_true(left > 0 and left <= 0.05, "left " .. tostring(left))
    local t0 = core.now()
    while core.now() - t0 < 0.06 do end  -- busy: no loop needed
    pid, left = leases:lease("job")
    assert.is_true(left < 0, "expired lease shows a negative time left")
    assert.is_true(leases:acquire("job", 10))
    assert.is_nil(leases:lease("never"))
    assert.is_true(leases:erase("job"))
    assert.is_false(leases:erase("job"))
    assert.is_nil(leases:lease("job"))
  end)

  it("gives one table per name and names its shm object", function()
    local again = core.leases(name)
    assert.is_true(leases:acquire("k", 10))
    assert.is_false(again:acquire("k", 10))
    assert.matches("^/corio%.%d+%." .. name:gsub("%.", "%%.") .. "$", leases:name())
    assert.matches("corio.leases: /corio", tostring(leases))
  end)

  it("is shared with another process", function()
    assert.is_true(leases:acquire("shared", 10))
    local out = S.child([[
      local core = require "corio.core"
      local l = core.leases(arg[1])
      local pid, left = l:lease("shared")
      print(l:acquire("shared", 10), pid, left > 5, l:acquire("child's", 10))
    ]], name)
    assert.matches("false\t%d+\ttrue\ttrue", out)
    assert.is_false(leases:acquire("child's", 10))
  end)

  it("refuses bad names with an error naming them", function()
    for _, bad in ipairs({ "", "a/b", "/x", ("n"):rep(65), "a b", "x\0y" }) do
      local ok, err = pcall(core.leases, bad)
      assert.is_false(ok)
      assert.matches("shm name must be 1%-64 of %[A%-Za%-z0%-9_.%-%]", err)
      local nok, uerr = core.unlink_leases(bad)
      assert.is_nil(nok)
      assert.matches("shm name must be", uerr)
    end
    assert.has_error(function() core.leases() end)
    assert.has_error(function() core.leases({}) end)
  end)

  it("answers nil, message for keys the table refuses", function()
    for _, bad in ipairs({ "", ("k"):rep(201) }) do
      local ok, err = leases:acquire(bad, 1)
      assert.is_nil(ok)
      assert.equal("key must be 1-200 bytes", err)
      ok, err = leases:lease(bad)
      assert.is_nil(ok)
      assert.equal("key must be 1-200 bytes", err)
      ok, err = leases:erase(bad)
      assert.is_nil(ok)
      assert.equal("key must be 1-200 bytes", err)
    end
    assert.is_true(leases:acquire(("k"):rep(200), 1))
    assert.is_true(leases:acquire("a\0b", 1))
    assert.is_true(leases:acquire("a", 1))
  end)

  it("raises on wrong types and ttls, clamps huge ones", function()
    assert.has_error(function() leases:acquire(42, 1) end, nil)  -- a number is not a key
    assert.has_error(function() leases:acquire(nil, 1) end)
    assert.has_error(function() leases:acquire({}, 1) end)
    assert.has_error(function() leases:lease(7) end)
    assert.has_error(function() leases:erase(true) end)
    for _, ttl in ipairs({ 0, -1, 0 / 0, -math.huge }) do
      local ok, err = pcall(leases.acquire, leases, "k", ttl)
      assert.is_false(ok)
      assert.matches("ttl must be a positive number of seconds", err)
    end
    assert.has_error(function() leases:acquire("k", "soon") end)
    assert.has_error(function() leases:acquire("k") end)
    assert.is_nil(leases:lease("k"))  -- none of the above took it
    assert.is_true(leases:acquire("k", math.huge))
    local _, left = leases:lease("k")
    assert.is_true(left > 1e8)
    assert.is_true(leases:acquire("big", 1e300))
    -- methods called on something else
    assert.has_error(function() leases.acquire({}, "k", 1) end)
    assert.has_error(function() leases.name(io.stdout) end)
  end)

  it("refuses a region of another layout with a clear error", function()
    local garbage = unique("g")
    local p = io.popen("id -u")
    local uid = p:read("*l")
    p:close()
    local f = assert(io.open(("/dev/shm/corio.%s.%s"):format(uid, garbage), "w"))
    f:write(("garbage"):rep(100))
    f:close()
    os.execute(("chmod 600 /dev/shm/corio.%s.%s"):format(uid, garbage))
    local ok, err = pcall(core.leases, garbage)
    core.unlink_leases(garbage)
    assert.is_false(ok)
    assert.matches("corio.leases%(\"" .. garbage:gsub("%.", "%%.") .. "\"%): shm region has another layout or owner", err)
  end)

  it("survives being collected while still held elsewhere", function()
    local other = core.leases(name)
    assert.is_true(other:acquire("kept", 10))
    other = nil
    collectgarbage()
    collectgarbage()
    assert.is_false(leases:acquire("kept", 10))
    leases = nil
    collectgarbage()
    collectgarbage()
    local fresh = core.leases(name)  -- the region outlives every mapping of it
    assert.is_false(fresh:acquire("kept", 10))
  end)
end)
