// The sd_notify protocol: datagrams received on a real unix socket (a path and an abstract name),
// what the server sends at start, around a reload and when it drains, and sending that never waits.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/config/config_load.h"
#include "proxy/app/server.h"
#include "proxy/app/service_notify.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/test_support.h"

using namespace s2s;
using s2s::test::TempDir;
using s2s::test::TestLoop;

namespace {

// A unix datagram socket bound to `name` (a path, or '@' and an abstract name), as a service
// manager holds it.
struct Manager {
    int fd = -1;
    explicit Manager(const std::string& name) {
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un addr{};
        socklen_t len = 0;
        std::string error;
        REQUIRE_MESSAGE(notify_socket_address(name, &addr, &len, &error), error);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    }
    ~Manager() { close(fd); }
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // The next datagram, or "" when none came within `ms`.
    std::string next(int ms = 2000) const {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, ms) != 1) return "";
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    }
};

int free_tcp_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

std::string abstract_name() { return "@s2s-proxy-test-notify-" + std::to_string(getpid()); }

}  // namespace

TEST_CASE("service_notify: nothing is sent without a socket name") {
    ServiceNotifier n;
    CHECK_FALSE(n.active());
    CHECK(n.send("READY=1"));
    n.ready("serving");  // no socket, no crash, no log
    setenv("NOTIFY_SOCKET", "", 1);
    CHECK_FALSE(ServiceNotifier::from_environment().active());
    unsetenv("NOTIFY_SOCKET");
    CHECK_FALSE(ServiceNotifier::from_environment().active());
}

TEST_CASE("service_notify: READY, RELOADING with MONOTONIC_USEC, STOPPING once, on a socket path") {
    TempDir dir;
    std::string path = dir.path() + "/notify";
    Manager m(path);
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
    ServiceNotifier n = ServiceNotifier::from_environment();
    unsetenv("NOTIFY_SOCKET");
    REQUIRE(n.active());
    n.ready("serving: 1 public and 1 local listener(s) bound");
    CHECK(m.next() == "READY=1\nSTATUS=serving: 1 public and 1 local listener(s) bound");

    uint64_t before = monotonic_usec();
    n.reloading("reloading\nthe config");  // a status is one line
    std::string got = m.next();
    uint64_t after = monotonic_usec();
    REQUIRE(got.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
    size_t at = got.find('=', 12) + 1;
    uint64_t usec = std::strtoull(got.c_str() + at, nullptr, 10);
    CHECK(usec >= before);
    CHECK(usec <= after);
    CHECK(got.substr(got.find('\n', at)) == "\nSTATUS=reloading the config");

    n.stopping("SIGTERM: draining");
    CHECK(m.next() == "STOPPING=1\nSTATUS=SIGTERM: draining");
    n.stopping("drained");
    CHECK(m.next() == "STATUS=drained");
    CHECK(m.next(50).empty());
}

TEST_CASE("service_notify: an abstract name ('@') reaches the abstract socket") {
    Manager m(abstract_name());
    ServiceNotifier n(abstract_name());
    std::string error;
    CHECK_MESSAGE(n.send("READY=1", &error), error);
    CHECK(m.next() == "READY=1");
    // A moved notifier keeps sending; the one moved from is inactive.
    ServiceNotifier moved = std::move(n);
    CHECK_FALSE(n.active());
    moved.ready("moved");
    CHECK(m.next() == "READY=1\nSTATUS=moved");
}

TEST_CASE("service_notify: names it cannot use, and a socket nobody listens on, are failures with a reason") {
    sockaddr_un addr{};
    socklen_t len = 0;
    std::string error;
    CHECK_FALSE(notify_socket_address("relative/notify", &addr, &len, &error));
    CHECK(error.find("neither an absolute path nor an abstract name") != std::string::npos);
    CHECK_FALSE(notify_socket_address("vsock:2:1234", &addr, &len, &error));
    CHECK_FALSE(notify_socket_address("/" + std::string(200, 'x'), &addr, &len, &error));
    CHECK(error.find("at most") != std::string::npos);

    TempDir dir;
    ServiceNotifier n(dir.path() + "/nobody");
    error.clear();
    CHECK_FALSE(n.send("READY=1", &error));
    CHECK(error.find("/nobody") != std::string::npos);
    s2s::test::LogCapture log;
    n.ready("one");
    n.ready("two");
    CHECK(log.count("service-notify") == 1);  // the first failure is logged, not every one
}

TEST_CASE("service_notify: a manager that does not read never makes a send wait") {
    TempDir dir;
    std::string path = dir.path() + "/full";
    Manager m(path);
    ServiceNotifier n(path);
    std::string message(2048, 'x'), error;
    int sent = 0;
    bool refused = false;
    for (int i = 0; i < 100000 && !refused; ++i) {
        if (n.send(message, &error)) ++sent;
        else refused = true;
    }
    CHECK(refused);
    CHECK(sent > 0);
    CHECK(error.find("not reading") != std::string::npos);
}

TEST_CASE("service_notify: the server says READY once bound, RELOADING then READY around a reload, STOPPING on drain") {
    const int s2s_port = free_tcp_port(), local_port = free_tcp_port();
    std::string policy = "allow";
    auto toml = [&] {
        return "[general]\nhosts = [\"c.test\"]\n[s2s]\ndefault_policy = \"" + policy +
               "\"\n[local]\nserver = \"127.0.0.1:15269\"\n[[listen.s2s]]\nport = " + std::to_string(s2s_port) +
               "\nip_address = \"127.0.0.1\"\n[[listen.local]]\nport = " + std::to_string(local_port) +
               "\n[admin]\nenabled = false\n";
    };
    auto loaded = config::load("test.toml", toml(), {});
    REQUIRE(loaded.ok());
    Manager m(abstract_name());
    TestLoop t;
    {
        Server server(t.loop(), loaded.config, loaded.settings, [&] { return config::load("test.toml", toml(), {}); });
        server.set_notifier(ServiceNotifier(abstract_name()));
        CHECK(m.next(50).empty());  // nothing before the listeners are bound
        std::string error;
        REQUIRE_MESSAGE(server.start(&error), error);
        CHECK(m.next() == "READY=1\nSTATUS=serving: 1 public and 1 local listener(s) bound");

        policy = "deny";
        CHECK(server.reload());
        std::string reloading = m.next();
        CHECK(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
        CHECK(m.next() == "READY=1\nSTATUS=reload applied: 1 change, 0 wait for a restart");

        policy = "sometimes";  // not a policy: refused, and the service is ready again on the old config
        CHECK_FALSE(server.reload());
        CHECK(m.next().rfind("RELOADING=1\n", 0) == 0);
        CHECK(m.next() == "READY=1\nSTATUS=reload refused: 1 error in the config; the running config stays");

        server.drain("SIGTERM");
        CHECK(m.next() == "STOPPING=1\nSTATUS=SIGTERM: draining, 0 stanza(s) queued");
        std::string last;
        CHECK(t.run_until([&] {
            if (last.empty()) last = m.next(0);
            return !last.empty();
        }));
        CHECK(last == "STATUS=drained: closing listeners and streams");  // STOPPING=1 said once
        CHECK_FALSE(server.reload());  // no reload while stopping: nothing said
        CHECK(m.next(50).empty());
        t.run_for(50);
    }
}
