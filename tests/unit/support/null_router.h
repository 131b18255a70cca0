// A Router for unit tests that routes nothing and verifies nothing; tests override what they watch.
#pragma once

#include <string>
#include <string_view>

#include "proxy/xmpp/context.h"

namespace s2s::test {

struct NullRouter : Router {
    void from_remote(std::string_view, std::string_view, xml::Document&, Stream*) override {}
    void refuse_from_remote(std::string_view, std::string_view, xml::Document&, const std::string&, Stream*) override {}
    uint64_t verify_dialback(const std::string&, const std::string&, const std::string&, const std::string&,
                             VerifyDone) override {
        return 0;
    }
    void cancel_verify(uint64_t) override {}
    [[nodiscard]] uint64_t verify_timeout_ms() const override { return 0; }
    void offer_reverse_route(const std::string&, const std::string&, ReverseRoute&) override {}
    void withdraw_reverse_route(const std::string&, const std::string&, ReverseRoute&) override {}
};

}  // namespace s2s::test
