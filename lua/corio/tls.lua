-- corio.tls: TLS on corio's sockets (the engine's, on OpenSSL), with LuaSec's parameter
-- names (mode, protocol, verify, cafile, capath, certificate, key, password, options,
-- ciphers, servername, alpn). A client verifies by default, against the system store
-- (OpenSSL's default paths; SSL_CERT_FILE / SSL_CERT_DIR) and the host name.
--   local tls = require "corio.tls"
--   local sock = assert(tls.connect("example.org", 443))            -- verified
--   local sock = assert(tls.connect("127.0.0.1", 8883, { cafile = "ca.pem" }))
--   corio.serve(host, port, handler, { tls = { certificate = "c.pem", key = "k.pem" } })
-- On any corio tcp client: sock:starttls([params | context [, servername]]),
-- sock:tlsinfo(), sock:getpeercertificate() (README, "TLS").
local core = require "corio.core"
local corio = require "corio"

local tls = {}

-- Contexts per params table: loading a CA store costs milliseconds, a handshake should not.
local contexts = setmetatable({}, { __mode = "k" })

-- context([params]) -> a context for starttls | nil, message
function tls.context(params)
  if params == nil then return tls.context(tls.defaults) end
  local ctx = contexts[params]
  if ctx then return ctx end
  local err
  ctx, err = core.tlscontext(params)
  if not ctx then return nil, err end
  contexts[params] = ctx
  return ctx
end
tls.defaults = {}  -- a verified client

-- connect(host, port [, params]) -> a tcp client past its handshake | nil, message.
-- params.timeout (seconds) bounds the connect and the handshake, as settimeout would.
function tls.connect(host, port, params)
  params = params or tls.defaults
  local ctx, err = tls.context(params)
  if not ctx then return nil, err end
  local sock = corio.tcp()
  if params.timeout then sock:settimeout(params.timeout) end
  local ok
  ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, err
  end
  ok, err = sock:starttls(ctx, params.servername or host)
  if not ok then return nil, err end
  return sock
end

-- The server side of params (mode = "server" unless given), for corio.serve.
function tls.server_context(params)
  if params.mode == nil then
    local copy = {}
    for k, v in pairs(params) do copy[k] = v end
    copy.mode = "server"
    params = copy
  end
  return core.tlscontext(params)
end

return tls
