#include "tests/bench/limit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <cstring>
#include <thread>
#include <vector>

#include "common/tls/tls.h"
#include "common/xml/xml.h"
#include "common/xmpp/xml_stream.h"
#include "tests/bench/traffic.h"

namespace s2s::bench {

namespace {

double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs a handshake between two fresh sessions, moving each side's output to the other, and adds
// each side's CPU time. False (and `error`) if it fails or does not finish.
bool handshake(tls::Session& client, tls::Session& server, double* client_cpu, double* server_cpu,
               std::string* error) {
    double t = thread_cpu_s();
    (void)client.handshake();
    *client_cpu += thread_cpu_s() - t;
    for (int round = 0; round < 50; ++round) {
        bool moved = false;
        if (client.has_output()) {
            Buffer b = client.take_ciphertext();
            t = thread_cpu_s();
            if (server.feed_ciphertext(b.view()) && server.state() == tls::State::Handshaking) (void)server.handshake();
            *server_cpu += thread_cpu_s() - t;
            moved = true;
        }
        if (server.has_output()) {
            Buffer b = server.take_ciphertext();
            t = thread_cpu_s();
            if (client.feed_ciphertext(b.view()) && client.state() == tls::State::Handshaking) (void)client.handshake();
            *client_cpu += thread_cpu_s() - t;
            moved = true;
        }
        if (client.state() == tls::State::Failed || server.state() == tls::State::Failed) {
            *error = "handshake failed: client: " + client.failure_reason() + "; server: " + server.failure_reason();
            return false;
        }
        if (!moved) {
            if (client.state() == tls::State::Open && server.state() == tls::State::Open) return true;
            break;
        }
    }
    *error = "handshake did not finish";
    return false;
}

// Serializes every stanza it is handed, as a proxy forwarding it would.
class Reserializer final : public xml::XmlStream::Handler {
public:
    std::string out;
    std::size_t stanzas = 0;
    std::string error;
    void on_stream_open(const xml::StreamHeader&) override {}
    void on_stanza(xml::Document& doc) override {
        xml::serialize(doc.root(), scope_, out);
        ++stanzas;
    }
    void on_stream_close() override {}
    void on_stream_error(StreamError, std::string_view text) override { error = std::string(text); }

private:
    xml::NamespaceScope scope_ = xml::NamespaceScope::server_stream();
};

// A connected loopback TCP pair: the writer's fd, and a thread reading the other end to EOF.
struct LoopbackSink {
    int writer = -1;
    std::thread drain;
    std::string error;

    bool open() {
        int lst = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (lst < 0 || ::bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lst, 1) != 0 ||
            ::getsockname(lst, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            error = std::string("loopback listener: ") + std::strerror(errno);
            if (lst >= 0) ::close(lst);
            return false;
        }
        writer = ::socket(AF_INET, SOCK_STREAM, 0);
        if (writer < 0 || ::connect(writer, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            error = std::string("loopback connect: ") + std::strerror(errno);
            ::close(lst);
            return false;
        }
        int reader = ::accept(lst, nullptr, nullptr);
        ::close(lst);
        if (reader < 0) {
            error = std::string("loopback accept: ") + std::strerror(errno);
            return false;
        }
        drain = std::thread([reader] {
            std::vector<char> buf(256 * 1024);
            while (::read(reader, buf.data(), buf.size()) > 0) {
            }
            ::close(reader);
        });
        return true;
    }

    bool write_all(const std::string& bytes) {
        std::size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::write(writer, bytes.data() + off, bytes.size() - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                error = std::string("loopback write: ") + std::strerror(errno);
                return false;
            }
            off += static_cast<std::size_t>(n);
        }
        return true;
    }

    ~LoopbackSink() {
        if (writer >= 0) ::close(writer);
        if (drain.joinable()) drain.join();
    }
};

}  // namespace

StanzaLimit stanza_limit(std::shared_ptr<const tls::Context> server_ctx, std::shared_ptr<const tls::Context> client_ctx,
                         std::size_t stanzas, std::size_t batch) {
    StanzaLimit r;
    tls::SessionOptions so;
    so.server_name = "local.test";
    tls::Session client(client_ctx, so), server(server_ctx);
    double ccpu = 0, scpu = 0;
    if (!handshake(client, server, &ccpu, &scpu, &r.error)) return r;

    // The ciphertext a remote server would send: the stream header, then records of `batch`
    // stanzas each.
    std::string cipher;
    cipher.reserve(stanzas * (kStanzaSize + 8) + 4096);
    (void)client.write_plaintext(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
        "xmlns:db='jabber:server:dialback' from='gen.test' to='local.test' version='1.0'>");
    cipher.append(client.take_ciphertext().view());
    StanzaTemplate tmpl("bench@gen.test/load", "sink@local.test");
    std::string text;
    for (std::size_t i = 0; i < stanzas; i += batch) {
        text.clear();
        for (std::size_t j = i; j < i + batch && j < stanzas; ++j) tmpl.append(text, j);
        if (client.write_plaintext(text) != tls::IoResult::Ok) {
            r.error = "encrypt: " + client.failure_reason();
            return r;
        }
        cipher.append(client.take_ciphertext().view());
    }

    LoopbackSink out;
    if (!out.open()) {
        r.error = out.error;
        return r;
    }
    Reserializer handler;
    xml::XmlStream parser(handler);
    std::string plain;
    double decrypt = 0, xml_time = 0, write = 0;
    constexpr std::size_t kRead = 64 * 1024;  // what one read callback gets at most
    for (std::size_t off = 0; off < cipher.size(); off += kRead) {
        std::size_t n = std::min(kRead, cipher.size() - off);
        double t0 = thread_cpu_s();
        plain.clear();
        if (!server.feed_ciphertext(cipher.data() + off, n) || server.read_plaintext(plain) != tls::IoResult::Ok) {
            r.error = "decrypt: " + server.failure_reason();
            return r;
        }
        double t1 = thread_cpu_s();
        (void)parser.feed(plain);
        double t2 = thread_cpu_s();
        if (!out.write_all(handler.out)) {
            r.error = out.error;
            return r;
        }
        handler.out.clear();
        double t3 = thread_cpu_s();
        decrypt += t1 - t0;
        xml_time += t2 - t1;
        write += t3 - t2;
    }
    if (!handler.error.empty()) {
        r.error = "parse: " + handler.error;
        return r;
    }
    if (handler.stanzas != stanzas) {
        r.error = "parsed " + std::to_string(handler.stanzas) + " stanzas of " + std::to_string(stanzas);
        return r;
    }
    const double total = decrypt + xml_time + write;
    const double n = static_cast<double>(stanzas);
    r.stanzas = stanzas;
    r.stanzas_per_s = n / total;
    r.decrypt_us = decrypt / n * 1e6;
    r.xml_us = xml_time / n * 1e6;
    r.write_us = write / n * 1e6;
    return r;
}

namespace {

// One direction of an in-memory connection between two threads.
class Channel {
public:
    void put(std::string bytes) {
        std::lock_guard<std::mutex> lock(mu_);
        q_.push_back(std::move(bytes));
        cv_.notify_one();
    }
    // Waits for the next flight; false when closed.
    bool take(std::string* out) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !q_.empty() || closed_; });
        if (q_.empty()) return false;
        *out = std::move(q_.front());
        q_.pop_front();
        return true;
    }
    void close() {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> q_;
    bool closed_ = false;
};

// Feeds one flight to `s` and runs its handshake; what it answers goes to `out`. False on failure.
bool step(tls::Session& s, const std::string& in, Channel& out, std::string* error) {
    if (!s.feed_ciphertext(in)) {
        *error = s.failure_reason();
        return false;
    }
    if (s.state() == tls::State::Handshaking && s.handshake() == tls::Progress::Failed) {
        *error = s.failure_reason();
        return false;
    }
    if (s.has_output()) out.put(std::string(s.take_ciphertext().view()));
    return true;
}

}  // namespace

// The server on this thread, the client on another (another core, as the remote server is): only
// the server's CPU time is counted, and the client's work does not share its caches.
HandshakeLimit handshake_limit(std::shared_ptr<const tls::Context> server_ctx,
                               std::shared_ptr<const tls::Context> client_ctx, double seconds, bool resume) {
    HandshakeLimit r;
    Channel to_server, to_client;
    std::atomic<bool> stop{false};
    std::string client_error;
    double client_cpu = 0;
    std::thread client_thread([&] {
        tls::SessionOptions so;
        so.server_name = "local.test";
        while (!stop.load()) {
            double t = thread_cpu_s();
            tls::Session c(client_ctx, so);
            bool first = so.resume == nullptr;
            (void)c.handshake();
            to_server.put(std::string(c.take_ciphertext().view()));
            std::string in;
            while (c.state() == tls::State::Handshaking) {
                client_cpu += thread_cpu_s() - t;
                if (!to_client.take(&in)) return;
                t = thread_cpu_s();
                if (!step(c, in, to_server, &client_error)) {
                    to_server.close();
                    return;
                }
            }
            if (resume && first) so.resume = c.save_session();
            client_cpu += thread_cpu_s() - t;
        }
        to_server.close();
    });
    double server_cpu = 0;
    std::size_t done = 0;
    const double end = wall_s() + seconds;
    std::string in;
    for (;;) {
        if (!to_server.take(&in)) {
            r.error = "client: " + client_error;
            break;
        }
        double t = thread_cpu_s();
        auto s = std::make_unique<tls::Session>(server_ctx);
        bool ok = step(*s, in, to_client, &r.error);
        while (ok && s->state() == tls::State::Handshaking) {
            server_cpu += thread_cpu_s() - t;
            if (!to_server.take(&in)) {
                r.error = "client: " + client_error;
                ok = false;
                break;
            }
            t = thread_cpu_s();
            ok = step(*s, in, to_client, &r.error);
        }
        if (!ok) break;
        if (s->authenticate_peer("gen.test") != tls::PeerAuth::Authenticated) {
            r.error = "the server did not authenticate the client certificate: " + s->peer_verification().reason;
            break;
        }
        if (r.suite.empty()) r.suite = std::string(s->ciphersuite());
        s.reset();
        server_cpu += thread_cpu_s() - t;
        if (++done >= 20 && wall_s() >= end) break;
    }
    stop.store(true);
    to_client.close();
    to_server.close();
    client_thread.join();
    if (!r.error.empty()) return r;
    r.handshakes = done;
    r.server_ms = server_cpu / static_cast<double>(done) * 1e3;
    r.client_ms = client_cpu / static_cast<double>(done) * 1e3;
    r.handshakes_per_s = static_cast<double>(done) / server_cpu;
    return r;
}

}  // namespace s2s::bench
