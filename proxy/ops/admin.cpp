#include "proxy/ops/admin.h"

#include <http_parser.h>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "proxy/ops/metrics.h"

namespace s2s {

namespace {

const char* reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

}  // namespace

// One HTTP connection: read one request, answer it, close.
struct AdminServer::Conn {
    AdminServer* server = nullptr;
    uint64_t id = 0;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_write_t write_req{};
    http_parser parser{};
    std::string url;
    std::string source;     // the client's address, counted in per_source_
    std::string response;   // kept alive until the write completes
    size_t request_bytes = 0;
    bool complete = false;  // the request was read; no more parsing
    bool head = false;
    bool answered = false;
    bool closing = false;
    bool counted = false;   // in per_source_
    int open_handles = 2;
};

namespace {

int on_url(http_parser* p, const char* at, size_t len) {
    auto* url = static_cast<std::string*>(p->data);
    if (url->size() + len > AdminServer::kMaxRequestBytes) return 1;
    url->append(at, len);
    return 0;
}

int on_message_complete(http_parser* p) {
    http_parser_pause(p, 1);  // one request per connection: stop here
    return 0;
}

const http_parser_settings kSettings = [] {
    http_parser_settings s{};
    s.on_url = on_url;
    s.on_message_complete = on_message_complete;
    return s;
}();

}  // namespace

AdminServer::AdminServer(EventLoop& loop, std::string address, std::unordered_map<std::string, Route> routes)
    : loop_(loop), address_(std::move(address)), routes_(std::move(routes)), self_(std::make_shared<AdminServer*>(this)) {}

std::unique_ptr<AdminServer> AdminServer::start(EventLoop& loop, const std::string& address,
                                                std::unordered_map<std::string, Route> routes, std::string* error,
                                                uint64_t request_deadline_ms, uint64_t answer_deadline_ms) {
    sockaddr_storage addr{};
    if (!parse_socket_address(address, &addr)) {
        *error = "admin.listen: \"" + address + "\" is not an \"ip:port\" address";
        return nullptr;
    }
    std::unique_ptr<AdminServer> self(new AdminServer(loop, address, std::move(routes)));
    self->request_deadline_ms_ = request_deadline_ms;
    self->answer_deadline_ms_ = answer_deadline_ms;
    self->listener_ = new uv_tcp_t;
    uv_tcp_init(loop.uv(), self->listener_);
    self->listener_->data = self.get();
    int rc = uv_tcp_bind(self->listener_, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(self->listener_), 64, on_connection);
    if (rc != 0) {
        *error = "cannot listen on " + address + " (admin.listen): " + uv_strerror(rc);
        return nullptr;  // the destructor closes the handle
    }
    S2S_LOG_NOTICE(LogContext{}, "listening", "admin endpoint on %s (/healthz, /readyz, /metrics)", address.c_str());
    return self;
}

AdminServer::~AdminServer() {
    *self_ = nullptr;
    if (listener_) {
        listener_->data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
    std::vector<Conn*> conns;
    for (auto& [id, c] : open_) conns.push_back(c);
    for (Conn* c : conns) close(*c);
}

void AdminServer::on_connection(uv_stream_t* listener, int status) noexcept {
    auto* self = static_cast<AdminServer*>(listener->data);
    if (!self || status < 0) return;
    auto* c = new Conn;
    c->server = self;
    c->id = ++self->next_id_;
    uv_tcp_init(self->loop_.uv(), &c->tcp);
    uv_timer_init(self->loop_.uv(), &c->timer);
    c->tcp.data = c->timer.data = c;
    self->open_[c->id] = c;
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        self->close(*c);
        return;
    }
    sockaddr_storage peer{};
    int len = sizeof peer;
    if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
        c->source = format_ip(reinterpret_cast<sockaddr*>(&peer));
    if (!self->make_room(c->source)) {
        metrics().admin_dropped.add("refused");
        S2S_LOG_WARNING(LogContext{}, "admin-refused", "connection from %s: every admin connection is being answered",
                        c->source.c_str());
        self->close(*c);
        return;
    }
    ++self->per_source_[c->source];
    c->counted = true;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = &c->url;
    uv_timer_start(&c->timer, on_deadline, self->request_deadline_ms_, 0);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), EventLoop::alloc_read_buffer,
                  [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
                      auto* conn = static_cast<Conn*>(s->data);
                      AdminServer* server = conn->server;
                      if (nread == 0 || conn->complete) return;
                      if (nread < 0) {
                          server->close(*conn);
                          return;
                      }
                      conn->request_bytes += static_cast<size_t>(nread);
                      size_t used = http_parser_execute(&conn->parser, &kSettings, buf->base, static_cast<size_t>(nread));
                      enum http_errno err = HTTP_PARSER_ERRNO(&conn->parser);
                      if (err == HPE_PAUSED) {
                          conn->complete = true;
                          uv_read_stop(s);
                          server->dispatch(*conn);
                      } else if (err != HPE_OK || used != static_cast<size_t>(nread)) {
                          conn->complete = true;
                          uv_read_stop(s);
                          server->respond(conn->id, {400, std::string("bad request: ") + http_errno_description(err) + "\n"});
                      } else if (conn->request_bytes > kMaxRequestBytes) {
                          conn->complete = true;
                          uv_read_stop(s);
                          server->respond(conn->id, {431, "request too large\n"});
                      }
                  });
}

// The request deadline (408), or the answer deadline (503), or the client did not take the answer.
void AdminServer::on_deadline(uv_timer_t* t) noexcept {
    auto* conn = static_cast<Conn*>(t->data);
    AdminServer* server = conn->server;
    if (conn->answered) {
        server->close(*conn);
    } else if (!conn->complete) {
        metrics().admin_dropped.add("request_timeout");
        conn->complete = true;
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&conn->tcp));
        server->respond(conn->id, {408, "request timed out\n"});
    } else {
        server->respond(conn->id, {503, "no answer in time\n"});
    }
}

// The oldest connection that has not sent its whole request, from `source` when that address is
// at its cap, from anyone when the endpoint is; at most kMaxConnections are looked at.
bool AdminServer::make_room(const std::string& source) {
    auto held = per_source_.find(source);
    bool source_full = held != per_source_.end() && held->second >= kMaxPerSource;
    // open_ already holds the new connection, which is not counted in per_source_ yet.
    if (!source_full && open_.size() <= kMaxConnections) return true;
    for (auto& [id, c] : open_) {
        if (c->complete || c->closing || c->source.empty() || (source_full && c->source != source)) continue;
        if (c->id == next_id_) continue;  // the new connection itself
        metrics().admin_dropped.add("evicted");
        S2S_LOG_INFO(LogContext{}, "admin-evicted", "an idle connection from %s made room for one from %s",
                     c->source.c_str(), source.c_str());
        close(*c);
        return true;
    }
    return false;
}

void AdminServer::dispatch(Conn& c) {
    ++metrics().admin_requests;
    uv_timer_start(&c.timer, on_deadline, answer_deadline_ms_, 0);
    const auto method = static_cast<http_method>(c.parser.method);
    if (method != HTTP_GET && method != HTTP_HEAD) {
        respond(c.id, {405, "only GET and HEAD\n"});
        return;
    }
    c.head = method == HTTP_HEAD;
    std::string path = c.url;
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c.url.data(), c.url.size(), 0, &u) == 0 && (u.field_set & (1 << UF_PATH)))
        path = c.url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    auto it = routes_.find(path);
    if (it == routes_.end()) {
        respond(c.id, {404, "not found; try /healthz, /readyz or /metrics\n"});
        return;
    }
    uint64_t id = c.id;
    std::shared_ptr<AdminServer*> self = self_;  // the reply may come after this server is gone
    it->second([self, id](HttpResponse r) {
        if (*self) (*self)->respond(id, r);
    });
}

void AdminServer::respond(uint64_t conn_id, const HttpResponse& r) {
    auto it = open_.find(conn_id);
    if (it == open_.end()) return;  // closed meanwhile
    Conn& c = *it->second;
    if (c.answered || c.closing) return;
    c.answered = true;
    c.complete = true;
    c.response = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
    c.response += "Content-Type: " + r.content_type + "\r\n";
    c.response += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    if (r.status == 405) c.response += "Allow: GET, HEAD\r\n";
    c.response += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    if (!c.head) c.response += r.body;
    uv_buf_t b = uv_buf_init(c.response.data(), static_cast<unsigned>(c.response.size()));
    c.write_req.data = &c;
    int rc = uv_write(&c.write_req, reinterpret_cast<uv_stream_t*>(&c.tcp), &b, 1, [](uv_write_t* req, int) {
        auto* conn = static_cast<Conn*>(req->data);
        if (!conn->closing) conn->server->close(*conn);
    });
    if (rc != 0) close(c);
}

void AdminServer::close(Conn& c) {
    if (c.closing) return;
    c.closing = true;
    open_.erase(c.id);
    auto held = per_source_.find(c.source);
    if (held != per_source_.end() && c.counted && --held->second == 0) per_source_.erase(held);
    auto done = [](uv_handle_t* h) {
        auto* conn = static_cast<Conn*>(h->data);
        if (--conn->open_handles == 0) delete conn;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), done);
    uv_close(reinterpret_cast<uv_handle_t*>(&c.timer), done);
}

}  // namespace s2s
