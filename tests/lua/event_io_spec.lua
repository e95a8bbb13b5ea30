-- corio.event: descriptor events (r/R w/W x/X) for LuaSocket objects, Lua file handles,
-- objects with getfd() and integer descriptors. Loopback only; every wait is bounded.
local event = require "corio.event"
local socket = require "socket"
local S = require "event_support"
local now, collect = S.now, S.collect

local function ctxs(list)
  local r = {}
  for i, e in ipairs(list) do r[i] = e.ctx end
  return r
end

local function fdnum(sock) return math.floor(sock:getfd()) end

local function tmpfile(content)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(content or "data\n")
  f:close()
  return name
end

-- As the spec demands, no descriptor is closed while an event for it is in a set: the
-- loop would keep the dead registration, and a new descriptor that gets the same number
-- would then never be reported (sets awaiting garbage collection count too). So every
-- set made here is cleared after each test, before the sockets are closed.
local sets = {}
local function newset(...)
  local ev = event.newset(...)
  sets[#sets + 1] = ev
  return ev
end

describe("corio.event descriptors", function()
  local client, peer
  before_each(function() client, peer = S.tcp_pair() end)
  after_each(function()
    for _, ev in ipairs(sets) do ev:clear() end
    sets = {}
    client:close()
    peer:close()
  end)

  describe("r: readable", function()
    it("is not returned while nothing can be read", function()
      local ev = newset()
      ev:add("r", client, "c")
      assert.same({}, collect(ev, false))
      assert.same({}, collect(ev, 0.05))
      assert.equal(1, #ev)
    end)

    it("is returned with reason 'readable', the socket as source", function()
      local ev = newset()
      local id = ev:add("r", client, "ctx")
      assert.equal(1, peer:send("x"))
      local got = collect(ev, 2)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("readable", got[1].why)
      assert.equal(client, got[1].src)
      assert.equal("ctx", got[1].ctx)
      assert.equal("x", client:receive(1))
    end)

    it("wakes a blocked iterator when data arrives", function()
      local ev = newset()
      ev:add("r", client, "c")
      ev:add("t", 0.05, "send") -- data is sent from the timer's turn
      local t0 = now()
      local got = collect(ev, true, function(e)
        if e.ctx == "send" then peer:send("late") end
      end, t0)
      assert.same({ "send", "c" }, ctxs(got))
      assert.equal("readable", got[2].why)
      assert.is_true(got[2].at < 0.55)
    end)

    it("one-shot: is deleted once returned", function()
      local ev = newset()
      local id = ev:add("r", client)
      peer:send("x")
      assert.equal(1, #collect(ev, 2))
      assert.equal(0, #ev)
      assert.is_nil(ev:del(id))
      assert.same({}, collect(ev, 0.02))
    end)

    it("R: is returned again while data stays unread (level)", function()
      local ev = newset()
      local id = ev:add("R", client, "c")
      peer:send("abc")
      for _ = 1, 3 do
        local got = collect(ev, 2)
        assert.equal(1, #got)
        assert.equal(id, got[1].id)
        assert.equal("readable", got[1].why)
      end
      assert.equal("abc", client:receive(3))
      assert.same({}, collect(ev, 0.05)) -- drained: silent
      peer:send("d")
      assert.equal(id, collect(ev, 2)[1].id) -- and re-armed
      assert.equal(id, ev:del(id))
    end)

    it("reports end of stream as readable", function()
      local ev = newset()
      ev:add("r", client, "eof")
      peer:close()
      local got = collect(ev, 2)
      assert.same({ "eof" }, ctxs(got))
      assert.equal("readable", got[1].why)
      local data, err = client:receive(1)
      assert.is_nil(data)
      assert.equal("closed", err)
    end)
  end)

  describe("w: writable", function()
    it("is returned at once for a connected socket", function()
      local ev = newset()
      local id = ev:add("w", client, "w")
      local got = collect(ev, 2)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("writable", got[1].why)
      assert.equal(client, got[1].src)
      assert.equal(0, #ev)
    end)

    it("W: stays in the set and comes back each collection", function()
      local ev = newset()
      local id = ev:add("W", client, "w")
      for _ = 1, 3 do
        local got = collect(ev, 2)
        assert.equal(1, #got)
        assert.equal("writable", got[1].why)
      end
      assert.equal(1, #ev)
      ev:del(id)
    end)

    it("is not returned while the send buffer is full", function()
      client:settimeout(0)
      local chunk = string.rep("z", 65536)
      local full = false
      for _ = 1, 4096 do -- bounded: loopback buffers hold a few MB at most
        local n, err = client:send(chunk)
        if not n then
          assert.equal("timeout", err)
          full = true
          break
        end
      end
      assert.is_true(full, "could not fill the send buffer")
      local ev = newset()
      local id = ev:add("w", client, "w")
      assert.same({}, collect(ev, 0.05))
      -- The peer drains: the event comes once there is room again.
      peer:settimeout(0)
      local deadline, got = now() + 3
      repeat
        repeat
          local data, _, partial = peer:receive(65536)
        until not data and (partial == nil or partial == "")
        got = collect(ev, 0.01)
      until #got > 0 or now() > deadline
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("writable", got[1].why)
    end)
  end)

  describe("r, w and x on one descriptor", function()
    it("are separate events", function()
      local ev = newset()
      local r = ev:add("R", client, "r")
      local w = ev:add("W", client, "w")
      local x = ev:add("X", client, "x")
      assert.equal(3, #ev)
      local got = collect(ev, 2)
      assert.same({ "w" }, ctxs(got))
      peer:send("x")
      got = collect(ev, 2)
      table.sort(got, function(a, b) return a.ctx < b.ctx end)
      assert.same({ "r", "w" }, ctxs(got))
      assert.same({ "readable", "writable" }, { got[1].why, got[2].why })
      for _, id in ipairs({ r, w, x }) do assert.equal(id, ev:del(id)) end
    end)
  end)

  describe("a second event of the same letter for a descriptor", function()
    it("replaces the first, whose id becomes invalid", function()
      local ev = newset()
      local first = ev:add("R", client, "first")
      local second = ev:add("r", client, "second")
      assert.are_not.equal(first, second)
      assert.equal(1, #ev)
      assert.is_nil(ev:set(first, "x"))
      assert.is_nil(ev:trigger(first))
      peer:send("x")
      local got = collect(ev, 2)
      assert.same({ "second" }, ctxs(got))
      assert.equal(second, got[1].id)
      assert.is_nil(ev:del(first))
      assert.equal(0, #ev)
    end)

    it("replaces it whatever form names the descriptor", function()
      local ev = newset()
      local by_object = ev:add("w", client, "object")
      local by_number = ev:add("w", fdnum(client), "number")
      assert.equal(1, #ev)
      assert.is_nil(ev:del(by_object))
      local got = collect(ev, 2)
      assert.equal(by_number, got[1].id)
      assert.equal(fdnum(client), got[1].src)
    end)

    it("replaces a queued one: the old event is not returned", function()
      local ev, other = newset(), newset()
      ev:add("w", client, "old")
      other:add("t", 0.01)
      collect(other, 1) -- runs the shared loop: "old" fires and is queued in ev
      ev:add("w", client, "new")
      assert.same({ "new" }, ctxs(collect(ev, 2)))
    end)

    it("leaves other descriptors alone", function()
      local ev = newset()
      ev:add("w", client, "client")
      ev:add("w", peer, "peer")
      assert.equal(2, #ev)
      local got = ctxs(collect(ev, 2))
      table.sort(got)
      assert.same({ "client", "peer" }, got)
    end)
  end)

  describe("x: exception (out-of-band data)", function()
    local has_python = os.execute("command -v python3 >/dev/null 2>&1")
    has_python = has_python == true or has_python == 0

    -- A python3 child connects and sends one urgent byte; returns our end.
    local function oob_connection()
      local server = assert(socket.bind("127.0.0.1", 0))
      server:settimeout(3)
      local _, port = server:getsockname()
      os.execute(("python3 -c \"import socket,time; s=socket.create_connection(('127.0.0.1',%d)); "
        .. "s.send(b'!', socket.MSG_OOB); time.sleep(0.5)\" >/dev/null 2>&1 &"):format(port))
      local conn = assert(server:accept())
      server:close()
      return conn
    end

    it("is not returned for ordinary data", function()
      local ev = newset()
      ev:add("x", client, "x")
      peer:send("plain")
      assert.same({}, collect(ev, 0.05))
    end)

    it("is returned with reason 'exception' when urgent data arrives", function()
      if not has_python then return pending("python3 is needed to send out-of-band data") end
      local conn = oob_connection()
      local ev = newset()
      local id = ev:add("x", conn, "oob")
      local got = collect(ev, 3)
      conn:close()
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("exception", got[1].why)
      assert.equal(conn, got[1].src)
      assert.equal("oob", got[1].ctx)
      assert.equal(0, #ev)
    end)

    it("X: is returned again while the urgent byte is pending", function()
      if not has_python then return pending("python3 is needed to send out-of-band data") end
      local conn = oob_connection()
      local ev = newset()
      local id = ev:add("X", conn, "oob")
      for _ = 1, 2 do
        local got = collect(ev, 3)
        assert.equal(1, #got)
        assert.equal("exception", got[1].why)
      end
      assert.equal(id, ev:del(id))
      conn:close()
    end)
  end)

  describe("timeouts on descriptor events", function()
    it("return the event with reason 'timeout' when nothing happens", function()
      local ev = newset()
      local t0 = now()
      local id = ev:add("r", client, "r", 0.05)
      local got = collect(ev, 2, nil, t0)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("timeout", got[1].why)
      assert.equal(client, got[1].src)
      assert.is_true(got[1].at >= 0.05, "early: " .. got[1].at)
      assert.is_true(got[1].at < 0.55)
      assert.equal(0, #ev)
    end)

    it("make ev() block", function()
      local ev = newset()
      local t0 = now()
      ev:add("r", client, "r", 0.04)
      local got = collect(ev, nil, nil, t0)
      assert.equal(1, #got)
      assert.is_true(got[1].at >= 0.04)
    end)

    it("are re-applied to a persistent event, which still reports data", function()
      local ev = newset()
      local t0 = now()
      local id = ev:add("R", client, "R", 0.04)
      local first = collect(ev, 1, nil, t0)[1]
      assert.equal("timeout", first.why)
      assert.is_true(first.at >= 0.04)
      local got = collect(ev, 1, nil, t0)
      assert.equal("timeout", got[1].why)
      -- re-applied while the iterator returned the first one
      assert.is_true(got[1].at - first.called >= 0.04, "re-applied early")
      peer:send("x")
      got = collect(ev, 1)
      assert.equal("readable", got[1].why)
      assert.equal(id, ev:del(id))
    end)
  end)

  describe("without a descriptor event in the set", function()
    it("ev() does not block for a socket", function()
      local ev = newset()
      ev:add("r", client, "r")
      local t0 = now()
      assert.same({}, collect(ev))
      assert.is_true(now() - t0 < 0.5)
    end)
  end)

  describe("integer descriptors", function()
    it("are accepted, and returned as the source", function()
      local ev = newset()
      local fd = fdnum(client)
      local id = ev:add("r", fd, "int")
      peer:send("x")
      local got = collect(ev, 2)
      assert.equal(id, got[1].id)
      assert.equal("readable", got[1].why)
      assert.equal(fd, got[1].src)
    end)

    it("that are not open give nil, 'bad file descriptor'", function()
      local ev = newset()
      local id, err = ev:add("r", 987)
      assert.is_nil(id)
      assert.equal("bad file descriptor", err)
      assert.equal(0, #ev)
    end)

    it("that are negative count as closed", function()
      local ev = newset()
      local id, err = ev:add("w", -1)
      assert.is_nil(id)
      assert.equal("closed", err)
    end)

    it("must be integers", function()
      local ev = newset()
      assert.has_error(function() ev:add("r", 3.5) end)
    end)
  end)

  describe("objects with getfd()", function()
    it("are accepted, and returned as the source", function()
      local ev = newset()
      local obj = { getfd = function() return client:getfd() end }
      local id = ev:add("r", obj, "obj")
      peer:send("x")
      local got = collect(ev, 2)
      assert.equal(id, got[1].id)
      assert.equal(obj, got[1].src)
    end)

    it("whose getfd() returns -1 give nil, 'closed'", function()
      local ev = newset()
      local id, err = ev:add("r", { getfd = function() return -1 end })
      assert.is_nil(id)
      assert.equal("closed", err)
    end)

    it("a table without getfd is an error", function()
      local ev = newset()
      assert.has_error(function() ev:add("r", {}) end)
      assert.has_error(function() ev:add("w", { getfd = 3 }) end)
      assert.has_error(function() ev:add("x", "socket") end)
      assert.has_error(function() ev:add("r") end)
      assert.has_error(function() ev:add("r", true) end)
      assert.equal(0, #ev)
    end)

    it("a closed LuaSocket object gives nil, 'closed'", function()
      local ev = newset()
      local s = socket.tcp()
      s:close()
      local id, err = ev:add("r", s)
      assert.is_nil(id)
      assert.equal("closed", err)
      local c2, p2 = S.tcp_pair()
      c2:close()
      p2:close()
      for _, t in ipairs({ "r", "W", "x" }) do
        id, err = ev:add(t, c2)
        assert.is_nil(id)
        assert.equal("closed", err)
      end
      assert.equal(0, #ev)
    end)
  end)

  describe("Lua file handles", function()
    it("a regular file is always readable", function()
      local name = tmpfile()
      local f = assert(io.open(name, "r"))
      local ev = newset()
      local id = ev:add("R", f, "file")
      for _ = 1, 2 do
        local got = collect(ev, 2)
        assert.equal(1, #got)
        assert.equal(id, got[1].id)
        assert.equal("readable", got[1].why)
        assert.equal(f, got[1].src)
      end
      assert.equal(id, ev:del(id))
      f:close()
      os.remove(name)
    end)

    it("a regular file is writable", function()
      local name = tmpfile()
      local f = assert(io.open(name, "a"))
      local ev = newset()
      ev:add("w", f, "file")
      local got = collect(ev, 2)
      assert.equal("writable", got[1].why)
      f:close()
      os.remove(name)
    end)

    it("a pipe from io.popen becomes readable when the child writes", function()
      local p = assert(io.popen("sleep 0.1; echo hi"))
      local ev = newset()
      local t0 = now()
      local id = ev:add("r", p, "pipe")
      assert.same({}, collect(ev, false)) -- the child is still asleep
      local got = collect(ev, 3, nil, t0)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("readable", got[1].why)
      assert.equal(p, got[1].src)
      assert.equal("hi", p:read("*l"))
      p:close()
    end)

    it("a closed file handle gives nil, 'closed'", function()
      local name = tmpfile()
      local f = assert(io.open(name))
      f:close()
      local ev = newset()
      local id, err = ev:add("r", f)
      assert.is_nil(id)
      assert.equal("closed", err)
      local p = assert(io.popen("true"))
      p:close()
      id, err = ev:add("r", p)
      assert.is_nil(id)
      assert.equal("closed", err)
      assert.equal(0, #ev)
      os.remove(name)
    end)
  end)

  describe("a descriptor closed while its event is in the set", function()
    it("can still be deleted without error", function()
      local ev = newset()
      local c2, p2 = S.tcp_pair()
      local r = ev:add("R", c2, "r")
      local w = ev:add("w", c2, "w", 5)
      local x = ev:add("x", fdnum(c2), "x")
      c2:close()
      assert.equal(r, ev:del(r))
      assert.equal(w, ev:del(w))
      assert.equal(x, ev:del(x))
      assert.equal(0, #ev)
      p2:close()
    end)

    it("stays silent and does not disturb the set", function()
      local ev = newset()
      local c2, p2 = S.tcp_pair()
      local r = ev:add("R", c2, "dead")
      c2:close()
      p2:close()
      ev:once("alive")
      assert.same({ "alive" }, ctxs(collect(ev, 0.05)))
      ev:clear()
      assert.equal(0, #ev)
      assert.is_nil(ev:del(r))
    end)

    it("can be replaced after its number is reused by a new socket", function()
      local server = assert(socket.bind("127.0.0.1", 0))
      server:settimeout(2)
      local _, port = server:getsockname()
      local c2 = assert(socket.connect("127.0.0.1", port))
      local p2 = assert(server:accept())
      local fd = fdnum(c2)
      local ev = newset()
      local old = ev:add("r", c2, "old")
      c2:close() -- against the spec's advice: the event is still in the set
      local c3 = assert(socket.connect("127.0.0.1", port)) -- lowest free number
      local p3 = assert(server:accept())
      server:close()
      p2:close()
      if fdnum(c3) ~= fd then
        c3:close()
        p3:close()
        return pending("descriptor number not reused")
      end
      local new = ev:add("r", c3, "new")
      assert.is_nil(ev:del(old))
      p3:send("x")
      local got = collect(ev, 2)
      c3:close()
      p3:close()
      assert.same({ "new" }, ctxs(got))
      assert.equal(new, got[1].id)
    end)
  end)
end)
