-- Checks config-examples/prosody/mod_s2s_proxy.lua against a mock of the Prosody module API, for
-- the Prosody versions the integration tests cannot run here: 0.12.4+/13 (the s2sout-pre-connect
-- event) next to 0.12.0-0.12.3 (the service resolver wrapper), plus configuration errors.
-- The real thing (Prosody 0.12.3 from Debian) is exercised end to end by test_federation.py.
--
--   lua5.4 tests/integration/prosody_plugin_check.lua config-examples/prosody/mod_s2s_proxy.lua
--
-- Prints "ok <check>" / "FAIL <check>: <why>" per check and exits non-zero if any failed.

local plugin_path = assert(arg[1], "usage: prosody_plugin_check.lua PATH/mod_s2s_proxy.lua")
local failures, passed = 0, 0

-- util.events-like: higher priority runs first; a handler returning non-nil stops the chain
local function new_events()
	local handlers = {}
	local ev = {}
	function ev.add_handler(name, fn, prio)
		handlers[name] = handlers[name] or {}
		table.insert(handlers[name], { fn = fn, prio = prio or 0 })
		table.sort(handlers[name], function (a, b) return a.prio > b.prio end)
	end
	function ev.fire_event(name, data)
		for _, h in ipairs(handlers[name] or {}) do
			local r = h.fn(data)
			if r ~= nil then return r end
		end
	end
	function ev.count(name) return #(handlers[name] or {}) end
	return ev
end

-- A fresh fake Prosody: resolver modules, features, hosts, the module API; then loads the plugin.
local function load_plugin(opts)
	local world = { logs = {} }
	local basic = { new = function (host, port, conn_type, extra)
		return { kind = "basic", host = host, port = port, conn_type = conn_type, extra = extra,
			next = function (self, cb) cb(self.conn_type .. "4", self.host, self.port, self.extra) end }
	end }
	local manual = { new = function (targets, conn_type, extra)
		return { kind = "manual", targets = targets or {}, conn_type = conn_type, extra = extra,
			next = function (self, cb)
				if #self.targets == 0 then cb(nil) return end
				cb(table.unpack(table.remove(self.targets, 1), 1, 4))
			end }
	end }
	local original_service_new = function (hostname, service, conn_type, extra)
		return { kind = "service", hostname = hostname, service = service, conn_type = conn_type, extra = extra }
	end
	local service = { new = original_service_new }
	local flags = {}
	for _, f in ipairs(opts.features or {}) do flags[f] = true end
	local features = { available = { contains = function (_, name) return flags[name] == true end } }
	package.loaded["net.resolvers.basic"] = basic
	package.loaded["net.resolvers.manual"] = manual
	package.loaded["net.resolvers.service"] = service
	package.loaded["core.features"] = features
	package.loaded["prosody.core.features"] = nil

	local prosody = { events = new_events(), hosts = {} }
	for _, h in ipairs(opts.hosts or { "a.test" }) do
		prosody.hosts[h] = { events = new_events() }
	end
	local options = opts.options or {}
	local module = { name = "s2s_proxy", host = "a.test" }
	function module:set_global() self.host = "*" end
	function module:get_option(name, default)
		local v = options[name]
		if v == nil then return default end
		return v
	end
	function module:get_option_string(name, default)
		local v = options[name]
		if v == nil then return default end
		return tostring(v)
	end
	function module:log(level, fmt, ...)
		table.insert(world.logs, level .. " " .. string.format(fmt, ...))
	end
	function module:hook(name, fn, prio)
		local target = (self.host ~= "*" and prosody.hosts[self.host]) or prosody
		target.events.add_handler(name, fn, prio)
	end
	function module:context(host)
		return setmetatable({ host = host }, { __index = self })
	end

	local env = setmetatable({ module = module, prosody = prosody }, { __index = _G })
	local chunk = assert(loadfile(plugin_path, "t", env))
	chunk()
	world.module, world.prosody, world.service = module, prosody, service
	world.original_service_new = original_service_new
	world.basic, world.manual = basic, manual
	return world
end

local function check(name, fn)
	local ok, err = pcall(fn)
	if ok then
		passed = passed + 1
		print("ok " .. name)
	else
		failures = failures + 1
		print("FAIL " .. name .. ": " .. tostring(err))
	end
end

local function first_target(resolver)
	local got
	resolver:next(function (...) got = table.pack(...) end)
	return got
end

local function logged(world, pattern)
	for _, line in ipairs(world.logs) do
		if line:find(pattern) then return true end
	end
	return false
end

local function fire_pre_connect(world, from_host, to_host)
	local event = { session = { from_host = from_host, to_host = to_host },
		resolver = { kind = "original" } }
	world.prosody.hosts[from_host].events.fire_event("s2sout-pre-connect", event)
	return event
end

-- 0.12.0 - 0.12.3: no event, the service resolver is wrapped ------------------------------------
check("0.12.3: xmpp-server lookups give s2s-proxy's address", function ()
	local w = load_plugin({ options = { s2s_proxy_port = 15270 } })
	local extra = { default_port = 5269 }
	local r = w.service.new("b.test", "xmpp-server", "tcp", extra)
	assert(r.kind == "basic", "resolver kind " .. tostring(r.kind))
	local t = first_target(r)
	assert(t[1] == "tcp4" and t[2] == "127.0.0.1" and t[3] == 15270, "target " .. table.concat(t, " ", 1, 3))
	assert(t[4] == extra, "mod_s2s's extra table must be passed on")
end)

check("0.12.3: no xmpps-server (direct TLS) candidate", function ()
	local w = load_plugin({ options = { s2s_proxy_port = 15270 } })
	local r = w.service.new("b.test", "xmpps-server", "tcp", { default_port = false })
	local t = first_target(r)
	assert(t[1] == nil, "expected no target, got " .. tostring(t[1]))
end)

check("0.12.3: other services untouched; unload restores", function ()
	local w = load_plugin({ options = { s2s_proxy_port = 15270 } })
	local r = w.service.new("example.test", "stun", "udp", nil)
	assert(r.kind == "service" and r.service == "stun", "other service changed")
	assert(w.service.new ~= w.original_service_new, "service.new should be wrapped")
	w.module.unload()
	assert(w.service.new == w.original_service_new, "unload should restore service.new")
end)

check("0.12.3: custom s2s_proxy_address", function ()
	local w = load_plugin({ options = { s2s_proxy_port = "15271", s2s_proxy_address = "127.0.0.9" } })
	local t = first_target(w.service.new("b.test", "xmpp-server", "tcp", {}))
	assert(t[2] == "127.0.0.9" and t[3] == 15271, "target " .. tostring(t[2]) .. " " .. tostring(t[3]))
end)

-- 0.12.4+ and 13: the s2sout-pre-connect event ---------------------------------------------------
check("0.12.4+: event on every host replaces the resolver, service.new untouched", function ()
	local w = load_plugin({ features = { "s2sout-pre-connect-event" }, hosts = { "a.test", "conference.a.test" },
		options = { s2s_proxy_port = 15270 } })
	assert(w.service.new == w.original_service_new, "service.new must not be wrapped when the event exists")
	for _, host in ipairs({ "a.test", "conference.a.test" }) do
		local ev = fire_pre_connect(w, host, "b.test")
		assert(ev.resolver.kind == "basic", host .. ": resolver " .. tostring(ev.resolver.kind))
		local t = first_target(ev.resolver)
		assert(t[2] == "127.0.0.1" and t[3] == 15270, host .. ": target " .. tostring(t[2]) .. " " .. tostring(t[3]))
	end
end)

check("0.12.4+: hosts activated after load are covered, once", function ()
	local w = load_plugin({ features = { "s2sout-pre-connect-event" }, options = { s2s_proxy_port = 15270 } })
	local ev_impl = new_events()
	w.prosody.hosts["late.test"] = { events = ev_impl }
	w.prosody.events.fire_event("host-activated", "late.test")
	w.prosody.events.fire_event("host-activated", "late.test")
	assert(ev_impl.count("s2sout-pre-connect") == 1, "hooks on late.test: " .. ev_impl.count("s2sout-pre-connect"))
	local ev = fire_pre_connect(w, "late.test", "b.test")
	assert(ev.resolver.kind == "basic", "resolver " .. tostring(ev.resolver.kind))
end)

check("0.12.4+: the last word over other modules' resolvers", function ()
	local w = load_plugin({ features = { "s2sout-pre-connect-event" }, options = { s2s_proxy_port = 15270 } })
	w.prosody.hosts["a.test"].events.add_handler("s2sout-pre-connect", function (event)
		event.resolver = { kind = "someone-else" }
	end, 0)
	local ev = fire_pre_connect(w, "a.test", "b.test")
	assert(ev.resolver.kind == "basic", "resolver " .. tostring(ev.resolver.kind))
end)

check("no feature flag: both mechanisms, same answer", function ()
	local w = load_plugin({ options = { s2s_proxy_port = 15270 } })
	local ev = fire_pre_connect(w, "a.test", "b.test")
	local t = first_target(ev.resolver)
	assert(t[2] == "127.0.0.1" and t[3] == 15270, "event target " .. tostring(t[2]))
end)

-- configuration errors: fail closed ---------------------------------------------------------------
check("missing s2s_proxy_port: error logged, connections fail (never direct)", function ()
	for _, features in ipairs({ {}, { "s2sout-pre-connect-event" } }) do
		local w = load_plugin({ features = features, options = {} })
		assert(logged(w, "^error s2s_proxy_port is not set"), "no error logged: " .. table.concat(w.logs, " | "))
		local r = (#features == 0) and w.service.new("b.test", "xmpp-server", "tcp", {})
			or fire_pre_connect(w, "a.test", "b.test").resolver
		local t = first_target(r)
		assert(t[1] == nil, "expected no target, got " .. tostring(t[2]))
		assert(tostring(r.last_error):find("s2s_proxy_port is not set"), "last_error " .. tostring(r.last_error))
	end
end)

check("invalid s2s_proxy_port: error names the value", function ()
	for _, bad in ipairs({ "abc", 0, 70000, 1.5 }) do
		local w = load_plugin({ options = { s2s_proxy_port = bad } })
		assert(logged(w, "is not a TCP port"), tostring(bad) .. ": " .. table.concat(w.logs, " | "))
		local t = first_target(w.service.new("b.test", "xmpp-server", "tcp", {}))
		assert(t[1] == nil, tostring(bad) .. ": expected no target")
	end
end)

print(string.format("plugin-check: %d passed, %d failed", passed, failures))
os.exit(failures == 0 and 0 or 1)
