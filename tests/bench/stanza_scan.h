// A fast splitter for the XML streams the sink receives: finds the stream header, each depth-1
// element (stanza, dialback, STARTTLS...) and the stream's end, without building a tree, so the
// sink costs a fraction of what the proxy under test spends per stanza.
//
// It relies on what the senders here write (s2s-proxy, Prosody, this generator): tags contain no
// unescaped '>' inside attribute values, no comments, CDATA or DOCTYPE. Anything it cannot split
// is reported as an error rather than guessed at. Elements the sink must understand (dialback,
// STARTTLS) are then parsed properly with xml::parse_element().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace s2s::bench {

class StanzaScanner {
public:
    class Handler {
    public:
        virtual void on_header(std::string_view start_tag) = 0;  // <stream:stream ...>
        virtual void on_element(std::string_view element) = 0;   // one whole depth-1 element
        virtual void on_end() = 0;                                // </stream:stream>
        virtual void on_error(const std::string& what) = 0;

    protected:
        ~Handler() = default;
    };

    explicit StanzaScanner(Handler& handler) : handler_(handler) {}

    // Splits what arrived; callbacks run inside. A callback may call reset() (stream restart):
    // the rest of this chunk is then dropped.
    void feed(const char* data, std::size_t len);
    // Forgets everything: the next bytes start a new stream.
    void reset();

private:
    Handler& handler_;
    std::string buf_;       // bytes not yet consumed (an incomplete tag or element)
    std::size_t depth_ = 0; // 0 before the header, 1 inside the stream, 2+ inside an element
    std::size_t elem_start_ = 0;  // where the element being received starts in buf_
    std::size_t scan_ = 0;        // where scanning resumes in buf_
    bool failed_ = false;
    bool reset_ = false;
};

// The value of attribute `name` in a start tag (single or double quotes), raw (not unescaped);
// empty if absent.
[[nodiscard]] std::string_view tag_attr(std::string_view tag, std::string_view name);

}  // namespace s2s::bench
