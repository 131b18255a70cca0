-- mod_s2s_proxy: send every outgoing server-to-server connection of this Prosody to s2s-proxy.
--
-- s2s-proxy runs beside Prosody and owns the public side of federation. Prosody keeps a plain s2s
-- listener on loopback for the streams s2s-proxy opens to it, and this module makes each of
-- Prosody's *outgoing* s2s connections, whatever the remote domain, go to s2s-proxy's
-- [[listen.local]] address instead of the remote server found through DNS.
-- Dialback verification of inbound streams goes out the same way, so this module is needed for
-- both directions.
--
-- Configuration (global section of prosody.cfg.lua):
--   modules_enabled = { ...; "dialback"; "s2s_proxy" }
--   plugin_paths = { "/path/to/this/directory" }
--   s2s_proxy_address = "127.0.0.1"   -- default; an IP address (a name would be resolved by DNS)
--   s2s_proxy_port = 15270            -- required: the port of s2s-proxy's [[listen.local]]
--
-- How the redirect works, per Prosody version:
--   0.12.4 and later (13.x): mod_s2s fires "s2sout-pre-connect" on the sending host with
--     { session = ..., resolver = ... } and connects with whatever event.resolver is afterwards.
--     This module replaces it with a resolver that yields only s2s-proxy's address.
--   0.12.0 - 0.12.3: there is no such event. mod_s2s calls
--     require"net.resolvers.service".new(to_host, "xmpp-server"|"xmpps-server", "tcp", extra)
--     through the module table each time it connects, so this module wraps that function:
--     "xmpp-server" gives s2s-proxy's address, "xmpps-server" (direct TLS) gives no candidate.
--   The choice is made from core.features ("s2sout-pre-connect-event"); when that flag is absent
--   both mechanisms are installed (they give the same answer, so the second one is harmless).
--
-- Every host is covered, components included (the hooks are installed on each host as it is
-- activated, not only on hosts that list this module). If s2s_proxy_port is missing or invalid,
-- outgoing s2s fails (with that reason in the log and in bounces) rather than going straight to
-- the internet. See README.md next to this file for the rest of prosody.cfg.lua.

module:set_global();

local basic = require "net.resolvers.basic";
local service = require "net.resolvers.service";
local have_manual, manual = pcall(require, "net.resolvers.manual");

local proxy_address = module:get_option_string("s2s_proxy_address", "127.0.0.1");
local port_option = module:get_option("s2s_proxy_port");
local proxy_port = tonumber(port_option);

local config_error;
if port_option == nil then
	config_error = "s2s_proxy_port is not set (the port of s2s-proxy's [[listen.local]])";
elseif not proxy_port or proxy_port ~= math.floor(proxy_port) or proxy_port < 1 or proxy_port > 65535 then
	config_error = ("s2s_proxy_port = %s is not a TCP port"):format(tostring(port_option));
	proxy_port = nil;
end
if config_error then
	module:log("error", "%s: every outgoing s2s connection will fail until it is fixed", config_error);
else
	proxy_port = math.floor(proxy_port);
	module:log("info", "Outgoing s2s connections go to s2s-proxy at %s port %d", proxy_address, proxy_port);
end

-- A resolver with no candidate: the connection attempt fails with `why`.
local function no_targets(conn_type, extra, why)
	local r;
	if have_manual then
		r = manual.new({}, conn_type, extra);
	else
		r = setmetatable({}, { __index = { next = function (_, cb) cb(nil); end } });
	end
	r.last_error = why;
	return r;
end

-- The resolver used for every outgoing s2s connection.
local function proxy_resolver(conn_type, extra)
	if not proxy_port then
		return no_targets(conn_type or "tcp", extra, "s2s_proxy: " .. config_error);
	end
	return basic.new(proxy_address, proxy_port, conn_type or "tcp", extra or {});
end

-- Prosody 0.12.4+ and 13: the s2sout-pre-connect event.
local function pre_connect(event)
	local session = event.session;
	module:log("debug", "s2sout to %s goes to s2s-proxy at %s port %s (s2sout-pre-connect, from %s)",
		tostring(session and session.to_host), proxy_address, tostring(proxy_port),
		tostring(session and session.from_host));
	event.resolver = proxy_resolver("tcp", {});
end

local have_event = false;
do
	for _, name in ipairs({ "core.features", "prosody.core.features" }) do
		local ok, features = pcall(require, name);
		if ok and type(features) == "table" and type(features.available) == "table" then
			local ok2, has = pcall(function () return features.available:contains("s2sout-pre-connect-event"); end);
			have_event = ok2 and has and true or false;
			break;
		end
	end
end

-- Prosody 0.12.0 - 0.12.3: wrap net.resolvers.service.new.
local original_new = service.new;
local function redirected_new(hostname, service_name, conn_type, extra)
	if service_name == "xmpp-server" then
		module:log("debug", "s2sout to %s goes to s2s-proxy at %s port %s (service resolver)",
			tostring(hostname), proxy_address, tostring(proxy_port));
		return proxy_resolver(conn_type, extra);
	elseif service_name == "xmpps-server" then
		-- no direct TLS candidate: the plain connection to s2s-proxy is the only one
		return no_targets(conn_type or "tcp", extra, "direct TLS is not used behind s2s-proxy");
	end
	return original_new(hostname, service_name, conn_type, extra);
end

if not have_event then
	service.new = redirected_new;
	module:log("debug", "No s2sout-pre-connect event in this Prosody: wrapping net.resolvers.service.new");
end

-- The event is fired on the sending host (module:context(from_host)), so hook it on every host.
local hooked = setmetatable({}, { __mode = "k" });   -- host events object -> true
local function hook_host(host)
	local host_session = prosody.hosts[host];
	if not host_session or not host_session.events or hooked[host_session.events] then return; end
	hooked[host_session.events] = true;
	-- lowest priority: ours is the last word, whatever other modules did to event.resolver
	module:context(host):hook("s2sout-pre-connect", pre_connect, -1000);
end

for host in pairs(prosody.hosts) do
	hook_host(host);
end
module:hook("host-activated", hook_host);

function module.unload()
	if service.new == redirected_new then
		service.new = original_new;
	end
end
