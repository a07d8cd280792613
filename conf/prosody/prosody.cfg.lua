-- Prosody 0.12 configuration for iqresponder's private test/dev servers.
--
-- One file serves every run: all per-run values come from the environment
-- (Prosody exposes a variable NAME as the global ENV_NAME while it reads the
-- config). conf/prosody/private_prosody.py sets them; when starting Prosody
-- by hand, set them yourself:
--
--   IQR_PROSODY_DIR=/tmp/x IQR_C2S_PORT=5222 IQR_COMPONENT_PORT=5347 \
--   IQRESPONDER_SECRET=s3cret prosody --config conf/prosody/prosody.cfg.lua -F

-- Options assigned below cannot be read back in this file, so keep the
-- environment values in Lua locals (locals are not config options).
local dir = ENV_IQR_PROSODY_DIR
local c2s_port = tonumber(ENV_IQR_C2S_PORT)
local component_port = tonumber(ENV_IQR_COMPONENT_PORT)
local secret = ENV_IQRESPONDER_SECRET

-- Fail loudly instead of silently falling back to /var/lib/prosody or 5222.
if not dir or dir == "" then error("IQR_PROSODY_DIR is not set", 0) end
if not c2s_port then error("IQR_C2S_PORT is not set to a number", 0) end
if not component_port then error("IQR_COMPONENT_PORT is not set to a number", 0) end
if not secret or secret == "" then error("IQRESPONDER_SECRET is not set", 0) end

daemonize = false -- the caller owns the process (and its pid); -F also says so
run_as_root = true -- we run as root here; without it Prosody logs "Refusing to run as root" and hangs
data_path = dir .. "/data" -- accounts and rosters of this run only
pidfile = dir .. "/prosody.pid"
log = { info = dir .. "/prosody.log" } -- only a file: nothing goes to syslog or /var/log
-- No certificates are used; point the certificate scan at an existing directory
-- so it does not log an error about the default conf/prosody/certs.
certificates = dir

-- Loopback only, on the run's own ports.
interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { c2s_port }
c2s_direct_tls_ports = {} -- no XEP-0368 listener
legacy_ssl_ports = {} -- no old-style SSL listener
component_interfaces = { "127.0.0.1" }
component_ports = { component_port }

-- Plaintext clients: there are no certificates and no mod_tls here.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true -- let SASL PLAIN run over the unencrypted stream
authentication = "internal_plain" -- passwords stored as given; test accounts only

modules_enabled = {
	"roster"; -- clients fetch their roster after login
	"saslauth"; -- SASL authentication for c2s
	"disco"; -- service discovery of the server itself
	"ping"; -- XEP-0199, for keep-alives and liveness checks
}
-- Prosody always loads s2s (and its certificate check); this server talks to nobody else.
modules_disabled = { "s2s", "s2s_auth_certs" }

VirtualHost "localhost"

-- The external component (XEP-0114) that iqresponder connects as.
Component "iq.localhost"
	component_secret = secret
