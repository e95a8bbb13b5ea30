-- client:receivesome([max [, prefix]]): corio's "whatever is available" receive (LuaSocket
-- has none), for echo servers and proxies. Loopback only; every wait has a timeout.
local corio = require "corio"
local S = require "corio_support"

local run, pair = S.run, S.pair

describe("corio tcp receivesome", function()
  it("returns what is available at once, without waiting for more", function()
    run(function()
      local c, p = pair()
      assert(c:send("hello"))
      assert.equal("hello", p:receivesome(100))
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

  it("prepends the prefix", function()
    run(function()
      local c, p = pair()
      assert(c:send("b"))
      assert.equal("ab", p:receivesome(10, "a"))
      c:close()
      p:close()
    end)
  end)

  it("reports closed, timeout and a bad max as receive does", function()
    run(function()
      local c, p = pair(0.05)
      local data, err, partial = p:receivesome(10)
      assert.is_nil(data)
      assert.equal("timeout", err)
      assert.equal("", partial)
      c:close()
      data, err, partial = p:receivesome(10)
      assert.is_nil(data)
      assert.equal("closed", err)
      assert.equal("", partial)
      assert.has_error(function() p:receivesome(0) end)
      p:close()
      data, err = p:receivesome(10)
      assert.is_nil(data)
      assert.equal("closed", err)
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
