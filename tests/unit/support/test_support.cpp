#include "tests/unit/support/test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace s2s::test {

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/s2s-proxy-test.XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ignored;  // a leftover temporary directory is harmless
    std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
}

std::string make_certificate(const TempDir& dir, const std::string& cn, std::string* key, const std::string& password) {
    std::string cert = dir.path() + "/" + cn + ".crt";
    *key = dir.path() + "/" + cn + ".key";
    std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 2 -subj '/CN=" + cn +
                      "' -addext 'subjectAltName=DNS:" + cn + "' -keyout '" + *key + "' -out '" + cert + "' " +
                      (password.empty() ? "-nodes" : "-passout pass:" + password) + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return "";
    return cert;
}

LogCapture::LogCapture() {
    set_log_sink([this](LogLevel, std::string_view line) { lines.emplace_back(line); });
    set_log_level(LogLevel::debug);
}

LogCapture::~LogCapture() {
    set_log_level(before);
    set_log_sink(nullptr);
}

size_t LogCapture::count(const std::string& a, const std::string& b) const {
    size_t n = 0;
    for (auto& l : lines) n += l.find(a) != std::string::npos && l.find(b) != std::string::npos;
    return n;
}

}  // namespace s2s::test
