// libFuzzer entry for the XMPP stream parser.
//
// Input layout: 4 control bytes, then stream bytes.
//   [0] flags: bits 0-2 max_depth, bits 3-5 max_attributes, bit 6 any content namespace,
//       bit 7 prepend a valid stream header (reaches stanza parsing sooner)
//   [1] max_stanza_size (255 = default limits)   [2] max_tag_size
//   [3] seed of the chunk sizes (bit 7: start releasing the parser between chunks)
// Every stanza is serialized (in the stream's own scope and standalone), re-parsed, and must
// come back equal and serialize to the same bytes again. A stanza named <reset/> resets the
// stream and the rest of the chunk is fed to the new one; <stop/> stops it; the parser is
// released between chunks when possible. Any broken promise aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/xmpp/stream_error.h"
#include "common/xml/xml.h"
#include "common/xmpp/xml_stream.h"

namespace {

using namespace s2s::xml;

const char kHeader[] =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' version='1.0' from='b.test' to='a.test'>";

[[noreturn]] void die(const char* why, const std::string& a, const std::string& b = {}) {
    std::fprintf(stderr, "fuzz_xml_stream: %s\n--- first:\n%s\n--- second:\n%s\n", why,
                 a.c_str(), b.c_str());
    std::abort();
}

void check_roundtrip(const Document& doc, const NamespaceScope& scope) {
    std::string bytes;
    serialize(doc.root(), scope, bytes);
    StreamLimits roomy;
    roomy.max_stanza_size = bytes.size() + 64 * 1024;  // the wrapper header counts too
    roomy.max_tag_size = bytes.size() + 64 * 1024;
    roomy.max_depth = 1u << 20;
    roomy.max_attributes = 1u << 20;
    auto again = parse_element(bytes, scope, roomy);
    if (!again) die("serialization does not parse", bytes);
    if (!equal(doc.root(), again->root())) die("re-parse differs", bytes, to_string(again->root(), scope));
    std::string bytes2;
    serialize(again->root(), scope, bytes2);
    if (bytes != bytes2) die("serialization is not stable", bytes, bytes2);
    const Document copy = doc;
    if (!equal(copy.root(), doc.root())) die("copy differs", bytes, to_string(copy.root(), scope));
}

class Checker final : public XmlStream::Handler {
public:
    void on_stream_open(const StreamHeader& header) override {
        alive("open");
        scope_ = header.scope();
    }
    void on_stanza(Document& stanza) override {
        alive("stanza");
        if (stanza.empty()) die("empty stanza", "");
        check_roundtrip(stanza, scope_);
        check_roundtrip(stanza, NamespaceScope());
        const std::string_view name = stanza.root().name();
        if (name == "reset") {
            stream->reset();
        } else if (name == "stop") {
            stream->stop();
            dead_ = "stop";
        }
    }
    void on_stream_close() override {
        alive("close");
        dead_ = "close";
    }
    void on_stream_error(s2s::StreamError error, std::string_view text) override {
        alive("error");
        if (text.empty()) die("stream error without text", std::string(s2s::name(error)));
        dead_ = "error";
    }

    void reborn() { dead_ = nullptr; }

    XmlStream* stream = nullptr;

private:
    void alive(const char* what) {
        if (dead_ != nullptr) die("callback after the end of the stream", what, dead_);
    }
    NamespaceScope scope_;
    const char* dead_ = nullptr;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    const std::uint8_t flags = data[0];
    StreamOptions options;
    if (data[1] != 255) {
        options.limits.max_stanza_size = 64 + std::size_t{data[1]} * 8;
        options.limits.max_tag_size = 32 + std::size_t{data[2] & 0x7fu} * 8;
        options.limits.max_depth = 1 + (flags & 7u) * 2;
        options.limits.max_attributes = 1 + ((flags >> 3) & 7u) * 2;
    }
    if ((flags & 0x40u) != 0) {
        options.content_namespaces.clear();
    } else {
        options.content_namespaces.emplace_back(ns::component_accept);
    }
    std::string input;
    if ((flags & 0x80u) != 0) input = kHeader;
    input.append(reinterpret_cast<const char*>(data) + 4, size - 4);
    // Chunk sizes from a tiny generator seeded by the control byte: 1..97 bytes, varying.
    std::uint32_t rng = 0x9e3779b9u ^ data[3];
    const auto next_chunk = [&rng]() -> std::size_t {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        return 1 + rng % 97;
    };

    Checker checker;
    XmlStream stream(checker, options);
    checker.stream = &stream;
    std::size_t pos = 0;
    bool release = (data[3] & 0x80u) != 0;
    while (pos < input.size()) {
        const std::size_t n = std::min(next_chunk(), input.size() - pos);
        const FeedResult r = stream.feed(input.data() + pos, n);
        if (r.consumed > n) die("consumed more than fed", std::to_string(r.consumed));
        if (r.status == FeedStatus::Ok) {
            if (r.consumed != n) die("Ok without consuming everything", std::to_string(r.consumed));
            pos += n;
            if (release) (void)stream.release_parser();
            release = !release;
            continue;
        }
        if (r.status == FeedStatus::Stopped && stream.state() == XmlStream::State::AwaitingHeader) {
            // <reset/>: the rest of the chunk belongs to the next stream.
            checker.reborn();
            pos += r.consumed;
            continue;
        }
        // Closed, Failed or stopped for good: nothing more is parsed.
        const FeedResult after = stream.feed("<x/>", 4);
        if (after.status == FeedStatus::Ok || after.consumed != 0) die("parser alive after its end", "");
        break;
    }
    return 0;
}
