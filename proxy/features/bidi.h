// Bidirectional server-to-server streams (XEP-0288, s2s.bidi) in both roles:
// - on a stream we accept (s2s_in, BidiServer): offered once TLS is up and only before anything
//   is authenticated; a peer that asks for it may then have our stanzas for its pairs sent back
//   on its stream, for each pair whose remote domain its certificate proves (ReverseRoutes: the
//   routes offered to the Router). A pair proved by dialback alone gets no route: dialback only
//   shows that the peer receives what is sent to the domain's authoritative server.
// - on a link we open (s2s_out, BidiClient): asked for when the remote offers it over TLS, its
//   certificate proves its domain and some [[listen.s2s]] access rule admits it; the remote's
//   stanzas back on the link then pass the same checks as on an inbound stream.
//
// No socket here: requests and features are returned as wire bytes, and refusals as the stream
// error and text the stream ends with.
#pragma once

#include <optional>
#include <string>

#include "common/base/log.h"
#include "common/tls/tls.h"
#include "common/xml/xml.h"
#include "proxy/features/admission.h"
#include "proxy/xmpp/context.h"
#include "proxy/xmpp/pair_set.h"

namespace s2s {

inline constexpr std::string_view kBidiNs = "urn:xmpp:bidi";                  // the request
inline constexpr std::string_view kBidiFeatureNs = "urn:xmpp:features:bidi";  // the feature

// The accepting side, one per inbound stream.
class BidiServer {
public:
    enum class State {
        NotOffered,  // not in the current stream's features
        Offered,     // listed in the current stream's features; not asked for yet
        Agreed,      // the peer asked for it: the stream carries stanzas both ways
    };

    // A new stream (header) begins: what the previous features offered no longer stands.
    void new_stream() noexcept {
        if (state_ == State::Offered) state_ = State::NotOffered;
    }
    // The feature to list in the current features ("" for none): with s2s.bidi on (`enabled`),
    // over TLS, before anything is authenticated or being verified (`fresh`), not yet agreed.
    [[nodiscard]] std::string feature(bool enabled, bool tls_open, bool fresh);
    // The peer's <bidi/>: nullopt when agreed (or asked again), else the text of the
    // unsupported-stanza-type error that ends the stream. `fresh` as for feature().
    [[nodiscard]] std::optional<std::string> on_request(bool enabled, bool tls_open, bool fresh, const LogContext& log);

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] bool agreed() const noexcept { return state_ == State::Agreed; }

private:
    State state_ = State::NotOffered;
};

// The reverse routes one inbound bidi stream offers to the Router: the authenticated pairs whose
// remote domain the peer's certificate proves. `route` is the stream the Router sends them on.
class ReverseRoutes {
public:
    ReverseRoutes(Router& router, ReverseRoute& route, uint64_t conn_id) : router_(router), route_(route), conn_id_(conn_id) {}
    // Offers (remote, local) once, when `tls` proves `remote`.
    void offer(const std::string& remote, const std::string& local, const tls::Session& tls);
    // Withdraws every route offered.
    void withdraw_all();
    [[nodiscard]] bool contains(std::string_view remote, std::string_view local) const noexcept {
        return routes_.contains(remote, local);
    }

private:
    Router& router_;
    ReverseRoute& route_;
    uint64_t conn_id_;
    PairSet routes_;
};

// The initiating side, one per outbound link.
class BidiClient {
public:
    // Whether to ask now, from the remote's features: s2s.bidi on (`enabled`), not asked yet, over
    // TLS (`tls` non-null), offered, some listener admits the remote and its certificate proves it.
    // When offered but not asked for, the log says why.
    [[nodiscard]] bool wanted(const ProxyContext& ctx, bool enabled, const xml::Element& features,
                              const tls::Session* tls, const std::string& remote, const LogContext& log) const;
    // The request to send; the remote may send on the link from now on. `limits`: what we accept
    // on the link (XEP-0478 §2.2: the remote sends us no features), put inside it.
    [[nodiscard]] std::string ask(const std::string& remote, const LogContext& log, std::string_view limits = {});
    // A stanza from the remote on the link: routed when bidi was asked for, the listeners still
    // admit the remote and it passes route_remote_stanza for `pairs`; else the refusal.
    [[nodiscard]] std::optional<StanzaRefusal> on_stanza(ProxyContext& ctx, uint64_t conn_id, Stream* source,
                                                         xml::Document& doc, const PairSet& pairs,
                                                         const std::string& remote) const;

    [[nodiscard]] bool asked() const noexcept { return asked_; }

private:
    bool asked_ = false;
};

}  // namespace s2s
