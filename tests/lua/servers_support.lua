-- Local servers for the specs of LuaSocket's own modules run through corio (not a spec
-- itself): python3's http.server in a child process, and corio threads speaking just
-- enough HTTP/1.0 and SMTP. All on 127.0.0.1; every wait is bounded.
local corio = require "corio"
local S = require "corio_support"

local M = {}

M.body = ("corio says hello\n"):rep(12000)  -- ~200 KB: many reads

-- python3 -m http.server serving a directory with M.body as /hello.txt (Content-Length
-- set). Returns the server ({ port, stop = fn }) or nil, why.
function M.python_http()
  local dir = S.tmpname("-www")
  assert(os.execute("mkdir " .. S.shquote(dir)))
  local f = assert(io.open(dir .. "/hello.txt", "wb"))
  f:write(M.body)
  f:close()
  -- the shell's pid is the server's: exec replaces it (timeout passes a kill on)
  local p = io.popen(("cd %s && echo $$ && exec timeout 60 python3 -u -m http.server 0 --bind 127.0.0.1 2>/dev/null")
    :format(S.shquote(dir)))
  local pid, line = p:read("*l"), p:read("*l")
  local port = line and tonumber(line:match("port (%d+)"))
  local server = { port = port, pid = pid }
  function server.stop()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    p:close()
    os.remove(dir .. "/hello.txt")
    os.remove(dir)
  end
  if not port then
    server.stop()
    return nil, "python3 http.server did not start"
  end
  return server
end

-- An HTTP/1.0 server (corio thread per connection) answering every request with `body`
-- and no Content-Length: the client reads until the connection closes.
function M.http_until_closed(body)
  local requests = {}
  local server = assert(corio.serve("127.0.0.1", 0, function(c)
    c:settimeout(5)
    local request = c:receive()
    requests[#requests + 1] = request
    repeat local line = c:receive() until not line or line == ""
    c:send("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    c:send(body)
    c:close()
  end))
  return server, S.port(server), requests
end

-- An SMTP sink: records envelope and message of every mail in `mails`.
function M.smtp_sink()
  local mails = {}
  local server = assert(corio.serve("127.0.0.1", 0, function(c)
    c:settimeout(5)
    local mail = { rcpt = {} }
    c:send("220 localhost corio test sink\r\n")
    while true do
      local line = c:receive()
      if not line then break end
      local cmd = line:upper()
      if cmd:match("^EHLO") or cmd:match("^HELO") then
        c:send("250 localhost\r\n")
      elseif cmd:match("^MAIL FROM:") then
        mail.from = line:match("<(.-)>")
        c:send("250 OK\r\n")
      elseif cmd:match("^RCPT TO:") then
        mail.rcpt[#mail.rcpt + 1] = line:match("<(.-)>")
        c:send("250 OK\r\n")
      elseif cmd == "DATA" then
        c:send("354 end with <CRLF>.<CRLF>\r\n")
        local data = {}
        for l in function() return c:receive() end do
          if l == "." then break end
          data[#data + 1] = l
        end
        mail.data = table.concat(data, "\n")
        mails[#mails + 1] = mail
        mail = { rcpt = {} }
        c:send("250 queued\r\n")
      elseif cmd == "QUIT" then
        c:send("221 bye\r\n")
        break
      else
        c:send("502 not implemented\r\n")
      end
    end
    c:close()
  end))
  return server, S.port(server), mails
end

return M
