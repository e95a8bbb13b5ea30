-- Certificates for the specs (not a spec), made by the openssl CLI in a fresh directory
-- readable by other users (a broker that drops root reads them): a CA; signed by it, a
-- server certificate for 127.0.0.1 and localhost, an expired one and one for wrong.example;
-- and a self-signed one for localhost. make() -> paths: .dir, .ca, and .server, .expired,
-- .wrong, .self each { cert =, key = }; make(dir) writes into dir instead. remove(certs)
-- deletes a directory make() made.
local M = {}

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function M.make(into)
  local dir = into
  if not dir then
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -m 0755 " .. dir), "cannot make " .. dir)
  end
  local q = " >/dev/null 2>&1"
  local function run(cmd) assert(sh("cd " .. dir .. " && " .. cmd .. q), "openssl: " .. cmd) end
  write(dir .. "/san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  write(dir .. "/wrong.ext", "subjectAltName=DNS:wrong.example\n")
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=corio-test-ca -keyout ca.key -out ca.pem")
  local c = { dir = dir, ca = dir .. "/ca.pem", own = not into }
  for _, k in ipairs({ { "server", "san.ext", 2 }, { "expired", "san.ext", -1 }, { "wrong", "wrong.ext", 2 } }) do
    local name, ext, days = k[1], k[2], k[3]
    run(("openssl req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s.key -out %s.csr"):format(name, name, name))
    run(("openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days %d -extfile %s -out %s.pem")
      :format(name, days, ext, name))
    c[name] = { cert = dir .. "/" .. name .. ".pem", key = dir .. "/" .. name .. ".key" }
  end
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
    .. "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout self.key -out self.pem")
  c.self = { cert = dir .. "/self.pem", key = dir .. "/self.key" }
  assert(sh("chmod 0644 " .. dir .. "/*"))
  return c
end

function M.remove(c)
  if c and c.own then sh("rm -rf " .. c.dir) end
end

return M
