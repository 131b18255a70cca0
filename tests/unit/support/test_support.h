// Helpers shared by unit tests: temporary directories, throwaway certificates made with openssl,
// and the log lines a test provoked.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/base/log.h"

namespace s2s::test {

// A fresh directory under $TMPDIR, removed with everything in it when the object goes away.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    // Writes a file in the directory and returns its full path.
    std::string write(const std::string& name, const std::string& content) const;

private:
    std::string path_;
};

// Makes a self-signed certificate for `cn` with an EC key in dir: returns the cert path and sets
// *key to the key path (encrypted with `password` when it is not empty). Empty on failure.
std::string make_certificate(const TempDir& dir, const std::string& cn, std::string* key,
                             const std::string& password = "");

// Every log line while it lives (debug and up).
struct LogCapture {
    std::vector<std::string> lines;
    LogLevel before = log_level();
    LogCapture();
    ~LogCapture();
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;
    // How many lines hold both `a` and `b`; whether one does.
    [[nodiscard]] size_t count(const std::string& a, const std::string& b = "") const;
    [[nodiscard]] bool has(const std::string& a, const std::string& b = "") const { return count(a, b) > 0; }
};

}  // namespace s2s::test
