#include "tests/bench/stanza_scan.h"

#include <cstring>

namespace s2s::bench {

void StanzaScanner::reset() {
    buf_.clear();
    depth_ = 0;
    elem_start_ = 0;
    scan_ = 0;
    failed_ = false;
    reset_ = true;  // noticed by feed() when called from a callback
}

void StanzaScanner::feed(const char* data, std::size_t len) {
    if (failed_) return;
    reset_ = false;
    std::size_t p = scan_;
    buf_.append(data, len);
    const char* b = buf_.data();
    const std::size_t n = buf_.size();
    auto fail = [this](const std::string& what) {
        failed_ = true;
        handler_.on_error(what);
    };
    for (;;) {
        const void* lt = std::memchr(b + p, '<', n - p);
        if (!lt) {
            p = n;
            break;
        }
        const std::size_t t = static_cast<std::size_t>(static_cast<const char*>(lt) - b);
        const void* gt = std::memchr(b + t, '>', n - t);
        if (!gt) {
            p = t;  // an incomplete tag: wait for the rest
            break;
        }
        const std::size_t e = static_cast<std::size_t>(static_cast<const char*>(gt) - b) + 1;
        const char c = t + 1 < n ? b[t + 1] : '\0';
        p = e;
        if (c == '?') {
            if (depth_ >= 2) return fail("processing instruction inside an element");
            continue;
        }
        if (c == '!') return fail("comments, CDATA and DOCTYPE are not handled by the sink");
        if (c == '/') {
            if (depth_ == 0) return fail("end tag before the stream header");
            if (depth_ == 1) {
                depth_ = 0;
                handler_.on_end();
                if (reset_ || failed_) return;
                continue;
            }
            if (--depth_ == 1) {
                handler_.on_element(std::string_view(b + elem_start_, e - elem_start_));
                if (reset_ || failed_) return;
            }
            continue;
        }
        const bool self_closing = e >= 2 && b[e - 2] == '/';
        if (depth_ == 0) {
            depth_ = 1;
            handler_.on_header(std::string_view(b + t, e - t));
            if (reset_ || failed_) return;
            continue;
        }
        if (depth_ == 1) {
            elem_start_ = t;
            if (self_closing) {
                handler_.on_element(std::string_view(b + t, e - t));
                if (reset_ || failed_) return;
            } else {
                depth_ = 2;
            }
            continue;
        }
        if (!self_closing) ++depth_;
    }
    // Keep only what is still needed: the element being received, or an incomplete tag.
    std::size_t keep = depth_ >= 2 ? elem_start_ : p;
    if (keep > 0) buf_.erase(0, keep);
    if (depth_ >= 2) elem_start_ = 0;
    scan_ = p - keep;
}

std::string_view tag_attr(std::string_view tag, std::string_view name) {
    std::size_t from = 0;
    while (from < tag.size()) {
        std::size_t at = tag.find(name, from);
        if (at == std::string_view::npos) return {};
        std::size_t q = at + name.size();
        bool boundary = at > 0 && (tag[at - 1] == ' ' || tag[at - 1] == '\t' || tag[at - 1] == '\n' || tag[at - 1] == '\r');
        if (boundary && q + 1 < tag.size() && tag[q] == '=' && (tag[q + 1] == '\'' || tag[q + 1] == '"')) {
            char quote = tag[q + 1];
            std::size_t end = tag.find(quote, q + 2);
            if (end == std::string_view::npos) return {};
            return tag.substr(q + 2, end - q - 2);
        }
        from = at + 1;
    }
    return {};
}

}  // namespace s2s::bench
