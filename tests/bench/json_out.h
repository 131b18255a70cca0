// A flat JSON object written key by key: what each bench command prints as its last line.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace s2s::bench {

class JsonOut {
public:
    JsonOut& num(const std::string& key, double v) {
        char buf[64];
        if (std::isfinite(v)) std::snprintf(buf, sizeof buf, "%.6g", v);
        else std::snprintf(buf, sizeof buf, "null");
        return raw(key, buf);
    }
    JsonOut& str(const std::string& key, const std::string& v) {
        std::string q = "\"";
        for (char c : v) {
            if (c == '"' || c == '\\') q += '\\', q += c;
            else if (static_cast<unsigned char>(c) < 0x20) q += ' ';
            else q += c;
        }
        return raw(key, q + "\"");
    }
    JsonOut& nums(const std::string& key, const std::vector<double>& v) {
        std::string a = "[";
        for (std::size_t i = 0; i < v.size(); ++i) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s%.6g", i ? ", " : "", v[i]);
            a += buf;
        }
        return raw(key, a + "]");
    }
    JsonOut& raw(const std::string& key, const std::string& json) {
        text_ += (text_.empty() ? "{" : ", ") + ("\"" + key + "\": ") + json;
        return *this;
    }
    [[nodiscard]] std::string text() const { return (text_.empty() ? "{" : text_) + "}"; }

private:
    std::string text_;
};

}  // namespace s2s::bench
