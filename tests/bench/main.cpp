// s2s-bench: the load generator, sink and micro-benchmarks behind `make bench`
// (tests/bench/run.py drives it; tests/bench/README.md explains the method).
//
//   s2s-bench limit            --server-cert= --server-key= --client-cert= --client-key= --ca=
//   s2s-bench handshake-limit  (same certificates) [--seconds=3 --resume]
//   s2s-bench throughput       --target=IP:PORT --pid=PID [--links=1 --seconds=5 --markers=0 --batch=192]
//   s2s-bench latency-sink     --sink=IP:PORT [--warmup=1 --seconds=15 --samples-out=FILE]
//   s2s-bench pace             --target=IP:PORT [--rate=1000 --seconds=17]
//   s2s-bench idle             --target=IP:PORT --pid=PID [--counts=1000,10000 --settle=16]
//   s2s-bench handshakes       --target=IP:PORT --pid=PID [--concurrency=16 --seconds=6 --resume]
//   s2s-bench waves            --target=IP:PORT --sink=IP:PORT [--links=2000 --concurrency=64
//                              --stanzas=5 --pool=0]: prints {"ready": 1}, then runs one wave per
//                              line read on stdin and prints its result; ends at end of input
//
// Link options: --to=local.test --from=l%.gen.test ('%': the link's number) --tls=starttls|direct
// --auth=external|dialback --sources=N (spread links over 127.0.2.1..N). Sink: --sink=IP:PORT
// --sink-domain=local.test --sink-tls (offer STARTTLS with --server-cert). Each command prints one
// JSON object; exit status 1 if it has an "error".
#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/tls/tls_context.h"
#include "tests/bench/driver.h"
#include "tests/bench/json_out.h"
#include "tests/bench/limit.h"
#include "tests/bench/proc_stats.h"
#include "tests/bench/scenarios.h"
#include "tests/bench/waves.h"

using namespace s2s;
using namespace s2s::bench;

namespace {

struct Args {
    std::string command;
    std::map<std::string, std::string> kv;

    [[nodiscard]] std::string get(const std::string& k, const std::string& def = "") const {
        auto it = kv.find(k);
        return it == kv.end() ? def : it->second;
    }
    [[nodiscard]] bool has(const std::string& k) const { return kv.count(k) > 0; }
    [[nodiscard]] double num(const std::string& k, double def) const {
        auto it = kv.find(k);
        return it == kv.end() ? def : std::strtod(it->second.c_str(), nullptr);
    }
};

[[noreturn]] void die(const std::string& why) {
    std::printf("%s\n", JsonOut().str("error", why).text().c_str());
    std::exit(1);
}

bool parse_addr(const std::string& s, sockaddr_storage* out, std::string* ip, int* port) {
    std::size_t colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    *ip = s.substr(0, colon);
    *port = std::atoi(s.c_str() + colon + 1);
    std::memset(out, 0, sizeof *out);
    return uv_ip4_addr(ip->c_str(), *port, reinterpret_cast<sockaddr_in*>(out)) == 0;
}

std::shared_ptr<const tls::Context> server_context(const Args& a) {
    tls::ContextOptions o;
    o.role = tls::Role::Server;
    o.certificate = {a.get("server-cert"), a.get("server-key"), "", {}};
    o.cacertfile = a.get("ca");
    auto made = tls::Context::create(o);
    if (!made) die("server TLS context: " + made.error);
    return made.context;
}

// The generator's side: presents its certificate (SASL EXTERNAL) and, like any load generator,
// does not judge the server's.
std::shared_ptr<const tls::Context> client_context(const Args& a, bool with_certificate) {
    tls::ContextOptions o;
    o.role = tls::Role::Client;
    if (with_certificate && a.has("client-cert")) o.certificate = {a.get("client-cert"), a.get("client-key"), "", {}};
    o.cacertfile = a.get("ca");
    o.verify_mode = tls::VerifyMode::None;
    if (a.get("tls") == "direct") o.alpn = {tls::kAlpnXmppServer};
    auto made = tls::Context::create(o);
    if (!made) die("client TLS context: " + made.error);
    return made.context;
}

void print(const JsonOut& j) {
    std::string t = j.text();
    std::printf("%s\n", t.c_str());
    std::fflush(stdout);
    std::exit(t.find("\"error\"") == std::string::npos ? 0 : 1);
}

void cmd_limit(const Args& a) {
    auto server = server_context(a);
    auto client = client_context(a, true);
    const auto stanzas = static_cast<std::size_t>(a.num("stanzas", 300000));
    const int rounds = static_cast<int>(a.num("rounds", 3));
    std::vector<double> rates;
    std::vector<StanzaLimit> all;
    for (int i = 0; i < rounds; ++i) {
        StanzaLimit r = stanza_limit(server, client, stanzas, kPumpBatch);
        if (!r.error.empty()) die("limit: " + r.error);
        rates.push_back(r.stanzas_per_s);
        all.push_back(r);
    }
    // The median round (the machine is shared: one slow round should not decide).
    std::vector<std::size_t> order(all.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return rates[x] < rates[y]; });
    const StanzaLimit& m = all[order[order.size() / 2]];
    JsonOut j;
    j.num("limit_stanzas_per_s", m.stanzas_per_s)
        .num("decrypt_us", m.decrypt_us)
        .num("xml_us", m.xml_us)
        .num("write_us", m.write_us)
        .num("stanzas", static_cast<double>(stanzas))
        .nums("rounds", rates);
    print(j);
}

void cmd_handshake_limit(const Args& a) {
    HandshakeLimit r = handshake_limit(server_context(a), client_context(a, true), a.num("seconds", 3), a.has("resume"));
    if (!r.error.empty()) die("handshake-limit: " + r.error);
    JsonOut j;
    j.num("limit_handshakes_per_s", r.handshakes_per_s)
        .num("server_ms", r.server_ms)
        .num("client_ms", r.client_ms)
        .num("handshakes", static_cast<double>(r.handshakes))
        .str("suite", r.suite);
    print(j);
}

// Sets up the driver from the link and sink options.
void configure(Driver& d, const Args& a, bool need_target) {
    std::string ip;
    int port = 0;
    if (a.has("sink")) {
        if (!parse_addr(a.get("sink"), &d.link_template.target, &ip, &port)) die("bad --sink " + a.get("sink"));
        SinkOptions so;
        so.domain = a.get("sink-domain", "local.test");
        if (a.has("sink-tls")) so.tls = server_context(a);
        std::string error;
        if (!d.start_sink(so, ip, port, &error)) die("sink: " + error);
    }
    if (need_target && !parse_addr(a.get("target"), &d.link_template.target, &ip, &port))
        die("bad or missing --target " + a.get("target"));
    const std::string tls_mode = a.get("tls", "starttls");
    d.link_template.tls = tls_mode == "direct" ? LinkTls::Direct : tls_mode == "none" ? LinkTls::None : LinkTls::StartTls;
    d.link_template.auth = a.get("auth", "external") == "dialback" ? LinkAuth::Dialback : LinkAuth::External;
    d.link_template.to_domain = a.get("to", "local.test");
    d.link_template.tls_context = client_context(a, d.link_template.auth == LinkAuth::External);
    d.from_pattern = a.get("from", "l%.gen.test");
    for (int i = 1; i <= static_cast<int>(a.num("sources", 0)); ++i) {
        sockaddr_storage s{};
        std::string src = "127.0.2." + std::to_string(i);
        uv_ip4_addr(src.c_str(), 0, reinterpret_cast<sockaddr_in*>(&s));
        d.sources.push_back(s);
    }
}

int pid_arg(const Args& a) {
    int pid = static_cast<int>(a.num("pid", 0));
    if (pid <= 0) die("--pid of the server under test is required");
    return pid;
}

std::vector<std::size_t> counts_arg(const std::string& s) {
    std::vector<std::size_t> out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        out.push_back(static_cast<std::size_t>(std::strtoull(s.substr(i, j - i).c_str(), nullptr, 10)));
        i = j + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            std::size_t eq = s.find('=');
            if (eq == std::string::npos) a.kv[s.substr(2)] = "1";
            else a.kv[s.substr(2, eq - 2)] = s.substr(eq + 1);
        } else if (a.command.empty()) {
            a.command = s;
        } else {
            die("unexpected argument " + s);
        }
    }
    raise_fd_limit();
    if (a.command == "limit") cmd_limit(a);
    if (a.command == "handshake-limit") cmd_handshake_limit(a);

    Driver d;
    if (a.command == "throughput") {
        configure(d, a, true);
        ThroughputParams p;
        p.links = static_cast<std::size_t>(a.num("links", 1));
        p.warmup_s = a.num("warmup", 1);
        p.seconds = a.num("seconds", 5);
        p.marker_every = static_cast<uint64_t>(a.num("markers", 0));
        p.marker_to = a.get("to", "local.test");
        d.pump_batch = static_cast<std::size_t>(a.num("batch", static_cast<double>(kPumpBatch)));
        JsonOut j = run_throughput(d, pid_arg(a), p);
        d.shutdown();
        print(j);
    }
    if (a.command == "pace") {
        configure(d, a, true);
        PacedParams p;
        p.rate = a.num("rate", 1000);
        p.seconds = a.num("seconds", 17);
        JsonOut j = run_paced(d, p);
        d.shutdown();
        print(j);
    }
    if (a.command == "latency-sink") {
        if (!a.has("sink")) die("latency-sink needs --sink=IP:PORT");
        configure(d, a, false);
        LatencySinkParams p;
        p.warmup_s = a.num("warmup", 1);
        p.seconds = a.num("seconds", 15);
        p.timeout_s = a.num("timeout", 60);
        p.samples_out = a.get("samples-out");
        p.raw_out = a.get("raw-out");
        JsonOut j = run_latency_sink(d, p);
        d.shutdown();
        print(j);
    }
    if (a.command == "idle") {
        configure(d, a, true);
        IdleParams p;
        p.counts = counts_arg(a.get("counts", "1000"));
        p.settle_s = a.num("settle", 16);
        p.concurrency = static_cast<std::size_t>(a.num("concurrency", 64));
        p.open_timeout_s = a.num("open-timeout", 240);
        JsonOut j = run_idle(d, pid_arg(a), p);
        d.shutdown();
        print(j);
    }
    if (a.command == "handshakes") {
        configure(d, a, true);
        HandshakeParams p;
        p.concurrency = static_cast<std::size_t>(a.num("concurrency", 16));
        p.warmup_s = a.num("warmup", 1);
        p.seconds = a.num("seconds", 6);
        d.resume_sessions = a.has("resume");
        JsonOut j = run_handshakes(d, pid_arg(a), p);
        d.shutdown();
        print(j);
    }
    if (a.command == "waves") {
        if (!a.has("sink")) die("waves needs --sink=IP:PORT");
        configure(d, a, true);
        d.domain_pool = static_cast<uint64_t>(a.num("pool", 0));
        WaveParams p;
        p.links = static_cast<std::size_t>(a.num("links", 2000));
        p.concurrency = static_cast<std::size_t>(a.num("concurrency", 64));
        p.stanzas = static_cast<std::size_t>(a.num("stanzas", 5));
        std::printf("%s\n", JsonOut().num("ready", 1).text().c_str());
        std::fflush(stdout);
        std::string line;
        while (std::getline(std::cin, line)) {
            std::printf("%s\n", run_wave(d, p).text().c_str());
            std::fflush(stdout);
        }
        d.shutdown();
        std::exit(0);
    }
    die("usage: s2s-bench limit|handshake-limit|throughput|latency-sink|pace|idle|handshakes|waves --key=value... "
        "(see tests/bench/main.cpp)");
}
