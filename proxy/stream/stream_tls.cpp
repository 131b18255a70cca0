// Stream: TLS under the stream. Ciphertext read from the socket goes through the session, the
// decrypted bytes to the parser; what the session writes (handshake, records, alerts) goes to
// the output. The stream's other parts see TLS only through tls_ and plain_out_.
#include "proxy/stream/stream.h"

namespace s2s {

void Stream::count_tls_failure() {
    std::string_view kind = tls_ ? tls_->failure_kind() : std::string_view();
    metrics().tls_failures.add(kind.empty() ? "other" : kind);
}

void Stream::feed_tls(const char* data, size_t len) {
    if (len > 0 && !tls_->feed_ciphertext(data, len)) {
        count_tls_failure();
        abort("TLS: " + tls_->failure_reason());
        return;
    }
    if (tls_->state() == tls::State::Handshaking) {
        tls::Progress p = tls_->handshake();
        take_tls_output();
        if (p == tls::Progress::Failed) {
            count_tls_failure();
            close("TLS handshake failed: " + tls_->failure_reason());
            return;
        }
        if (p == tls::Progress::WantMore) return;
        metrics().tls_handshakes.add(tls_->role() == tls::Role::Server ? "server" : "client");
        owner_.on_tls_established();
        if (state_ != State::Open) return;
        if (!plain_out_.empty()) loop_.schedule_flush(this);
    }
    // Decrypted bytes go to the parser; one scratch string serves every stream (reads do not nest).
    static std::string plain;
    plain.clear();
    tls::IoResult r = tls_->read_plaintext(plain);
    take_tls_output();  // a TLS 1.3 ticket or alert may need sending
    if (!plain.empty()) {
        std::string chunk;
        chunk.swap(plain);  // the parser's callbacks may start another read path; keep ours
        feed(chunk.data(), chunk.size());
        if (plain.capacity() < chunk.capacity()) plain.swap(chunk);
    }
    if (r == tls::IoResult::Closed && state_ == State::Open) {
        close("the peer closed TLS");
    } else if (r == tls::IoResult::Failed) {
        count_tls_failure();
        abort("TLS: " + tls_->failure_reason());
    }
}

// Moves ciphertext the TLS session produced into the output; false if the peer is not reading.
bool Stream::take_tls_output() {
    if (!tls_->has_output()) return true;
    std::string_view c = tls_->pending_output();
    if (!out_.append(c)) {
        abort("the peer is not reading: more than " + std::to_string(kHardLimit) + " bytes queued");
        return false;
    }
    tls_->consume_output(c.size());
    loop_.schedule_flush(this);
    return true;
}

void Stream::start_tls(std::shared_ptr<const tls::Context> context, const tls::SessionOptions& options) {
    tls_ = std::make_unique<tls::Session>(std::move(context), options);
    if (tls_->role() == tls::Role::Client) {
        if (tls_->handshake() == tls::Progress::Failed) {
            count_tls_failure();
            abort("TLS: " + tls_->failure_reason());
            return;
        }
        take_tls_output();
    }
}

}  // namespace s2s
