// The effective configuration of s2s-proxy, as typed structs.
//
// Loaded from TOML in MongooseIM's layout (both the 6.x `s2s` keys and the newer `s2s.outgoing.*`
// ones), with command-line overrides on top; see config_table.cpp for every option, its default,
// bounds and help, and config_load.cpp for how a file becomes a Config.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/net/net_address.h"

namespace s2s {

// A number that may also be "infinity" in the file (timeouts, sizes, counts).
struct Limit {
    int64_t value = 0;
    bool infinite = false;
    [[nodiscard]] bool allows(int64_t n) const { return infinite || n <= value; }
};

enum class Policy { Allow, Deny };
enum class VerifyMode { Peer, SelfsignedPeer, None };                    // tls.verify_mode
enum class LocalMode { S2S, Component };                                 // local.mode
// general.loglevel as MongooseIM spells it; main maps it onto the logger's levels.
enum class LogSetting { None, Emergency, Alert, Critical, Error, Warning, Notice, Info, Debug, All };
enum class LogFormatSetting { Text, Json };
enum class SniProtocol { Default, Https };

// TLS options shared by listeners (`listen.*.tls.*`) and outgoing links (`s2s.outgoing.tls.*`).
struct TlsOptions {
    // Some key of this subsection was given (file or command line): a subsection without a mode
    // means STARTTLS (tls_setup.h).
    bool present = false;
    std::string mode;                     // tls.mode as written ("tls", "starttls"...; what each means:
                                          // proxy/features/starttls.h); empty: unset, then "starttls" when
                                          // present, else from s2s.use_starttls
    VerifyMode verify_mode = VerifyMode::Peer;
    std::string certfile, keyfile, cacertfile, dhfile, ciphers, password;
    std::vector<std::string> versions;    // e.g. "tlsv1.2", "tlsv1.3"; empty: library default
    std::vector<std::string> crl_files;
    bool disconnect_on_failure = true;    // listeners only
    std::vector<std::string> protocol_options;
    bool sni_enabled = true;              // outgoing only: server_name_indication.*
    std::string sni_host;                 // empty: the remote domain
    SniProtocol sni_protocol = SniProtocol::Default;
};

// One `[[listen.s2s]]` or `[[listen.local]]` entry.
struct Listener {
    int port = 0;
    std::string ip_address;
    std::string access = "all";          // access rule name, or "all"
    std::string shaper = "none";         // shaper name, or "none"
    Limit max_connections{0, true};
    Limit state_timeout{5000, false};    // ms
    bool reuse_port = false;
    int backlog = 1024;
    Limit max_stanza_size{512 * 1024, false};  // bytes; "infinity": 16 MiB
    TlsOptions tls;
    // [[listen.s2s]] only:
    bool proxy_protocol = false;         // a PROXY header (v1 or v2) comes first from proxy_trusted
    NetworkList proxy_trusted;           // the load balancers' networks
    Limit max_connections_per_host{0, true};  // at once from one client address
    Limit max_connection_rate_per_host{20, false};  // new connections per second from one client address
    Limit max_tls_handshakes{256, false};     // TLS handshakes in progress at once
    Limit proxy_protocol_timeout{3000, false};  // ms for the PROXY header (or a direct peer's first bytes)
};

struct HostPolicy {
    std::string host;
    Policy policy = Policy::Allow;
};

// An `s2s.outgoing.address` entry: connect to this address instead of asking DNS.
struct AddressOverride {
    std::string host;
    std::string ip_address;
    std::optional<int> port;              // unset: s2s.outgoing.port
};

// An `s2s.domain_certfile` entry: the certificate (with its key) of one local domain, sent to
// peers that ask for that name with SNI and used as the client certificate for SASL EXTERNAL.
struct DomainCert {
    std::string domain;
    std::string certfile;
};

struct Shaper {
    int64_t max_rate = 0;                 // bytes per second
};

// One clause of an `[access]` rule: `{acl = "all", value = "allow"}`.
struct AccessClause {
    std::string acl;
    std::string value;                    // "allow", "deny", or a value the rule returns
};

// One pattern of an `[acl]` entry: `{match = "all"}` or `{server = "example.org"}`.
struct AclPattern {
    std::string match;                    // "all", "none" or "current_domain"; empty when server is set
    std::string server;
};

// The hard limit on one stanza: max_stanza_size = "infinity" means this many bytes, and no number
// above it is accepted, so that one peer cannot make the process buffer without bound.
constexpr int64_t kMaxStanzaSizeCap = 16 * 1024 * 1024;

// What the DNS client (udns) can take: its timeout and attempt ranges and its nameserver slots. The
// config table bounds s2s.outgoing.dns.* to these, so a config that checks clean also starts.
constexpr int64_t kDnsMaxTimeoutS = 300;
constexpr int64_t kDnsMaxRetries = 50;
constexpr size_t kDnsMaxNameservers = 6;

struct Outgoing {
    int port = 5269;
    std::vector<int> ip_versions{4, 6};
    Limit connection_timeout{10000, false};   // ms
    Limit max_stanza_size{512 * 1024, false};  // bytes; "infinity": 16 MiB
    std::string shaper = "none";
    Limit state_timeout{5000, false};         // ms
    Limit stream_timeout{600000, false};      // ms
    int64_t max_retry_delay = 300;            // s
    int64_t dns_timeout = 10;                 // s
    int dns_retries = 2;
    bool dane = false;                        // TLSA lookups through a validating resolver (RFC 7673)
    int64_t queue_max_stanzas = 1000;          // waiting per (local, remote) pair
    int64_t queue_max_bytes = 4 * 1024 * 1024;
    int64_t max_hosts_in_backoff = 10000;     // remote hosts remembered as failing; the oldest go first
    std::vector<std::string> dns_nameservers; // "ip" or "ip:port"; empty: the system's
    std::vector<AddressOverride> address;
    // Networks that addresses from DNS (and IP-literal domains) may not lead to; address
    // overrides are not checked against it. Empty here: the loader fills in the table's default.
    NetworkList denied_networks;
    TlsOptions tls;
};

struct Config {
    // [general]
    std::vector<std::string> hosts;
    LogSetting loglevel = LogSetting::Warning;
    LogFormatSetting log_format = LogFormatSetting::Text;
    int64_t shutdown_timeout = 10000;          // ms SIGTERM waits for queued stanzas to go out
    int64_t max_stanza_elements = 10000;       // elements in one stanza, on every stream
    Limit stanza_timeout{30000, false};        // ms from a stanza's first byte to its last
    Limit send_timeout{15000, false};          // ms our output may wait for the peer to take it
    Limit stanza_memory_budget{256LL * 1024 * 1024, false};  // bytes of all unfinished stanzas' trees

    // [s2s]
    Policy default_policy = Policy::Allow;
    std::vector<HostPolicy> host_policy;
    std::string use_starttls = "false";        // as written (modes: proxy/features/starttls.h)
    bool use_starttls_set = false;             // given in the file or on the command line
    std::string certfile;
    std::vector<DomainCert> domain_certs;      // s2s.domain_certfile
    std::string shared;                        // dialback secret: never logged
    std::string ciphers = "TLSv1.2:TLSv1.3";
    bool secure_auth = false;
    std::vector<std::string> secure_domains, insecure_domains;
    bool bidi = true;                          // XEP-0288 bidirectional streams
    bool stream_limits = true;                 // XEP-0478: advertise our limits on inbound streams
    int64_t max_domain_pairs = 256;            // (remote, local) pairs one inbound stream may authenticate
    int64_t max_verifications_per_stream = 8;  // dialback verifications under way for one inbound stream
    int64_t max_verifications_per_host = 32;   // ... for all streams from one client address
    int64_t max_verifications = 1024;          // ... in total
    Outgoing outgoing;

    // [[listen.s2s]], [[listen.local]]
    std::vector<Listener> listen_s2s, listen_local;

    // [local]
    std::string local_server;                  // "host:port"
    LocalMode local_mode = LocalMode::S2S;
    Limit local_queue_timeout{60000, false};   // ms
    int64_t local_remote_idle_timeout = 600000;  // ms a remote domain stays known on the local link unused
    std::string local_password;                // component secret: never logged
    std::string local_component_name;          // the component's domain (component mode)
    std::string local_dns_responder;           // "ip:port" on loopback; empty: no DNS responder
    std::vector<std::string> local_dns_upstream;  // "ip" or "ip:port": where it forwards; empty: no forwarding
    bool local_verify_dialback = true;         // check the local server's dialback keys with it
    std::string local_verify_server;           // "host:port" of its s2s port for that; empty: local.server
    int64_t local_max_verifications = 100;     // key checks under way at once
    // local.tls: the streams s2s-proxy opens to the local server (mode unset: plain, as before).
    TlsOptions local_tls;                      // mode, cacertfile, verify_mode, certfile, keyfile
    std::string local_tls_server_name;         // name checked in its certificate; empty: see local_tls.h

    // [antispam] (ejabberd mod_antispam's names): list files, read again on SIGHUP and on change
    std::string antispam_spam_domains_file;    // empty: none
    std::string antispam_spam_jids_file;
    std::string antispam_whitelist_domains_file;
    // [antispam] inbound rate limits per remote domain: per second, up to `burst` at once (0: the
    // rate's worth); rate 0: no limit. domain_rate counts every stanza, subscription_rate
    // presence type='subscribe' only.
    struct RateLimit {
        int64_t rate = 0;
        int64_t burst = 0;
    };
    RateLimit antispam_domain_rate, antispam_subscription_rate;

    // [admin]
    bool admin_enabled = true;
    std::string admin_listen = "127.0.0.1:9269";

    std::map<std::string, Shaper> shapers;
    std::map<std::string, std::vector<AccessClause>> access;
    std::map<std::string, std::vector<AclPattern>> acl;

    // Where the config came from and where each key given stands ("proxy.toml:14:
    // listen.s2s.0.tls.ciphers", "command line: --s2s.ciphers"), for messages about values that
    // are checked after loading, such as TLS contexts (config::locate). Filled by config::load.
    std::string source_name;
    std::map<std::string, std::string> key_origins;
};

}  // namespace s2s
