// S2SOut (s2s_out.h): reaching the remote, from the resolver's answer to a connected socket under
// the link's stream. The candidates and their order are DialPlan's, the TCP connects (one
// address, or two families raced) HappyEyeballs'.
#include <unistd.h>

#include "proxy/s2s/s2s_out.h"

namespace s2s {

void S2SOut::start() {
    enter(State::Resolving);
    resolve_token_ = resolver_.resolve(remote_, [this](std::vector<Candidate> found, const std::string& error) {
        resolve_token_ = 0;
        dial_.reset(std::move(found));
        if (dial_.empty() || !connect_next()) {
            fail(StanzaError::RemoteServerNotFound, dial_.empty() ? error : dial_.refused());
            ctx_.loop.defer([this] { finish(); });  // no socket to wait for
        }
    });
}

bool S2SOut::connect_next() {
    const Candidate* c = dial_.next(log_ctx());
    if (!c) return false;
    S2S_LOG_INFO(log_ctx(), "connecting", "to %s", c->describe().c_str());
    stream_id_.clear(), version_1_ = false, sasl_ = {}, bidi_ = {};  // nothing said by the previous one counts
    enter(State::Connecting);
    eyeballs_.start(dial_, log_ctx(), settings_.connect_timeout_ms,
                    [this](int fd, const std::string& error) { connected(fd, error); });
    return true;
}

void S2SOut::connected(int fd, const std::string& error) {
    if (fd < 0) {
        last_error_ = error;
        if (connect_next()) return;
        fail(StanzaError::RemoteServerNotFound,
             "could not connect: " + last_error_ + (dial_.refused().empty() ? "" : "; " + dial_.refused()));
        ctx_.loop.defer([this] { finish(); });  // no socket to wait for
        return;
    }
    Stream& s = open_stream(settings_.parse, Side::Public, settings_.max_rate);
    int rc = uv_tcp_open(reinterpret_cast<uv_tcp_t*>(s.handle()), fd);
    if (rc != 0) {
        ::close(fd);
        last_error_ = dial_.current().describe() + ": " + uv_strerror(rc);
        s.abort(last_error_);  // on_closed() tries the next candidate
        return;
    }
    if (s.start()) on_connected(0);
}

void S2SOut::forget_local_end() {
    if (!has_local_end_) return;
    has_local_end_ = false;
    if (settings_.own_outgoing) settings_.own_outgoing->erase(reinterpret_cast<const sockaddr*>(&local_end_));
}

void S2SOut::on_connected(int status) {
    (void)status;  // always 0: the connect is happy_eyeballs.h's
    const Candidate& c = dial_.current();
    dane_.reset(c);
    int len = sizeof local_end_;
    if (settings_.own_outgoing &&
        uv_tcp_getsockname(reinterpret_cast<const uv_tcp_t*>(stream_->handle()), reinterpret_cast<sockaddr*>(&local_end_),
                           &len) == 0)
        has_local_end_ = settings_.own_outgoing->insert(reinterpret_cast<const sockaddr*>(&local_end_));
    if (c.direct_tls || settings_.tls.direct) {
        tls::SessionOptions so;
        so.server_name = sni_name();
        stream_->start_tls(tls_context(), so);
        enter(State::TlsHandshake);
        return;
    }
    send_header();
}

}  // namespace s2s
