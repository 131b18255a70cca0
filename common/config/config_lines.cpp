#include "common/config/config_lines.h"

#include <cctype>
#include <vector>

namespace s2s::config {
namespace {

// A small cursor over the text that knows the current line and skips TOML strings and comments.
class Scanner {
public:
    explicit Scanner(std::string_view text) : text_(text) {}

    bool done() const { return pos_ >= text_.size(); }
    char peek() const { return done() ? '\0' : text_[pos_]; }
    int line() const { return line_; }

    void advance() {
        if (done()) return;
        if (text_[pos_] == '\n') ++line_;
        ++pos_;
    }
    bool starts_with(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }

    // Spaces, tabs, comments and (when newlines is set) line breaks.
    void skip_space(bool newlines) {
        while (!done()) {
            char c = peek();
            if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
                advance();
            } else if (c == '#') {
                while (!done() && peek() != '\n') advance();
            } else {
                break;
            }
        }
    }

    void skip_to_line_end() {
        while (!done() && peek() != '\n') {
            if (peek() == '"' || peek() == '\'') {
                read_string();
                continue;
            }
            advance();
        }
    }

    // A basic, literal or multi-line string starting at the cursor; returns its raw content.
    std::string read_string() {
        char q = peek();
        bool multi = starts_with(std::string(3, q));
        std::string out;
        for (int i = 0; i < (multi ? 3 : 1); ++i) advance();
        while (!done()) {
            if (multi ? starts_with(std::string(3, q)) : peek() == q) {
                for (int i = 0; i < (multi ? 3 : 1); ++i) advance();
                break;
            }
            if (!multi && peek() == '\n') break;  // unterminated: cpptoml reports it
            if (q == '"' && peek() == '\\') {
                advance();
                out += peek();
                advance();
                continue;
            }
            out += peek();
            advance();
        }
        return out;
    }

    // A dotted key: bare or quoted parts separated by dots; stops before '=', ']' or end of line.
    std::string read_key() {
        std::string key;
        for (;;) {
            skip_space(false);
            if (peek() == '"' || peek() == '\'') {
                key += read_string();
            } else {
                while (!done() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '-'))
                    key += peek(), advance();
            }
            skip_space(false);
            if (peek() != '.') break;
            key += '.';
            advance();
        }
        return key;
    }

private:
    std::string_view text_;
    size_t pos_ = 0;
    int line_ = 1;
};

class Indexer {
public:
    explicit Indexer(std::string_view text) : s_(text) {}

    LineIndex run() {
        while (!s_.done()) {
            s_.skip_space(true);
            if (s_.done()) break;
            if (s_.starts_with("[[")) {
                s_.advance(), s_.advance();
                std::string name = s_.read_key();
                table_ = name + "." + std::to_string(counters_[name]++);
                record(table_);
                s_.skip_to_line_end();
            } else if (s_.peek() == '[') {
                s_.advance();
                table_ = s_.read_key();
                record(table_);
                s_.skip_to_line_end();
            } else {
                key_value(table_);
            }
        }
        return std::move(index_);
    }

private:
    static std::string join(const std::string& prefix, const std::string& key) {
        return prefix.empty() ? key : prefix + "." + key;
    }
    void record(const std::string& path) { index_.emplace(path, s_.line()); }

    // `key = value` at the cursor, under prefix.
    void key_value(const std::string& prefix) {
        int line = s_.line();
        std::string key = s_.read_key();
        if (key.empty() || s_.peek() != '=') {  // not a key: let cpptoml report it
            s_.skip_to_line_end();
            return;
        }
        std::string path = join(prefix, key);
        index_.emplace(path, line);
        s_.advance();  // '='
        s_.skip_space(false);
        value(path);
    }

    void value(const std::string& path) {
        if (s_.peek() == '[') {
            array(path);
        } else if (s_.peek() == '{') {
            inline_table(path);
        } else if (s_.peek() == '"' || s_.peek() == '\'') {
            s_.read_string();
        } else {
            while (!s_.done() && s_.peek() != '\n' && s_.peek() != ',' && s_.peek() != ']' && s_.peek() != '}' &&
                   s_.peek() != '#')
                s_.advance();
        }
    }

    // An array; inline tables in it are entries numbered from 0, like arrays of tables.
    void array(const std::string& path) {
        s_.advance();  // '['
        int entry = 0;
        for (;;) {
            s_.skip_space(true);
            if (s_.done()) return;
            if (s_.peek() == ']') {
                s_.advance();
                return;
            }
            if (s_.peek() == ',' || s_.peek() == '}') {  // '}' here is malformed: step over it
                s_.advance();
                continue;
            }
            if (s_.peek() == '{') {
                std::string entry_path = path + "." + std::to_string(entry++);
                record(entry_path);
                inline_table(entry_path);
            } else {
                value(path);
            }
        }
    }

    void inline_table(const std::string& path) {
        s_.advance();  // '{'
        for (;;) {
            s_.skip_space(true);
            if (s_.done()) return;
            if (s_.peek() == '}') {
                s_.advance();
                return;
            }
            if (s_.peek() == ',') {
                s_.advance();
                continue;
            }
            size_t before_line = static_cast<size_t>(s_.line());
            key_value(path);
            if (static_cast<size_t>(s_.line()) == before_line && s_.peek() != ',' && s_.peek() != '}' && !s_.done() &&
                s_.peek() != '\n' && s_.peek() != ' ')
                s_.advance();  // guarantee progress on malformed input
        }
    }

    Scanner s_;
    std::string table_;
    std::map<std::string, int> counters_;
    LineIndex index_;
};

}  // namespace

LineIndex index_lines(std::string_view text) { return Indexer(text).run(); }

int line_of(const LineIndex& index, const std::string& key) {
    std::string k = key;
    for (;;) {
        auto it = index.find(k);
        if (it != index.end()) return it->second;
        size_t dot = k.rfind('.');
        if (dot == std::string::npos) return 0;
        k.resize(dot);
    }
}

KeyAt key_at(const LineIndex& index, int line) {
    KeyAt best;
    for (auto& [key, l] : index) {
        if (l > line || l < best.line) continue;
        if (l > best.line || key.size() > best.key.size()) best = KeyAt{key, l};
    }
    return best;
}

}  // namespace s2s::config
