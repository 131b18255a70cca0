-- Prosody behind s2s-proxy: the lines to add to (or change in) the GLOBAL section of
-- prosody.cfg.lua. They match config-examples/prosody-sidecar.toml:
--   s2s-proxy [local] server = "127.0.0.1:15269"     (Prosody's s2s listener, below)
--   s2s-proxy [[listen.local]] 127.0.0.1 port 15270  (where Prosody's outgoing s2s goes, below)
-- See README.md next to this file.

-- Where mod_s2s_proxy.lua is (this directory, or wherever you copied it).
plugin_paths = { "/etc/prosody/s2s-proxy" }

modules_enabled = {
	-- ... your other modules ...
	"dialback";     -- the local link is authenticated by dialback (s2s-proxy is the authority)
	"s2s_proxy";    -- every outgoing s2s connection goes to s2s-proxy
}

-- s2s-proxy's [[listen.local]]: ip_address and port.
s2s_proxy_address = "127.0.0.1"
s2s_proxy_port = 15270

-- Prosody's own s2s listener: loopback only, plain; s2s-proxy owns the public port and TLS.
s2s_ports = { 15269 }
s2s_interfaces = { "127.0.0.1" }
s2s_direct_tls_ports = { }          -- (0.12.0+) no direct-TLS s2s listener

-- Encryption and certificate checks happen on the public side, in s2s-proxy
-- (s2s.outgoing.tls.*, listen.s2s.*.tls.*, s2s.secure_auth / secure_domains / insecure_domains).
s2s_require_encryption = false
s2s_secure_auth = false
-- and remove s2s_secure_domains / s2s_insecure_domains here (move them to s2s-proxy)
