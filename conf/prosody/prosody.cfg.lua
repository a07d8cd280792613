-- Prosody 0.12 configuration for iqresponder's private test/dev servers.
--
-- One file serves every run: all per-run values come from the environment
-- (Prosody exposes a variable NAME as the global ENV_NAME while it reads the
-- config). private_servers/prosody.py sets them; when starting Prosody
-- by hand, set them yourself:
--
--   IQR_PROSODY_DIR=/tmp/x IQR_C2S_PORT=5222 IQR_COMPONENT_PORT=5347 \
--   IQRESPONDER_SECRET=s3cret prosody --config conf/prosody/prosody.cfg.lua -F
--
-- Optional direct TLS for the component (XEP-0114 has no STARTTLS): with
-- IQR_TLS_PORT, IQR_TLS_CERT and IQR_TLS_KEY (PEM files) set, Prosody also
-- listens on 127.0.0.1:IQR_TLS_PORT, does the TLS handshake at once and then
-- hands the stream to the component (or c2s) listener by its stream header.

-- Options assigned below cannot be read back in this file, so keep the
-- environment values in Lua locals (locals are not config options).
local dir = ENV_IQR_PROSODY_DIR
local c2s_port = tonumber(ENV_IQR_C2S_PORT)
local component_port = tonumber(ENV_IQR_COMPONENT_PORT)
local secret = ENV_IQRESPONDER_SECRET
local tls_port = ENV_IQR_TLS_PORT and tonumber(ENV_IQR_TLS_PORT)
local tls_cert, tls_key = ENV_IQR_TLS_CERT, ENV_IQR_TLS_KEY

-- Fail loudly instead of silently falling back to /var/lib/prosody or 5222.
if not dir or dir == "" then error("IQR_PROSODY_DIR is not set", 0) end
if not c2s_port then error("IQR_C2S_PORT is not set to a number", 0) end
if not component_port then error("IQR_COMPONENT_PORT is not set to a number", 0) end
if not secret or secret == "" then error("IQRESPONDER_SECRET is not set", 0) end
if ENV_IQR_TLS_PORT and ENV_IQR_TLS_PORT ~= "" then
	if not tls_port then error("IQR_TLS_PORT is not a number", 0) end
	if not tls_cert or tls_cert == "" then error("IQR_TLS_PORT is set but IQR_TLS_CERT is not", 0) end
	if not tls_key or tls_key == "" then error("IQR_TLS_PORT is set but IQR_TLS_KEY is not", 0) end
else
	tls_port = nil
end

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

local modules = {
	"roster"; -- clients fetch their roster after login
	"saslauth"; -- SASL authentication for c2s
	"disco"; -- service discovery of the server itself
	"ping"; -- XEP-0199, for keep-alives and liveness checks
	-- XEP-0355 and XEP-0356, from Debian's prosody-modules: the suite tests namespace
	-- delegation and privileges against the component. Prosody's default plugin
	-- directory, /usr/lib/prosody/modules, already holds them (as mod_x/mod_x.lua),
	-- so no plugin_paths is needed. Each is also enabled in the Component section.
	"delegation";
	"privilege";
}

if tls_port then
	-- mod_net_multiplex's "multiplex_ssl" service (config prefix "ssl_") accepts TLS
	-- at once and then routes the connection by its first bytes: a stream header in
	-- the jabber:component:accept namespace goes to mod_component's listener. The
	-- component needs no option of its own for this port.
	table.insert(modules, "net_multiplex")
	ssl_ports = { tls_port }
	ssl_interfaces = { "127.0.0.1" }
	-- The key and certificate of every TLS context; only this port uses TLS here.
	ssl = { certificate = tls_cert; key = tls_key }
end

modules_enabled = modules
-- Prosody always loads s2s (and its certificate check); this server talks to nobody else.
modules_disabled = { "s2s", "s2s_auth_certs" }

VirtualHost "localhost"
	-- Iqs of clients of localhost in these namespaces, to the server or to their own
	-- bare JID, are forwarded to the component (XEP-0355, urn:xmpp:delegation:2).
	-- "unasked" is delegated by the server but asked for by no responder, so the suite
	-- can see what the component does with a delegated namespace it does not serve.
	delegations = {
		["jabber:iq:private"] = { jid = "iq.localhost" };
		["urn:iqresponder:test:delegated"] = { jid = "iq.localhost" };
		["urn:iqresponder:test:unasked"] = { jid = "iq.localhost" };
	}
	-- What the component may do for the users of localhost (XEP-0356, urn:xmpp:privilege:2):
	-- read and write their rosters, send messages as the server or as a user's bare JID,
	-- and send Iq gets in a test namespace as a user (privileged Iqs). mod_privilege sends
	-- those on a made-up session, so one that Prosody answers itself (a roster get) fails
	-- with internal-server-error; the suite's goes to the component itself, as the user.
	privileged_entities = {
		["iq.localhost"] = {
			roster = "both";
			message = "outgoing";
			iq = { ["urn:iqresponder:test:as-user"] = "get" };
		};
	}

-- The external component (XEP-0114) that iqresponder connects as.
Component "iq.localhost"
	component_secret = secret
	-- Unset (Prosody's default: a second connection is refused with conflict), or "kick_old".
	component_conflict_resolve = ENV_IQR_CONFLICT_RESOLVE
	-- A component inherits almost none of the global modules; both modules must also run
	-- here to see the component authenticate and advertise to it what localhost grants.
	modules_enabled = { "delegation"; "privilege" }
