-- client:receivesome([max [, prefix]]): corio's "whatever is available" receive (LuaSocket
-- has none), for echo servers and proxies. Loopback only; every wait has a timeout.
local corio = require "corio"
local S = require "corio_support"

local run, pair = S.run, S.pair
local V = S.pack  -- V(...): the values and how many (n), to compare whole results

describe("corio tcp receivesome", function()
  it("returns what is available at once, without waiting for more", function()
    run(function()
      local c, p = pair()
      assert(c:send("hello"))
      assert.same(V("hello", nil, nil), V(p:receivesome(100)))  -- receive's three values
      c:close()
      p:close()
    end)
  end)

  it("waits for the first bytes, then returns no more than max", function()
    run(function()
      local c, p = pair()
      corio.spawn(function()
        corio.sleep(0.05)
        c:send("0123456789")
      end)
      assert.equal("0123", p:receivesome(4))
      assert.equal("456789", p:receivesome())
      c:close()
      p:close()
    end)
  end)

  it("serves bytes a line receive left buffered first", function()
    run(function()
      local c, p = pair()
      assert(c:send("line\nrest"))
      assert.equal("line", p:receive())
      assert.equal("rest", p:receivesome(64))
      c:close()
      p:close()
    end)
  end)

  it("after its own close returns what is still buffered, then nil, 'closed', ''", function()
    run(function()
      local c, p = pair()
      assert(c:send("line\nrest"))
      assert.equal("line", p:receive())
      p:close()
      assert.same(V("re", nil, nil), V(p:receivesome(2)))
      assert.same(V("st", nil, nil), V(p:receivesome()))
      assert.same(V(nil, "closed", ""), V(p:receivesome()))
      c:close()
    end)
  end)

  it("prepends the prefix", function()
    run(function()
      local c, p = pair()
      assert(c:send("b"))
      assert.same(V("ab", nil, nil), V(p:receivesome(10, "a")))
      c:close()
      p:close()
    end)
  end)

  it("reports closed, timeout and a bad max as receive does", function()
    run(function()
      local c, p = pair(0.05)
      assert.same(V(nil, "timeout", ""), V(p:receivesome(10)))
      assert.same(V(nil, "timeout", "pre"), V(p:receivesome(10, "pre")))
      c:close()
      assert.same(V(nil, "closed", ""), V(p:receivesome(10)))
      assert.same(V(nil, "closed", "pre"), V(p:receivesome(10, "pre")))
      assert.has_error(function() p:receivesome(0) end)
      p:close()
      assert.same(V(nil, "closed", ""), V(p:receivesome(10)))
      -- a class other than tcp{client}: LuaSocket's argument error, as receive's
      local m = corio.tcp()
      local ok, err = pcall(m.receivesome, m)
      assert.is_false(ok)
      assert.equal("bad argument #1 to '?' (tcp{client} expected)", err)
      m:close()
    end)
  end)

  it("echoes large messages intact in pieces", function()
    run(function()
      local c, p = pair()
      local msg = string.rep("0123456789abcdef", 40000)  -- 640 KB: many reads
      corio.spawn(function() c:send(msg) end)
      local got = {}
      local n = 0
      while n < #msg do
        local d = assert(p:receivesome())
        assert.is_true(#d <= 65536)
        got[#got + 1] = d
        n = n + #d
      end
      assert.equal(msg, table.concat(got))
      c:close()
      p:close()
    end)
  end)
end)
