// Every configuration key of s2s-proxy. Keys, syntax and defaults follow MongooseIM's `s2s` and
// listener documentation so that its `[s2s]` section can be pasted unchanged; Prosody's s2s options
// map in under `s2s`; keys of our own are marked so in their help.
#include "common/config/config_table.h"

#include <limits>

namespace s2s::config {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxRateLimit = 1'000'000'000;  // [antispam] rates and bursts, in stanzas
constexpr int64_t kMaxMs = 24LL * 3600 * 1000 * 365;  // a year
// Where DNS answers may not lead by default: this host (loopback, unspecified), link-local,
// multicast and broadcast.
constexpr const char* kDeniedNetworks =
    "[\"0.0.0.0/8\", \"127.0.0.0/8\", \"169.254.0.0/16\", \"224.0.0.0/4\", \"255.255.255.255/32\", "
    "\"::/128\", \"::1/128\", \"fe80::/10\", \"ff00::/8\"]";

using Choices = std::vector<std::string>;

Limit to_limit(const Value& v) { return Limit{v.i, v.infinite}; }
size_t index_of(const Wild& w) { return static_cast<size_t>(std::stoul(w[0])); }

template <class T>
T& at(std::vector<T>& list, size_t i) {
    if (list.size() <= i) list.resize(i + 1);
    return list[i];
}

// Options of one listener entry, relative to `listen.TYPE.*`.
struct SubSpec {
    std::string key;
    Kind kind;
    const char* def;
    int64_t min, max;
    Choices choices;
    unsigned flags;
    const char* help;
    std::function<void(Listener&, const Value&)> apply;
};

// TLS options, relative to `listen.TYPE.*.tls` or `s2s.outgoing.tls`.
enum Where : unsigned { InListener = 1, InOutgoing = 2, Both = 3 };
struct TlsSpec {
    std::string key;
    Kind kind;
    const char* def;
    Choices choices;
    unsigned where;
    const char* help;
    std::function<void(TlsOptions&, const Value&)> apply;
};

// The TLS modes each key takes (what each means: proxy/features/starttls.cpp's table).
const Choices kTlsModes{"tls", "starttls", "starttls_required"};
const Choices kUseStartTls{"false", "optional", "required", "required_trusted"};
const Choices kVerifyModes{"peer", "selfsigned_peer", "none"};
const Choices kTlsVersions{"tlsv1.2", "tlsv1.3"};
const Choices kProtocolOptions{"no_sslv2",   "no_sslv3",   "no_tlsv1",
                               "no_tlsv1_1", "no_tlsv1_2", "no_tlsv1_3",
                               "cipher_server_preference", "no_compression", "no_ticket"};

std::vector<TlsSpec> tls_specs() {
    return {
        {"mode", Kind::Enum, nullptr, kTlsModes, Both,
         "tls: direct TLS (XEP-0368); starttls: offered/used when offered; starttls_required: no plain "
         "stream. On [[listen.s2s]] and s2s.outgoing.tls, unset in a tls subsection that has other keys: starttls "
         "(MongooseIM's default), even beside s2s.use_starttls = \"false\", and starttls_required beside "
         "s2s.use_starttls = \"required\" or \"required_trusted\" (a subsection never weakens it); with no tls key at all: from "
         "s2s.use_starttls on a listener, and on outgoing links STARTTLS whenever the remote offers it unless "
         "s2s.use_starttls is set",
         [](TlsOptions& t, const Value& v) { t.mode = kTlsModes[v.choice]; }},
        {"verify_mode", Kind::Enum, "\"peer\"", kVerifyModes, Both,
         "how peer certificates are judged: peer: valid if it chains to cacertfile; selfsigned_peer: "
         "self-signed ones are accepted for TLS too, but prove no domain (dialback is still needed); none: not checked (without a valid certificate a peer may still use "
         "dialback, unless secure_auth, secure_domains or required_trusted ask for one). On a [[listen.s2s]] "
         "with peer and disconnect_on_failure = true, a client without a valid certificate is refused at the "
         "handshake",
         [](TlsOptions& t, const Value& v) { t.verify_mode = static_cast<VerifyMode>(v.choice); }},
        {"certfile", Kind::CertFile, nullptr, {}, Both, "PEM certificate chain presented to peers",
         [](TlsOptions& t, const Value& v) { t.certfile = v.s; }},
        {"keyfile", Kind::KeyFile, nullptr, {}, Both, "PEM private key of certfile (unset: inside certfile)",
         [](TlsOptions& t, const Value& v) { t.keyfile = v.s; }},
        {"cacertfile", Kind::CertFile, nullptr, {}, Both,
         "PEM CA certificates that peers must chain to (unset: the system store)",
         [](TlsOptions& t, const Value& v) { t.cacertfile = v.s; }},
        {"dhfile", Kind::Path, nullptr, {}, Both,
         "PEM Diffie-Hellman parameters (openssl dhparam) for DHE suites. Listener: DHE suites use this group; its "
         "prime must have at least 2048 bits (smaller groups are breakable); unset: the RFC 3526 2048-bit group. "
         "s2s.outgoing.tls: the file's prime size becomes the smallest DH prime accepted from servers (unset: 1024 "
         "bits)",
         [](TlsOptions& t, const Value& v) { t.dhfile = v.s; }},
        {"ciphers", Kind::String, nullptr, {}, Both,
         "OpenSSL cipher string, as s2s.ciphers, for this listener or for outgoing links (unset: s2s.ciphers)",
         [](TlsOptions& t, const Value& v) { t.ciphers = v.s; }},
        {"password", Kind::Secret, nullptr, {}, Both,
         "password of an encrypted keyfile (never printed). mbedTLS 2.28 reads PKCS#8 keys encrypted with "
         "PBE-SHA1-3DES or PBES2 with 3DES, and traditional PEM encryption (AES, 3DES), but not "
         "OpenSSL 3's default (PBES2, AES-256, HMAC-SHA256): such a key is refused with the openssl command that "
         "converts it",
         [](TlsOptions& t, const Value& v) { t.password = v.s; }},
        {"versions", Kind::StringList, nullptr, kTlsVersions, Both,
         "TLS versions allowed, e.g. [\"tlsv1.2\", \"tlsv1.3\"] (unset: all the library has)",
         [](TlsOptions& t, const Value& v) { t.versions = v.list; }},
        {"crl_files", Kind::StringList, nullptr, {}, Both, "PEM certificate revocation lists",
         [](TlsOptions& t, const Value& v) { t.crl_files = v.list; }},
        {"disconnect_on_failure", Kind::Bool, "true", {}, InListener,
         "on [[listen.s2s]] with verify_mode = \"peer\": true refuses a TLS handshake whose client certificate is missing or does "
         "not chain to cacertfile (fatal alert, counted in tls_failures_total{reason=\"certificate\"}); false "
         "goes on and judges the certificate per remote domain (secure_auth, secure_domains, required_trusted), "
         "so peers that use dialback only (no client certificate, as most servers) still connect. Keep those "
         "peers working with false or verify_mode = \"none\". selfsigned_peer and none never refuse at the "
         "handshake. Applies to a listener with its own tls subsection; TLS that comes only from "
         "s2s.use_starttls keeps its 6.x meaning (required_trusted demands valid certificates per domain)",
         [](TlsOptions& t, const Value& v) { t.disconnect_on_failure = v.b; }},
        {"protocol_options", Kind::StringList, "[\"no_sslv2\", \"no_sslv3\", \"no_tlsv1\", \"no_tlsv1_1\"]",
         kProtocolOptions, InListener,
         "TLS library options (MongooseIM's fast_tls): no_sslv2, no_sslv3, no_tlsv1, no_tlsv1_1 (always so: TLS 1.2 "
         "is the minimum), no_tlsv1_2 (TLS 1.3 only; refused when the TLS library has no TLS 1.3), no_tlsv1_3 (TLS "
         "1.2 only), cipher_server_preference (always so: the listener chooses by its own cipher order), "
         "no_compression (always so: the TLS library never compresses), no_ticket (no session tickets: every "
         "reconnection is a full handshake)",
         [](TlsOptions& t, const Value& v) { t.protocol_options = v.list; }},
        {"module", Kind::Ignored, nullptr, {}, InListener,
         "TLS library choice (ignored: mbedTLS is the only TLS library)", nullptr},
        {"server_name_indication.enabled", Kind::Bool, "true", {}, InOutgoing,
         "send SNI (the remote domain, or server_name_indication.host); false: no SNI is sent",
         [](TlsOptions& t, const Value& v) { t.sni_enabled = v.b; }},
        {"server_name_indication.host", Kind::Domain, nullptr, {}, InOutgoing,
         "name sent in SNI instead of the remote domain (unset: the remote domain); the certificate must still "
         "be valid for the remote domain, which is what it proves for XMPP",
         [](TlsOptions& t, const Value& v) { t.sni_host = v.s; }},
        {"server_name_indication.protocol", Kind::Enum, "\"default\"", {"default", "https"}, InOutgoing,
         "https: certificate names matched as browsers do (a \"*\" as the whole leftmost label matches one "
         "label); default: MongooseIM takes no wildcards here, but s2s-proxy matches names by RFC 6125 (which "
         "XMPP allows wildcards under) with the same rule as https, so both values behave alike",
         [](TlsOptions& t, const Value& v) { t.sni_protocol = static_cast<SniProtocol>(v.choice); }},
    };
}

std::vector<SubSpec> listener_specs(const char* default_ip) {
    return {
        {"port", Kind::Int, nullptr, 1, 65535, {}, Required, "TCP port to listen on",
         [](Listener& l, const Value& v) { l.port = static_cast<int>(v.i); }},
        {"ip_address", Kind::IpAddress, default_ip, 0, 0, {}, 0, "address to listen on",
         [](Listener& l, const Value& v) { l.ip_address = v.s; }},
        {"access", Kind::AccessRef, "\"all\"", 0, 0, {}, Reloadable,
         "access rule (MongooseIM's [access] with [acl] match all/none/current_domain or server = \"x\"), or \"all\". "
         "[[listen.s2s]]: each remote domain must pass it once it authenticates; one it denies gets db:result "
         "type='error' <not-authorized/> (dialback) or <failure><not-authorized/> (SASL EXTERNAL), and a stanza from "
         "a domain a reload has since denied ends the stream with policy-violation; each refusal is counted "
         "(access_refusals_total). A remote may send stanzas back on a link s2s-proxy opened (XEP-0288 bidi) only while "
         "one [[listen.s2s]]'s rule admits it. [[listen.local]]: each local domain the local server authenticates "
         "must pass it",
         [](Listener& l, const Value& v) { l.access = v.s; }},
        {"shaper", Kind::ShaperRef, "\"none\"", 0, 0, {}, Reloadable,
         "limit on the incoming byte rate of each connection: \"none\", a [shaper.NAME], or (as for MongooseIM's c2s "
         "listeners) an [access] rule whose values are shaper names or \"none\". A rule is evaluated when the "
         "connection is accepted, with no domain known (acls that need one do not match; no match: no shaper), and "
         "on [[listen.s2s]] again for each remote domain that authenticates, the strictest rate applying",
         [](Listener& l, const Value& v) { l.shaper = v.s; }},
        {"max_connections", Kind::Limit, "\"infinity\"", 1, kMaxInt, {}, Reloadable,
         "connections accepted at once (soft: new ones are refused past it)",
         [](Listener& l, const Value& v) { l.max_connections = to_limit(v); }},
        {"state_timeout", Kind::Limit, "5_000", 1, kMaxMs, {}, Reloadable,
         "ms a stream may take to negotiate before it is closed",
         [](Listener& l, const Value& v) { l.state_timeout = to_limit(v); }},
        {"reuse_port", Kind::Bool, "false", 0, 0, {}, 0, "set SO_REUSEPORT so several processes share the port",
         [](Listener& l, const Value& v) { l.reuse_port = v.b; }},
        {"backlog", Kind::Int, "1024", 1, 65535, {}, 0, "TCP accept backlog",
         [](Listener& l, const Value& v) { l.backlog = static_cast<int>(v.i); }},
        {"max_tls_handshakes", Kind::Limit, "256", 1, kMaxInt, {}, Reloadable,
         "TLS handshakes in progress at once on this listener; a connection that would start one more is closed "
         "before any TLS work (ours)",
         [](Listener& l, const Value& v) { l.max_tls_handshakes = to_limit(v); }},
        {"max_stanza_size", Kind::Limit, "524_288", 10000, kMaxStanzaSizeCap, {}, Reloadable,
         "bytes one stanza may take (at least 10_000, RFC 6120 13.12; at most 16_777_216, the hard limit, which is "
         "what \"infinity\" means here: unlike MongooseIM, s2s-proxy never takes stanzas of any size); a larger one closes the stream with policy-violation, and so does a stanza whose tree takes more than 4 bytes of memory per byte of this limit plus 256 KiB. Until the peer has authenticated, 16 KiB, 500 elements and 128 KiB of tree apply instead. The first [[listen.local]]'s value also applies to the streams s2s-proxy opens to the local server. Streams opened after a reload take a new value",
         [](Listener& l, const Value& v) { l.max_stanza_size = to_limit(v); }},
    };
}

// Options of [[listen.s2s]] entries only: the public side, where a load balancer may stand in
// front (the local server connects on loopback, directly).
std::vector<SubSpec> public_listener_specs() {
    return {
        {"proxy_protocol", Kind::Bool, "false", 0, 0, {}, Reloadable,
         "expect a PROXY protocol header (v1 or v2, HAProxy's) from senders in proxy_trusted and take the client "
         "address from it; a header from any other sender closes the connection (ours)",
         [](Listener& l, const Value& v) { l.proxy_protocol = v.b; }},
        {"proxy_trusted", Kind::Networks, "[]", 0, 0, {}, Reloadable,
         "networks of the load balancers that send the PROXY header, e.g. [\"10.0.0.0/8\", \"fd00::/8\"]; a bare "
         "address is one host (ours)",
         [](Listener& l, const Value& v) { l.proxy_trusted = NetworkList::parse(v.list).value_or(NetworkList{}); }},
        {"max_connections_per_host", Kind::Limit, "\"infinity\"", 1, kMaxInt, {}, Reloadable,
         "connections at once from one client address (the one a PROXY header names); more get "
         "resource-constraint (ours)",
         [](Listener& l, const Value& v) { l.max_connections_per_host = to_limit(v); }},
        {"max_connection_rate_per_host", Kind::Limit, "20", 1, kMaxInt, {}, Reloadable,
         "new connections per second from one client address (a burst of as many at once); more are closed before "
         "any TLS work (ours)",
         [](Listener& l, const Value& v) { l.max_connection_rate_per_host = to_limit(v); }},
        {"proxy_protocol_timeout", Kind::Limit, "3_000", 1, kMaxMs, {}, Reloadable,
         "ms a connection may take to send its PROXY header (or, from outside proxy_trusted, its first bytes) when "
         "proxy_protocol is on (ours)",
         [](Listener& l, const Value& v) { l.proxy_protocol_timeout = to_limit(v); }},
    };
}

// [[listen.local]]'s tls keys where their meaning there differs from [[listen.s2s]]'s: the local
// server is the peer, and s2s.use_starttls (the public side's) does not apply.
const char* local_listener_tls_help(const std::string& key, const char* help) {
    if (key == "mode")
        return "TLS for the local server's outgoing s2s, for a local server on another host: tls: direct TLS "
               "(XEP-0368); starttls: STARTTLS offered; starttls_required: a db:result, db:verify or stanza before "
               "STARTTLS ends the stream with policy-violation (TLS is mandatory-to-negotiate, RFC 6120 5.3.1). A tls subsection without mode means "
               "starttls (MongooseIM's default); without a tls subsection the listener is plain (s2s.use_starttls is "
               "for the public side only). The dialback key check (local.verify_dialback) applies either way";
    if (key == "verify_mode")
        return "how a client certificate the local server sends is judged: peer: it must chain to tls.cacertfile; "
               "selfsigned_peer: a self-signed one passes too; none: not checked. With peer and "
               "disconnect_on_failure = true (both defaults) a handshake without a valid client certificate is "
               "refused, as on [[listen.s2s]]; the dialback key check (local.verify_dialback) applies either way";
    if (key == "certfile") return "PEM certificate chain presented to the local server (unset: s2s.certfile)";
    if (key == "disconnect_on_failure")
        return "with verify_mode = \"peer\": true refuses a TLS handshake whose client certificate is missing or "
               "does not chain to tls.cacertfile (fatal alert, counted in tls_failures_total{reason=\"certificate\"}); "
               "false goes on, and the local server's domains are proven by dialback alone. Give the local server a "
               "client certificate from tls.cacertfile, or write false for one that has none";
    return help;
}

void add_listener_type(std::vector<OptionSpec>& out, const std::string& type, const char* default_ip,
                       std::vector<Listener> Config::*list) {
    const std::string prefix = "listen." + type + ".*.";
    std::vector<SubSpec> specs = listener_specs(default_ip);
    if (type == "s2s") {
        std::vector<SubSpec> more = public_listener_specs();
        specs.insert(specs.end(), more.begin(), more.end());
    }
    for (auto& s : specs) {
        auto apply = s.apply;
        out.push_back({prefix + s.key, s.kind, s.def, s.min, s.max, s.choices, s.flags, s.help,
                       [apply, list](Config& c, const Wild& w, const Value& v) {
                           apply(at(c.*list, index_of(w)), v);
                       }});
    }
    for (auto& t : tls_specs()) {
        if (!(t.where & InListener)) continue;
        auto apply = t.apply;
        Apply a = nullptr;
        if (apply)
            a = [apply, list](Config& c, const Wild& w, const Value& v) {
                apply(at(c.*list, index_of(w)).tls, v);
            };
        const char* help = type == "local" ? local_listener_tls_help(t.key, t.help) : t.help;
        out.push_back({prefix + "tls." + t.key, t.kind, t.def, 0, 0, t.choices, Reloadable, help, a});
    }
}

std::vector<OptionSpec> build() {
    const unsigned R = Reloadable;
    std::vector<OptionSpec> o = {
        // [general]
        {"general.hosts", Kind::DomainList, nullptr, 1, 0, {}, Required,
         "local domains this proxy fronts (ours: the domains of the server behind it); like every "
         "domain in the config, compared in canonical form (IDNA A-labels, lowercase, no trailing dot)",
         [](Config& c, const Wild&, const Value& v) { c.hosts = v.list; }},
        {"general.loglevel", Kind::Enum, "\"warning\"",
         0, 0, {"none", "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "all"}, R,
         "least severe level logged",
         [](Config& c, const Wild&, const Value& v) { c.loglevel = static_cast<LogSetting>(v.choice); }},
        {"general.log_format", Kind::Enum, "\"text\"", 0, 0, {"text", "json"}, R,
         "text lines, or one JSON object per line (ours)",
         [](Config& c, const Wild&, const Value& v) { c.log_format = static_cast<LogFormatSetting>(v.choice); }},

        {"general.shutdown_timeout", Kind::Int, "10_000", 0, 3600 * 1000, {}, R,
         "ms SIGTERM waits for queued stanzas to be delivered before bouncing the rest; the process exits at "
         "most 9 s after that (ours)",
         [](Config& c, const Wild&, const Value& v) { c.shutdown_timeout = v.i; }},
        {"general.max_stanza_elements", Kind::Int, "10_000", 2500, 10000000, {}, R,
         "elements one stanza may hold, on every stream (public and local); more close the stream with "
         "policy-violation. At least 2_500, so that any stanza of 10_000 bytes passes. Streams opened after a "
         "reload take a new value (ours)",
         [](Config& c, const Wild&, const Value& v) { c.max_stanza_elements = v.i; }},
        {"general.stanza_timeout", Kind::Limit, "30_000", 1000, kMaxMs, {}, R,
         "ms a stanza may take from its first byte to its last, on every stream, authenticated or not; a "
         "stream whose stanza is late is closed with policy-violation (the clock starts again when s2s-proxy "
         "itself is holding reading back). \"infinity\": no deadline, only the idle timeout. Streams opened after a "
         "reload take a new value (ours)",
         [](Config& c, const Wild&, const Value& v) { c.stanza_timeout = to_limit(v); }},
        {"general.send_timeout", Kind::Limit, "15_000", 1000, kMaxMs, {}, R,
         "ms our output may wait for the peer to take it, on every stream (public and local, both directions): a "
         "peer that takes none of it, or leaves more than 256 KiB of it waiting, for that long has stopped reading, "
         "and its stream ends with connection-timeout; on an outgoing link the stanzas still queued are bounced "
         "with remote-server-timeout. \"infinity\": no deadline, a peer that stops reading holds its stream until "
         "the 8 MiB output limit. Streams opened after a reload take a new value (ours: ejabberd's listener option "
         "send_timeout, with its default)",
         [](Config& c, const Wild&, const Value& v) { c.send_timeout = to_limit(v); }},
        {"general.stanza_memory_budget", Kind::Limit, "268_435_456", 65536, std::numeric_limits<int64_t>::max() / 2,
         {}, R,
         "bytes the trees of all unfinished stanzas of the process may hold together (256 MiB); past it the "
         "stream holding the largest unfinished stanza is closed with resource-constraint. \"infinity\": no "
         "budget (ours)",
         [](Config& c, const Wild&, const Value& v) { c.stanza_memory_budget = to_limit(v); }},

        // [s2s] general
        {"s2s.default_policy", Kind::Enum, "\"allow\"", 0, 0, {"allow", "deny"}, R,
         "policy for remote domains not in host_policy",
         [](Config& c, const Wild&, const Value& v) { c.default_policy = static_cast<Policy>(v.choice); }},
        {"s2s.host_policy.*.host", Kind::Domain, nullptr, 0, 0, {}, Required | R, "remote domain",
         [](Config& c, const Wild& w, const Value& v) { at(c.host_policy, index_of(w)).host = v.s; }},
        {"s2s.host_policy.*.policy", Kind::Enum, nullptr, 0, 0, {"allow", "deny"}, Required | R,
         "policy for that domain",
         [](Config& c, const Wild& w, const Value& v) {
             at(c.host_policy, index_of(w)).policy = static_cast<Policy>(v.choice);
         }},
        {"s2s.use_starttls", Kind::Enum, "\"false\"", 0, 0, kUseStartTls, R,
         "TLS where no tls subsection says otherwise: false, optional, required, required_trusted (certificate "
         "verified). Unset: listeners without a tls subsection offer no TLS, and outgoing links without "
         "s2s.outgoing.tls use STARTTLS whenever the remote offers it (no client certificate needed; the "
         "remote's certificate is judged per domain, and an unverified one still allows dialback); \"false\" "
         "set explicitly means no TLS at all",
         [](Config& c, const Wild&, const Value& v) { c.use_starttls = kUseStartTls[v.choice]; }},
        {"s2s.certfile", Kind::CertFile, nullptr, 0, 0, {}, R,
         "PEM file with the certificate and its private key, used when no tls.certfile is set",
         [](Config& c, const Wild&, const Value& v) { c.certfile = v.s; }},
        {"s2s.domain_certfile.*.domain", Kind::Domain, nullptr, 0, 0, {}, Required | R,
         "a local domain with a certificate of its own",
         [](Config& c, const Wild& w, const Value& v) { at(c.domain_certs, index_of(w)).domain = v.s; }},
        {"s2s.domain_certfile.*.certfile", Kind::CertFile, nullptr, 0, 0, {}, Required | R,
         "PEM file with that domain's certificate and key (chosen by SNI; client certificate for EXTERNAL)",
         [](Config& c, const Wild& w, const Value& v) { at(c.domain_certs, index_of(w)).certfile = v.s; }},
        {"s2s.shared", Kind::Secret, nullptr, 0, 0, {}, Generated,
         "dialback secret (default: 10 random bytes, hex; replicas must share one; never printed)",
         [](Config& c, const Wild&, const Value& v) { c.shared = v.s; }},
        {"s2s.ciphers", Kind::String, "\"TLSv1.2:TLSv1.3\"", 0, 0, {}, R,
         "OpenSSL cipher string used when no tls.ciphers is set: suite names (ECDHE-RSA-AES128-GCM-SHA256, or IANA "
         "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), keywords (HIGH, DEFAULT, ALL, ECDHE, DHE, kRSA, aRSA, ECDSA, AESGCM, "
         "AES128, AES256, CHACHA20, SHA256, SHA384, TLSv1.2: the suites that need TLS 1.2, TLSv1.3), '+' for "
         "suites matching all ('ECDHE+AESGCM'), prefixes '!' (never), '-' (remove), '+' (move last), and "
         "@STRENGTH (longest keys first, as in OpenSSL); @SECLEVEL=n is accepted and has no effect (mbedTLS has no "
         "security levels). Words that match nothing in mbedTLS (aNULL, eNULL, "
         "MD5, RC4, 3DES, DES, EXPORT, LOW, MEDIUM, PSK, SRP) may be excluded; an unknown word, or a string that "
         "leaves no suite, is refused. TLS 1.3 suites (mbedTLS 3.6+) stay on unless named, as in OpenSSL",
         [](Config& c, const Wild&, const Value& v) { c.ciphers = v.s; }},
        {"s2s.secure_auth", Kind::Bool, "false", 0, 0, {}, R,
         "Prosody's s2s_secure_auth: only certificate authentication, no dialback; outgoing links use TLS "
         "(and need the remote's certificate) whatever use_starttls says",
         [](Config& c, const Wild&, const Value& v) { c.secure_auth = v.b; }},
        {"s2s.secure_domains", Kind::DomainList, "[]", 0, 0, {}, R,
         "Prosody's s2s_secure_domains: these always need a valid certificate; links to them use TLS "
         "whatever use_starttls says, and fail if they offer none",
         [](Config& c, const Wild&, const Value& v) { c.secure_domains = v.list; }},
        {"s2s.insecure_domains", Kind::DomainList, "[]", 0, 0, {}, R,
         "Prosody's s2s_insecure_domains: these may use dialback even with secure_auth",
         [](Config& c, const Wild&, const Value& v) { c.insecure_domains = v.list; }},
        {"s2s.bidi", Kind::Bool, "true", 0, 0, {}, R,
         "XEP-0288 (Prosody's mod_s2s_bidi): offer bidirectional streams after TLS and ask for them when the "
         "peer's certificate is valid, so one connection carries both directions",
         [](Config& c, const Wild&, const Value& v) { c.bidi = v.b; }},
        {"s2s.stream_limits", Kind::Bool, "true", 0, 0, {}, R,
         "XEP-0478: list <limits/> in the features of inbound streams (max-bytes: the listener's max_stanza_size; "
         "idle-seconds: s2s.outgoing.stream_timeout). The limits a remote advertises are honoured either way: "
         "a larger stanza is bounced to its sender, an idle link kept alive with whitespace",
         [](Config& c, const Wild&, const Value& v) { c.stream_limits = v.b; }},
        {"s2s.max_domain_pairs", Kind::Int, "256", 1, 100000, {}, R,
         "(remote, local) domain pairs one inbound stream may authenticate (dialback piggybacking, SASL); "
         "a claim beyond it is refused with policy-violation and the peer must open another stream (ours)",
         [](Config& c, const Wild&, const Value& v) { c.max_domain_pairs = v.i; }},
        {"s2s.max_verifications_per_stream", Kind::Int, "8", 1, 64, {}, R,
         "dialback verifications (each a question to another server, maybe a new connection) one inbound "
         "stream may have under way; more are answered resource-constraint (ours)",
         [](Config& c, const Wild&, const Value& v) { c.max_verifications_per_stream = v.i; }},
        {"s2s.max_verifications_per_host", Kind::Int, "32", 1, 1000000, {}, R,
         "dialback verifications all inbound streams from one client address may have under way; more are "
         "answered resource-constraint (ours)",
         [](Config& c, const Wild&, const Value& v) { c.max_verifications_per_host = v.i; }},
        {"s2s.max_verifications", Kind::Int, "1024", 1, 1000000, {}, R,
         "dialback verifications under way at once for all inbound streams; more are answered "
         "resource-constraint (ours)",
         [](Config& c, const Wild&, const Value& v) { c.max_verifications = v.i; }},

        // [s2s.outgoing]
        {"s2s.outgoing.port", Kind::Int, "5269", 1, 65535, {}, R, "port of remote servers when DNS names none",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.port = static_cast<int>(v.i); }},
        {"s2s.outgoing.ip_versions", Kind::IntList, "[4, 6]", 1, 0, {"4", "6"}, R,
         "IP versions tried, in order",
         [](Config& c, const Wild&, const Value& v) {
             c.outgoing.ip_versions.assign(v.ints.begin(), v.ints.end());
         }},
        {"s2s.outgoing.connection_timeout", Kind::Limit, "10_000", 1, kMaxMs, {}, R,
         "ms one TCP connect may take",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.connection_timeout = to_limit(v); }},
        {"s2s.outgoing.max_stanza_size", Kind::Limit, "524_288", 10000, kMaxStanzaSizeCap, {}, R,
         "bytes one stanza from a remote server may take on an outgoing link (at least 10_000; at most 16_777_216, "
         "the hard limit, which is what \"infinity\" means here; MongooseIM's default \"infinity\" is not ours); its tree may take 4 bytes of memory per byte plus 256 KiB; until the link is negotiated "
         "16 KiB, 500 elements and 128 KiB of tree apply instead",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.max_stanza_size = to_limit(v); }},
        {"s2s.outgoing.shaper", Kind::ShaperRef, "\"none\"", 0, 0, {}, R,
         "shaper for the incoming traffic of outgoing links, or \"none\"",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.shaper = v.s; }},
        {"s2s.outgoing.state_timeout", Kind::Limit, "5_000", 0, kMaxMs, {}, R,
         "ms s2s-proxy waits for the remote server to answer during negotiation of an outgoing stream (its stream "
         "header, features, TLS, SASL and dialback answers); when it passes, the stream ends with the "
         "connection-timeout stream error (a bare close during a TLS handshake) and the queued stanzas are bounced "
         "with remote-server-timeout. 0: no wait at all, so negotiation ends at once unless the answer is already "
         "there (MongooseIM's meaning of a 0 ms timeout); \"infinity\": no deadline",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.state_timeout = to_limit(v); }},
        {"s2s.outgoing.stream_timeout", Kind::Limit, "600_000", 1, kMaxMs, {}, R,
         "ms an outgoing link may stay idle before it is closed",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.stream_timeout = to_limit(v); }},
        {"s2s.outgoing.max_retry_delay", Kind::Int, "300", 1, kMaxInt, {}, R,
         "s, the longest wait between attempts to reach a failing remote host",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.max_retry_delay = v.i; }},
        {"s2s.outgoing.queue_max_stanzas", Kind::Int, "1000", 1, 10000000, {}, R,
         "stanzas that may wait for one (local, remote) link; more are bounced with resource-constraint (ours)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.queue_max_stanzas = v.i; }},
        {"s2s.outgoing.queue_max_bytes", Kind::Int, "4_194_304", 1024, kMaxInt, {}, R,
         "bytes of stanzas that may wait for one (local, remote) link (ours)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.queue_max_bytes = v.i; }},
        {"s2s.outgoing.max_hosts_in_backoff", Kind::Int, "10_000", 16, 10000000, {}, R,
         "remote hosts remembered as failing (each waits max_retry_delay at most, and is forgotten a minute "
         "after that); when full, the oldest failure is forgotten first (ours)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.max_hosts_in_backoff = v.i; }},
        {"s2s.outgoing.dns.timeout", Kind::Int, "10", 1, kDnsMaxTimeoutS, {}, 0,
         "s one DNS attempt may take (at most 300: the DNS library's limit)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.dns_timeout = v.i; }},
        {"s2s.outgoing.dns.retries", Kind::Int, "2", 1, kDnsMaxRetries, {}, 0,
         "DNS attempts before giving up (at most 50: the DNS library's limit)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.dns_retries = static_cast<int>(v.i); }},
        {"s2s.outgoing.dns.nameservers", Kind::Nameservers, "[]", 0, static_cast<int64_t>(kDnsMaxNameservers), {}, 0,
         "DNS servers as \"ip\" or \"ip:port\", at most 6 (ours; empty: /etc/resolv.conf)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.dns_nameservers = v.list; }},
        {"s2s.outgoing.dane", Kind::Bool, "false", 0, 0, {}, 0,
         "DANE for outgoing links (RFC 6698, RFC 7673): look up TLSA records (_PORT._tcp.TARGET) for each SRV "
         "target, or for the domain without SRV, and trust them only when the nameservers (dns.nameservers: a "
         "validating resolver on loopback, such as unbound) set the AD bit on the SRV, address and TLSA answers. "
         "Usable records (DANE-EE 3, DANE-TA 2; PKIX-TA 0 and PKIX-EE 1 are ignored) make TLS mandatory and the "
         "certificate must match them, no CA needed; an unsigned (insecure) answer or a secure \"no records\" "
         "changes nothing; a bogus or failed TLSA lookup means that server is not dialled. s2s.outgoing.address "
         "entries skip DANE (ours)",
         [](Config& c, const Wild&, const Value& v) { c.outgoing.dane = v.b; }},
        {"s2s.outgoing.denied_networks", Kind::Networks, kDeniedNetworks, 0, 0, {}, R,
         "networks an address from DNS (or an IP-literal domain) may not lead to: such a candidate is not dialled, "
         "and when none is left the stanzas are bounced (\"DNS for D points at a forbidden address\"). Default: "
         "loopback, unspecified (0.0.0.0/8), link-local, multicast and broadcast, IPv4 and IPv6 (IPv4 networks also "
         "cover their "
         "IPv4-mapped IPv6 form); add private ranges such as \"10.0.0.0/8\", \"172.16.0.0/12\", "
         "\"192.168.0.0/16\", \"fc00::/7\" if remote domains must not reach into your network; [] allows every "
         "address. s2s.outgoing.address overrides are never checked against it; whatever the list, no address "
         "where s2s-proxy itself listens is ever dialled (ours)",
         [](Config& c, const Wild&, const Value& v) {
             c.outgoing.denied_networks = NetworkList::parse(v.list).value_or(NetworkList{});
         }},
        {"s2s.outgoing.address.*.host", Kind::Domain, nullptr, 0, 0, {}, Required | R,
         "remote domain reached at this address instead of through DNS (MongooseIM: for non-local domains; one of "
         "general.hosts is refused at load, the local server at local.server serves those)",
         [](Config& c, const Wild& w, const Value& v) { at(c.outgoing.address, index_of(w)).host = v.s; }},
        {"s2s.outgoing.address.*.ip_address", Kind::IpAddress, nullptr, 0, 0, {}, Required | R,
         "its IP address (with the port, never one where s2s-proxy itself listens: such an entry is refused at load)",
         [](Config& c, const Wild& w, const Value& v) { at(c.outgoing.address, index_of(w)).ip_address = v.s; }},
        {"s2s.outgoing.address.*.port", Kind::Int, nullptr, 1, 65535, {}, R, "its port (unset: outgoing.port)",
         [](Config& c, const Wild& w, const Value& v) {
             at(c.outgoing.address, index_of(w)).port = static_cast<int>(v.i);
         }},

        // [local]
        {"local.server", Kind::HostPort, nullptr, 0, 0, {}, Required,
         "\"host:port\" of the local server's loopback s2s listener (component mode: its XEP-0114 component "
         "listener)",
         [](Config& c, const Wild&, const Value& v) { c.local_server = v.s; }},
        {"local.mode", Kind::Enum, "\"s2s\"", 0, 0, {"s2s", "component"}, 0,
         "how stanzas from remote domains reach the local server: s2s: a plain s2s stream per local domain, "
         "s2s-proxy vouching for each remote domain by dialback; component: one XEP-0114 component stream "
         "(local.component_name, local.password) for every domain, which the server must accept with any from "
         "(ejabberd: check_from: false). Either way its outgoing s2s comes to [[listen.local]]",
         [](Config& c, const Wild&, const Value& v) { c.local_mode = static_cast<LocalMode>(v.choice); }},
        {"local.queue_timeout", Kind::Limit, "60_000", 1, kMaxMs, {}, R,
         "ms stanzas for the local server may wait while it is unreachable before they are bounced (ours)",
         [](Config& c, const Wild&, const Value& v) { c.local_queue_timeout = to_limit(v); }},
        {"local.remote_idle_timeout", Kind::Int, "600_000", 1000, kMaxMs, {}, R,
         "local.mode s2s: ms after which a remote domain that has sent nothing toward the local server is forgotten "
         "on the stream to it; when it sends again it is vouched for by dialback once more. Bounds what that "
         "long-lived stream holds when many remote domains come and go (ours)",
         [](Config& c, const Wild&, const Value& v) { c.local_remote_idle_timeout = v.i; }},
        {"local.password", Kind::Secret, nullptr, 0, 0, {}, 0,
         "component mode: the XEP-0114 secret the local server has for local.component_name (required "
         "there; never printed or logged)",
         [](Config& c, const Wild&, const Value& v) { c.local_password = v.s; }},
        {"local.component_name", Kind::Domain, nullptr, 0, 0, {}, 0,
         "component mode: the domain s2s-proxy connects as, e.g. \"s2s-proxy.example.com\", as named in the "
         "server's component listener (required there) (ours)",
         [](Config& c, const Wild&, const Value& v) { c.local_component_name = v.s; }},
        {"local.dns_responder", Kind::HostPort, nullptr, 0, 0, {}, 0,
         "\"ip:port\" on loopback for a DNS responder that answers SRV _xmpp-server._tcp.<any domain> with "
         "localhost and the first [[listen.local]] port, for a local server that cannot be told where to send "
         "its outgoing s2s (ejabberd: its inetrc nameserver; any server's system resolver with "
         "local.dns_upstream) (ours; unset: none)",
         [](Config& c, const Wild&, const Value& v) { c.local_dns_responder = v.s; }},
        {"local.dns_upstream", Kind::Nameservers, "[]", 0, static_cast<int64_t>(kDnsMaxNameservers), {}, 0,
         "resolvers (\"ip\" or \"ip:port\", at most 6) to which local.dns_responder forwards every query it does "
         "not answer itself, so that it can be the local server's system resolver (resolv.conf, a pod's dnsConfig): "
         "it then answers only SRV _xmpp-server/_xmpps-server._tcp of remote domains (target s2s-proxy.localhost, "
         "and that name's A/AAAA), and our own domains' SRV go upstream too; answers are relayed unchanged but for "
         "the ID (UDP only; at most 256 forwards wait at once, each 5 s). With s2s.outgoing.dns.nameservers "
         "unset, s2s-proxy's own lookups use these too. Never local.dns_responder itself (ours; empty: no "
         "forwarding)",
         [](Config& c, const Wild&, const Value& v) { c.local_dns_upstream = v.list; }},
        {"local.verify_dialback", Kind::Bool, "true", 0, 0, {}, R,
         "check each dialback key the local server presents on [[listen.local]] by asking it (a db:verify to "
         "local.verify_server) before taking stanzas for that domain; false trusts any process that can connect "
         "to [[listen.local]] to speak for general.hosts, and is warned about at start (ours)",
         [](Config& c, const Wild&, const Value& v) { c.local_verify_dialback = v.b; }},
        {"local.verify_server", Kind::HostPort, nullptr, 0, 0, {}, 0,
         "\"host:port\" of the local server's loopback s2s listener, where those keys are checked (unset: "
         "local.server; required in component mode while local.verify_dialback is true) (ours)",
         [](Config& c, const Wild&, const Value& v) { c.local_verify_server = v.s; }},
        {"local.max_verifications", Kind::Int, "100", 1, 100000, {}, R,
         "key checks with the local server under way at once (each is a loopback connection); past it a "
         "db:result on [[listen.local]] gets resource-constraint; one stream may have 8 (ours)",
         [](Config& c, const Wild&, const Value& v) { c.local_max_verifications = v.i; }},
        {"local.tls.mode", Kind::Enum, nullptr, 0, 0, kTlsModes, R,
         "TLS on the streams s2s-proxy opens to the local server (local.server, local.verify_server), for a local "
         "server on another host: tls: TLS from the first byte; starttls: STARTTLS when the server offers it (with "
         "verify_mode peer or selfsigned_peer a server that does not offer it fails the link, since a missing offer "
         "is what an attacker stripping it would show); starttls_required: STARTTLS, or the link fails. Unset: plain, as on loopback. Component mode takes only "
         "tls (XEP-0114 has no STARTTLS). A failed handshake or a certificate that does not check out counts as an "
         "unreachable server: stanzas wait (local.queue_timeout), then bounce. Streams opened after a reload take a new value (ours, in MongooseIM's tls layout)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls.mode = kTlsModes[v.choice]; }},
        {"local.tls.verify_mode", Kind::Enum, "\"peer\"", 0, 0, kVerifyModes, R,
         "how the local server's certificate is judged: peer: it must chain to local.tls.cacertfile and name "
         "local.tls.server_name, else the link is not used; selfsigned_peer: a self-signed one is accepted too, but "
         "it must still name local.tls.server_name; none: not checked (encryption without authentication, and "
         "starttls goes on in plain text when the server does not offer it)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls.verify_mode = static_cast<VerifyMode>(v.choice); }},
        {"local.tls.cacertfile", Kind::CertFile, nullptr, 0, 0, {}, R,
         "PEM CA certificates the local server's certificate must chain to (unset: the system store)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls.cacertfile = v.s; }},
        {"local.tls.certfile", Kind::CertFile, nullptr, 0, 0, {}, R,
         "PEM client certificate presented to the local server when it asks for one (unset: s2s.certfile, if set)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls.certfile = v.s; }},
        {"local.tls.keyfile", Kind::KeyFile, nullptr, 0, 0, {}, R,
         "PEM private key of local.tls.certfile (unset: inside certfile)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls.keyfile = v.s; }},
        {"local.tls.password", Kind::Secret, nullptr, 0, 0, {}, R,
         "password of an encrypted local.tls.keyfile (never printed)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls.password = v.s; }},
        {"local.tls.server_name", Kind::Domain, nullptr, 0, 0, {}, R,
         "name the local server's certificate must hold, also sent with SNI (unset: the host of local.server when "
         "it is a name, such as \"localhost\"; else the local domain the stream is for, and in component mode the "
         "first of general.hosts)",
         [](Config& c, const Wild&, const Value& v) { c.local_tls_server_name = v.s; }},

        // [antispam]
        {"antispam.spam_domains_file", Kind::Path, nullptr, 0, 0, {}, R,
         "file of domains that may not federate with us, one per line (# comments; 64 hex digits: the SHA-256 "
         "of a domain): a listed domain and its subdomains cannot authenticate, their stanzas are refused and "
         "nothing of ours reaches them (bounced with the reason). Read again on SIGHUP and when it changes; a "
         "file that does not parse keeps the previous list (ejabberd mod_antispam)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_spam_domains_file = v.s; }},
        {"antispam.spam_jids_file", Kind::Path, nullptr, 0, 0, {}, R,
         "file of bare JIDs (or their SHA-256) whose stanzas are refused with a stanza error, one per line, "
         "read like spam_domains_file (ejabberd mod_antispam)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_spam_jids_file = v.s; }},
        {"antispam.whitelist_domains_file", Kind::Path, nullptr, 0, 0, {}, R,
         "file of domains (and their subdomains) never blocked by spam_domains_file, read like it (ejabberd "
         "mod_antispam)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_whitelist_domains_file = v.s; }},
        {"antispam.domain_rate.rate", Kind::Int, nullptr, 1, kMaxRateLimit, {}, R,
         "stanzas per second each remote domain may send us, over all its streams (domain_rate = {rate = 50, "
         "burst = 200}); over it the domain's streams stop reading until it is back under (TCP slows the "
         "sender; nothing is dropped) (ours; unset: no limit)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_domain_rate.rate = v.i; }},
        {"antispam.domain_rate.burst", Kind::Int, nullptr, 1, kMaxRateLimit, {}, R,
         "stanzas a quiet remote domain may send at once before domain_rate.rate holds it (ours; unset: one "
         "second's worth)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_domain_rate.burst = v.i; }},
        {"antispam.subscription_rate.rate", Kind::Int, nullptr, 1, kMaxRateLimit, {}, R,
         "presence subscription requests (type='subscribe') per second each remote domain may send us "
         "(subscription_rate = {rate = 1, burst = 5}), slowed like domain_rate; a request from a JID our user "
         "sent 'subscribed' or 'subscribe' to (remembered 30 days) is not counted (ours; unset: no limit)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_subscription_rate.rate = v.i; }},
        {"antispam.subscription_rate.burst", Kind::Int, nullptr, 1, kMaxRateLimit, {}, R,
         "subscription requests a quiet remote domain may send at once (ours; unset: one second's worth)",
         [](Config& c, const Wild&, const Value& v) { c.antispam_subscription_rate.burst = v.i; }},

        // [admin]
        {"admin.enabled", Kind::Bool, "true", 0, 0, {}, 0, "serve the admin HTTP endpoint (/healthz, /readyz, /metrics) (ours)",
         [](Config& c, const Wild&, const Value& v) { c.admin_enabled = v.b; }},
        {"admin.listen", Kind::HostPort, "\"127.0.0.1:9269\"", 0, 0, {}, 0,
         "\"ip:port\" of the admin HTTP endpoint; keep it on loopback or a pod-internal address (ours)",
         [](Config& c, const Wild&, const Value& v) { c.admin_listen = v.s; }},

        // [shaper.NAME], [access], [acl]
        {"shaper.*.max_rate", Kind::Int, nullptr, 1, std::numeric_limits<int64_t>::max() / 2, {}, Required | R,
         "bytes per second",
         [](Config& c, const Wild& w, const Value& v) { c.shapers[w[0]].max_rate = v.i; }},
        {"access.*.*.acl", Kind::AclRef, nullptr, 0, 0, {}, Required | R, "acl this clause matches",
         [](Config& c, const Wild& w, const Value& v) {
             at(c.access[w[0]], std::stoul(w[1])).acl = v.s;
         }},
        {"access.*.*.value", Kind::String, nullptr, 0, 0, {}, Required | R,
         "what the rule returns on a match: \"allow\", \"deny\", or another value",
         [](Config& c, const Wild& w, const Value& v) {
             at(c.access[w[0]], std::stoul(w[1])).value = v.s;
         }},
        {"acl.*.*.match", Kind::Enum, nullptr, 0, 0, {"all", "none", "current_domain"}, R,
         "all, none, or current_domain (a domain in general.hosts)",
         [](Config& c, const Wild& w, const Value& v) {
             at(c.acl[w[0]], std::stoul(w[1])).match = Choices{"all", "none", "current_domain"}[v.choice];
         }},
        {"acl.*.*.server", Kind::Domain, nullptr, 0, 0, {}, R, "a remote server's domain",
         [](Config& c, const Wild& w, const Value& v) { at(c.acl[w[0]], std::stoul(w[1])).server = v.s; }},
    };
    for (auto& t : tls_specs()) {
        if (!(t.where & InOutgoing)) continue;
        auto apply = t.apply;
        Apply a = nullptr;
        if (apply) a = [apply](Config& c, const Wild&, const Value& v) { apply(c.outgoing.tls, v); };
        o.push_back({"s2s.outgoing.tls." + t.key, t.kind, t.def, 0, 0, t.choices, R, t.help, a});
    }
    add_listener_type(o, "s2s", "\"0.0.0.0\"", &Config::listen_s2s);
    add_listener_type(o, "local", "\"127.0.0.1\"", &Config::listen_local);
    return o;
}

}  // namespace

const std::vector<OptionSpec>& options() {
    static const std::vector<OptionSpec> table = build();
    return table;
}

const std::vector<Alias>& aliases() {
    static const std::vector<Alias> table = {
        {"s2s.address", "s2s.outgoing.address"},
        {"s2s.max_retry_delay", "s2s.outgoing.max_retry_delay"},
        {"s2s.dns.timeout", "s2s.outgoing.dns.timeout"},
        {"s2s.dns.retries", "s2s.outgoing.dns.retries"},
        {"s2s.dns.nameservers", "s2s.outgoing.dns.nameservers"},
    };
    return table;
}

const std::vector<EntrySpec>& entries() {
    static const std::vector<EntrySpec> table = {
        {"s2s.host_policy.*", EntryStyle::InlineArray},
        {"s2s.domain_certfile.*", EntryStyle::InlineArray},
        {"s2s.outgoing.address.*", EntryStyle::InlineArray},
        {"listen.s2s.*", EntryStyle::TableArray},
        {"listen.local.*", EntryStyle::TableArray},
        {"shaper.*", EntryStyle::NamedTable},
        {"access.*.*", EntryStyle::NamedInlineArray},
        {"acl.*.*", EntryStyle::NamedInlineArray},
    };
    return table;
}

std::vector<std::string_view> key_segments(std::string_view s) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i)
        if (i == s.size() || s[i] == '.') {
            out.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    return out;
}

bool key_matches(const std::string& pattern, const std::string& key, Wild* wild) {
    auto ps = key_segments(pattern), ks = key_segments(key);
    if (ps.size() != ks.size()) return false;
    Wild w;
    for (size_t i = 0; i < ps.size(); ++i) {
        if (ks[i].empty()) return false;
        if (ps[i] == "*")
            w.emplace_back(ks[i]);
        else if (ps[i] != ks[i])
            return false;
    }
    if (wild) *wild = std::move(w);
    return true;
}

const OptionSpec* find_option(const std::string& key, Wild* wild) {
    for (auto& o : options())
        if (key_matches(o.key, key, wild)) return &o;
    return nullptr;
}

}  // namespace s2s::config
