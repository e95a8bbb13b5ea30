-- TLS on corio's sockets from Lua: corio.tls.connect, sock:starttls (client and server
-- side, STARTTLS after plain text), corio.serve{tls}, verification by default with
-- OpenSSL's reasons, settimeout bounding the handshake, openssl s_server as the peer, and
-- 1,000 concurrent connections. Certificates: tests/lua/tls_support.lua (openssl CLI).
local corio = require "corio"
local tls = require "corio.tls"
local S = require "corio_support"
local T = require "tls_support"

local certs

setup(function() certs = T.make() end)
teardown(function() T.remove(certs) end)

local function client_params(extra)
  local p = { cafile = certs.ca }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- An echo server (one line each way, repeatedly) with TLS from certs[name].
local function echo_server(name)
  return assert(corio.serve("127.0.0.1", 0, function(c)
    c:settimeout(5)
    while true do
      local line = c:receive("*l")
      if not line then break end
      c:send(line .. "\n")
    end
    c:close()
  end, { tls = { certificate = certs[name or "server"].cert, key = certs[name or "server"].key, alpn = { "corio/1" } } }))
end

describe("corio TLS", function()
  it("connects verified by name and by IP literal; info and getpeercertificate", function()
    S.run(function()
      local server = echo_server()
      for _, host in ipairs({ "localhost", "127.0.0.1" }) do
        local c = assert(tls.connect(host, S.port(server), client_params({ alpn = "corio/1", timeout = 5 })))
        assert.equal(5, c:send("ping\n"))
        assert.equal("ping", c:receive("*l"))
        local info = c:info()
        assert.equal("TLSv1.3", info.protocol)
        assert.equal("TLSv1.3", c:info("protocol"))  -- one field, as LuaSec's conn:info(field)
        assert.is_nil(c:info("no such field"))
        assert.equal("corio/1", info.alpn)
        assert.truthy(info.cipher:find("TLS_", 1, true))
        local cert = c:getpeercertificate()
        assert.truthy(cert.subject:find("CN=server", 1, true))
        assert.truthy(cert.issuer:find("corio-test-ca", 1, true))
        assert.equal(95, #cert.fingerprint)
        c:close()
      end
      server:close()
    end)
  end)

  it("refuses what does not verify, with OpenSSL's reason, and leaves the socket closed", function()
    S.run(function()
      local cases = {
        { "server", "wrong.example", client_params(), "certificate verify failed: hostname mismatch" },
        { "expired", "localhost", client_params(), "certificate verify failed: certificate has expired" },
        { "self", "localhost", client_params(), "certificate verify failed: self-signed certificate" },
        { "server", "localhost", {}, "certificate verify failed: unable to get local issuer certificate" },
      }
      for _, k in ipairs(cases) do
        local server = echo_server(k[1])
        local sock = corio.tcp()
        sock:settimeout(5)
        assert(sock:connect("127.0.0.1", S.port(server)))
        local ok, err = sock:starttls(k[3], k[2])
        assert.is_nil(ok)
        assert.equal(k[4], err)
        assert.same({ nil, "closed", 0 }, { sock:send("x") })
        server:close()
      end
    end)
  end)

  it("verify = \"none\" is the explicit way to skip verification", function()
    S.run(function()
      local server = echo_server("self")
      local c = assert(tls.connect("127.0.0.1", S.port(server), { verify = "none", timeout = 5 }))
      c:send("unverified\n")
      assert.equal("unverified", c:receive("*l"))
      c:close()
      server:close()
    end)
  end)

  it("STARTTLS after plain text, both sides; servername defaults to the host connected to", function()
    S.run(function()
      local server = assert(corio.serve("127.0.0.1", 0, function(c)
        c:settimeout(5)
        c:send("220 ready\r\n")
        assert.equal("STARTTLS", c:receive("*l"))
        c:send("220 go ahead\r\n")
        assert(c:starttls({ mode = "server", certificate = certs.server.cert, key = certs.server.key }))
        c:send("secret " .. c:receive("*l") .. "\n")
        c:close()
      end))
      local c = corio.tcp()
      c:settimeout(5)
      assert(c:connect("localhost", S.port(server)))
      assert.equal("220 ready", c:receive("*l"))
      c:send("STARTTLS\r\n")
      assert.equal("220 go ahead", c:receive("*l"))
      assert.is_nil(c:info())  -- plain text so far
      assert(c:starttls({ cafile = certs.ca }))  -- checked against "localhost"
      assert.equal("TLSv1.3", c:info("protocol"))
      c:send("hello\n")
      assert.equal("secret hello", c:receive("*l"))
      assert.same({ nil, "closed", "" }, { c:receive("*l") })
      c:close()
      server:close()
    end)
  end)

  it("STARTTLS pipelined: a ClientHello read with the command's line goes to the session", function()
    S.run(function()
      local server = assert(corio.serve("127.0.0.1", 0, function(c)
        c:settimeout(5)
        corio.sleep(0.05)  -- the line and the ClientHello behind it are both in by now
        assert.equal("STARTTLS", c:receive("*l"))
        assert(c:starttls({ mode = "server", certificate = certs.server.cert, key = certs.server.key }))
        c:send("tls from the first byte after the line\n")
        c:close()
      end))
      local c = corio.tcp()
      c:settimeout(5)
      assert(c:connect("localhost", S.port(server)))
      c:send("STARTTLS\r\n")
      assert(c:starttls({ cafile = certs.ca }))  -- no go-ahead awaited
      assert.equal("tls from the first byte after the line", c:receive("*l"))
      c:close()
      server:close()
    end)
  end)

  it("settimeout bounds the handshake; a plain-text peer is a clear error", function()
    S.run(function()
      local silent = assert(corio.serve("127.0.0.1", 0, function(c) corio.sleep(1) c:close() end))
      local c = corio.tcp()
      c:settimeout(0.2)
      assert(c:connect("127.0.0.1", S.port(silent)))
      local t, ok, err = S.time(c.starttls, c, client_params())
      assert.same({ nil, "timeout" }, { ok, err })
      assert.is_true(t >= 0.19 and t < 0.5, t)
      local plain = assert(corio.serve("127.0.0.1", 0, function(p) p:send("HELLO, plain text here\r\n") corio.sleep(0.5) p:close() end))
      local d = corio.tcp()
      d:settimeout(2)
      assert(d:connect("127.0.0.1", S.port(plain)))
      assert.same({ nil, "wrong version number" }, { d:starttls(client_params()) })
      silent:close()
      plain:close()
    end)
  end)

  it("a peer closing with and without close_notify ends \"*a\" as a plain close does", function()
    S.run(function()
      local cfg = { tls = { certificate = certs.server.cert, key = certs.server.key } }
      for _, notify in ipairs({ true, false }) do
        local server = assert(corio.serve("127.0.0.1", 0, function(c)
          c:send("all of it")
          if notify then c:close() else c:shutdown() end
        end, cfg))
        local c = assert(tls.connect("localhost", S.port(server), client_params({ timeout = 5 })))
        assert.same({ "all of it" }, { c:receive("*a") })
        c:close()
        server:close()
      end
    end)
  end)

  it("corio.wrap takes a LuaSec connection: the loop runs while it waits", function()
    local ssl = require "ssl"
    S.run(function()
      local server = echo_server()
      local raw = require("socket").tcp()
      raw:settimeout(5)
      assert(raw:connect("127.0.0.1", S.port(server)))
      local c = corio.wrap(assert(ssl.wrap(raw, { mode = "client", protocol = "any", verify = "peer", cafile = certs.ca })))
      c:settimeout(5)
      assert(c:dohandshake())  -- the server, a thread of this process, answers meanwhile
      assert.equal(5, c:send("ping\n"))
      assert.equal("ping", c:receive("*l"))
      assert.truthy(c:getpeercertificate())  -- LuaSec's own methods pass through
      local ticks = 0
      local tick = corio.every(0.01, function() ticks = ticks + 1 end)
      c:settimeout(0.1)
      local t, data, err, partial = S.time(c.receive, c, "*l")
      tick:cancel()
      assert.same({ nil, "timeout", "" }, { data, err, partial })
      assert.is_true(t >= 0.09 and t < 0.3, t)
      assert.is_true(ticks >= 5, ticks)
      c:close()
      server:close()
    end)
  end)

  it("LuaSocket's http module over TLS through its create hook", function()
    local http = require "socket.http"
    local ltn12 = require "ltn12"
    S.run(function()
      local server = assert(corio.serve("127.0.0.1", 0, function(c)
        c:settimeout(5)
        local request = c:receive("*l")
        repeat local line = c:receive("*l") until not line or line == ""
        local body = "secure hello for " .. request
        c:send("HTTP/1.0 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
        c:close()
      end, { tls = { certificate = certs.server.cert, key = certs.server.key } }))
      local chunks = {}
      local ok, code = http.request({
        url = "https://localhost:" .. S.port(server) .. "/x",
        sink = ltn12.sink.table(chunks),
        create = tls.create({ cafile = certs.ca }),
      })
      assert.equal(1, ok)
      assert.equal(200, code)
      assert.equal("secure hello for GET /x HTTP/1.1", table.concat(chunks))
      -- the wrong CA: the request fails with the verification's reason
      local nok, err = http.request({ url = "https://localhost:" .. S.port(server) .. "/", create = tls.create() })
      assert.is_nil(nok)
      assert.equal("certificate verify failed: unable to get local issuer certificate", err)
      server:close()
    end)
  end)

  it("a renegotiation request from a TLS 1.2 server is refused: a clear error, no hang", function()
    local port = S.free_port()
    local fifo = certs.dir .. "/s_server.stdin"
    assert(os.execute("mkfifo " .. fifo))
    -- s_server takes its commands from the fifo: "r" renegotiates with the connected client
    local p = assert(io.popen(("cd %s && (openssl s_server -tls1_2 -accept 127.0.0.1:%d -cert server.pem "
      .. "-key server.key <%s >/dev/null 2>&1 & echo $!)"):format(certs.dir, port, fifo)))
    local pid = p:read("*l")
    p:close()
    local commands = assert(io.open(fifo, "w"))  -- opens once s_server's side has
    local ok, err = pcall(S.run, function()
      local c, cerr
      for _ = 1, 100 do
        c, cerr = tls.connect("localhost", port, client_params({ protocol = "tlsv1_2", timeout = 3 }))
        if c or cerr ~= "connection refused" then break end
        corio.sleep(0.02)
      end
      assert(c, cerr)
      assert.equal("TLSv1.2", c:info().protocol)
      commands:write("r\n")
      commands:flush()
      local t, data, rerr = S.time(c.receive, c, "*l")
      assert.is_nil(data)
      assert.equal("sslv3 alert handshake failure", rerr)  -- s_server gives up on our refusal
      assert.is_true(t < 2, t)
      c:close()
    end)
    commands:close()
    os.execute("kill " .. pid .. " 2>/dev/null")
    assert(ok, err)
  end)

  it("a wrapped LuaSec connection: closed by another thread while one waits, the waiter wakes", function()
    local ssl = require "ssl"
    S.run(function()
      local server = assert(corio.serve("127.0.0.1", 0, function(c) corio.sleep(2) c:close() end,
        { tls = { certificate = certs.server.cert, key = certs.server.key } }))
      local raw = require("socket").tcp()
      raw:settimeout(5)
      assert(raw:connect("127.0.0.1", S.port(server)))
      local c = corio.wrap(assert(ssl.wrap(raw, { mode = "client", protocol = "any", verify = "peer", cafile = certs.ca })))
      c:settimeout(5)
      assert(c:dohandshake())
      -- one thread waits to read while another sends: each waits on its own direction
      local sent = S.go(function() return c:send("while a reader waits\n") end)
      local got = S.go(function() return S.time(c.receive, c, "*l") end)
      assert.equal(21, sent())
      corio.sleep(0.05)
      c:close()
      local t, data, err = got(1)
      assert.is_nil(data)
      assert.equal("closed", err)
      assert.is_true(t < 0.5, t)  -- not the 5 s timeout
      server:close()
    end)
  end)

  it("talks to openssl s_server", function()
    local port = S.free_port()
    local p = assert(io.popen(("cd %s && (openssl s_server -quiet -rev -accept 127.0.0.1:%d -cert server.pem "
      .. "-key server.key </dev/null >/dev/null 2>&1 & echo $!)"):format(certs.dir, port)))
    local pid = p:read("*l")
    p:close()
    local ok, failure = pcall(S.run, function()
      local c, err
      for _ = 1, 100 do
        c, err = tls.connect("localhost", port, client_params({ timeout = 5 }))
        if c or err ~= "connection refused" then break end
        corio.sleep(0.02)
      end
      assert(c, err)
      c:send("abc def\n")
      assert.equal("fed cba", c:receive("*l"))
      c:close()
      -- a LuaSec connection wrapped after its (blocking) handshake
      local raw = require("socket").tcp()
      raw:settimeout(5)
      assert(raw:connect("127.0.0.1", port))
      local conn = assert(require("ssl").wrap(raw, { mode = "client", protocol = "any", verify = "peer", cafile = certs.ca }))
      assert(conn:dohandshake())
      local w = corio.wrap(conn)
      w:settimeout(5)
      w:send("luasec\n")
      assert.equal("cesaul", w:receive("*l"))
      w:close()
    end)
    os.execute("kill " .. pid .. " 2>/dev/null")  -- whatever happened
    assert(ok, failure)
  end)

  it("1,000 concurrent connections, corio server and clients", function()
    S.run(60, function()
      local server = echo_server()
      local ctx = assert(tls.context(client_params()))
      local ok, n = 0, 1000
      local done = 0
      for i = 1, n do
        corio.spawn(function()
          local c = corio.tcp()
          c:settimeout(30)
          if c:connect("127.0.0.1", S.port(server)) and c:starttls(ctx, "localhost") then
            c:send("line " .. i .. "\n")
            if c:receive("*l") == "line " .. i then ok = ok + 1 end
          end
          c:close()
          done = done + 1
        end)
      end
      local deadline = corio.now() + 55
      while done < n and corio.now() < deadline do corio.sleep(0.05) end
      server:close()
      assert.equal(n, ok)
    end)
  end)

  it("resumes the session with the same server; serves several certificates by SNI", function()
    S.run(function()
      local server = echo_server()
      local params = client_params({ timeout = 5 })
      local resumed = {}
      for i = 1, 2 do
        local c = assert(tls.connect("localhost", S.port(server), params))
        c:send("x\n")
        assert.equal("x", c:receive("*l"))  -- the session ticket comes with the data
        resumed[i] = c:info().resumed
        c:close()
      end
      assert.same({ false, true }, resumed)
      server:close()
      local multi = assert(corio.serve("127.0.0.1", 0, function(c) c:close() end, { tls = {
        certificate = certs.wrong.cert, key = certs.wrong.key,
        sni = { localhost = { certificate = certs.server.cert, key = certs.server.key } },
      } }))
      for name, cn in pairs({ localhost = "CN=server", ["wrong.example"] = "CN=wrong" }) do
        local c = corio.tcp()
        c:settimeout(5)
        assert(c:connect("127.0.0.1", S.port(multi)))
        assert(c:starttls(client_params(), name))
        assert.truthy(c:getpeercertificate().subject:find(cn, 1, true))
        c:close()
      end
      multi:close()
    end)
  end)

  it("bad parameters: a clear error, and a failed starttls closes the socket", function()
    assert.has_error(function() require("corio.core").tlscontext({ mode = "both" }) end,
      "tls parameter mode must be \"client\" or \"server\"")
    assert.has_error(function() require("corio.core").tlscontext({ alpn = 42 }) end,
      "tls parameter alpn must be a string or a list of strings")
    local ctx, err = tls.context({ mode = "server" })
    assert.is_nil(ctx)
    assert.equal("a server needs a certificate and a key", err)
    ctx, err = tls.context({ cafile = "/nonexistent/ca.pem" })
    assert.is_nil(ctx)
    assert.truthy(err:find("CA locations", 1, true), err)
    S.run(function()
      local server = echo_server()
      local c = corio.tcp()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", S.port(server)))
      assert.same({ nil, "a server needs a certificate and a key" }, { c:starttls({ mode = "server" }) })
      assert.same({ nil, "closed", 0 }, { c:send("x") })
      server:close()
    end)
  end)
end)
