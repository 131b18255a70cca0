#include "tests/unit/support/loop_harness.h"

#include <doctest/doctest.h>

namespace s2s::test {

void Peer::on_connected(int status) {
    connect_status = status;
    events.push_back("connected " + std::to_string(status));
    if (on_connect_hook) on_connect_hook(*this);
}

void Peer::on_stream_open(const xml::StreamHeader& h) {
    events.push_back("open from=" + std::string(h.attr("from").value_or("")));
    if (on_open_hook) on_open_hook(*this);
}

void Peer::on_stanza(xml::Document& d) {
    xml::Element root = d.root();
    std::string what = "stanza " + std::string(root.name());
    if (root.name() == "error" && root.ns() == xml::ns::streams) {
        xml::Element cond = root.first_element();
        what = "stream-error " + std::string(cond ? cond.name() : "?");
    }
    events.push_back(what);
    stanzas.push_back(xml::to_string(root, stream ? stream->scope() : xml::NamespaceScope::server_stream()));
    if (on_stanza_hook) on_stanza_hook(*this);
}

void Peer::on_stream_close() { events.push_back("close"); }

void Peer::on_stream_error(StreamError e, std::string_view) { events.push_back("parse-error " + std::string(name(e))); }

void Peer::on_tls_established() {
    events.push_back("tls");
    if (on_tls_hook) on_tls_hook(*this);
}

void Peer::on_timeout() { events.push_back("timeout"); }

void Peer::on_send_timeout(const std::string& why) {
    events.push_back("send-timeout");
    send_timeout_why = why;
    if (on_send_timeout_hook) on_send_timeout_hook(*this);
}

void Peer::on_closed(const std::string& reason) {
    closed = true;
    closed_reason = reason;
    stream = nullptr;
}

bool Peer::saw(const std::string& text) const {
    for (auto& s : stanzas)
        if (s.find(text) != std::string::npos) return true;
    return false;
}

TestLoop::TestLoop() {
    uv_loop_init(&uv_);
    loop_ = new EventLoop(&uv_);
}

Peer& TestLoop::new_peer() {
    peers_.push_back(std::make_unique<Peer>());
    return *peers_.back();
}

void TestLoop::shutdown(const std::function<bool()>& all_closed) {
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& p : peers_)
        if (p->stream) p->stream->abort("test over");
    if (listening_) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    for (auto& l : more_) uv_close(reinterpret_cast<uv_handle_t*>(&l.tcp), nullptr);
    if (all_closed) CHECK(run_until(all_closed));
    else run_for(20);
}

TestLoop::~TestLoop() {
    shutdown();
    loop_->close();
    uv_run(&uv_, UV_RUN_DEFAULT);
    delete loop_;
    CHECK(uv_loop_close(&uv_) == 0);  // every handle closed: nothing leaked
}

void TestLoop::listen(std::function<void(uv_stream_t*)> on_accept) {
    on_accept_ = std::move(on_accept);
    uv_tcp_init(&uv_, &listener_);
    listener_.data = this;
    listening_ = true;
    uv_ip4_addr("127.0.0.1", 0, &addr_);
    REQUIRE(uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr_), 0) == 0);
    int len = sizeof addr_;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&addr_), &len);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 64, [](uv_stream_t* l, int status) {
                if (status == 0) static_cast<TestLoop*>(l->data)->on_accept_(l);
            }) == 0);
}

const sockaddr* TestLoop::listen_more(const char* ip, std::function<void(uv_stream_t*)> on_accept) {
    Listener& l = more_.emplace_back();
    l.on_accept = std::move(on_accept);
    uv_tcp_init(&uv_, &l.tcp);
    l.tcp.data = &l;
    uv_ip4_addr(ip, 0, &l.addr);
    REQUIRE(uv_tcp_bind(&l.tcp, reinterpret_cast<sockaddr*>(&l.addr), 0) == 0);
    int len = sizeof l.addr;
    uv_tcp_getsockname(&l.tcp, reinterpret_cast<sockaddr*>(&l.addr), &len);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&l.tcp), 64, [](uv_stream_t* s, int status) {
                if (status == 0) static_cast<Listener*>(s->data)->on_accept(s);
            }) == 0);
    return reinterpret_cast<const sockaddr*>(&l.addr);
}

void TestLoop::connect(Peer& p, uint64_t id) {
    p.stream = Stream::create(*loop_, p, {}, id);
    p.stream->connect(address(), 2000);
}

bool TestLoop::run_until(const std::function<bool()>& pred, uint64_t max_ms) {
    uv_timer_t tick;  // wakes the loop so the deadline is checked even when nothing happens
    uv_timer_init(&uv_, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
    uint64_t until = uv_now(&uv_) + max_ms;
    while (!pred() && uv_now(&uv_) < until) uv_run(&uv_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&uv_, UV_RUN_NOWAIT);
    return pred();
}

void TestLoop::run_for(uint64_t ms) {
    uint64_t until = uv_now(&uv_) + ms;
    run_until([&] { return uv_now(&uv_) >= until; }, ms + 100);
}

}  // namespace s2s::test
