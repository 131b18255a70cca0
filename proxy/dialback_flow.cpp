#include "proxy/dialback_flow.h"

#include <algorithm>

#include "common/jid.h"
#include "proxy/metrics.h"
#include "proxy/xmpp.h"

namespace s2s {
namespace {

// "condition: text" of an <error/> inside a dialback answer, for bounces and logs.
std::string describe_error(const xml::Element& answer) {
    xml::Element err = answer.child("error", answer.ns());
    if (!err) err = answer.child("error", xml::ns::server);
    if (!err) return "no reason given";
    std::string out;
    for (xml::Element c : err.elements()) {
        if (c.name() == "text") continue;
        out = std::string(c.name());
        break;
    }
    xml::Element text = err.child("text", kStanzaErrorsNs);
    if (text) out += (out.empty() ? "" : ": ") + text.text();
    return out.empty() ? "no reason given" : out;
}

}  // namespace

std::string dialback_request(const std::string& local, const std::string& remote, const std::string& key) {
    return "<db:result from='" + xml::escape_attr(local) + "' to='" + xml::escape_attr(remote) + "'>" + key +
           "</db:result>";
}

std::optional<DialbackRefusal> read_dialback_answer(const xml::Element& e, const std::string& local,
                                                    const std::string& remote) {
    std::string type = attr_or_empty(e, "type");
    metrics().dialback.add(type == "valid" ? "originating:valid" : type == "invalid" ? "originating:invalid" : "originating:error");
    if (type == "valid") return std::nullopt;
    std::string why = remote + " refused dialback for " + local + " (" +
                      (type == "invalid" ? std::string("invalid key") : describe_error(e)) + ")";
    // The remote's own condition (policy-violation, not-authorized...) tells the sender most.
    StanzaError condition = StanzaError::RemoteServerNotFound;
    if (xml::Element err = e.child("error", e.ns()); err || (err = e.child("error", xml::ns::server)))
        for (xml::Element c : err.elements())
            if (auto known = stanza_error_from_name(c.name()); known && c.ns() == kStanzaErrorsNs) {
                condition = *known;
                break;
            }
    return DialbackRefusal{condition, why};
}

uint64_t VerifyRequests::add(std::string local, std::string stream_id, std::string key, Router::VerifyDone done) {
    uint64_t token = ++next_;
    requests_.push_back({token, std::move(local), std::move(stream_id), std::move(key), std::move(done), false});
    return token;
}

void VerifyRequests::cancel(uint64_t token) {
    requests_.erase(std::remove_if(requests_.begin(), requests_.end(), [token](const Request& r) { return r.token == token; }),
                    requests_.end());
}

std::vector<std::string> VerifyRequests::take_unsent(const std::string& remote) {
    std::vector<std::string> out;
    for (auto& r : requests_) {
        if (r.sent) continue;
        r.sent = true;
        out.push_back("<db:verify from='" + xml::escape_attr(r.local) + "' to='" + xml::escape_attr(remote) + "' id='" +
                      xml::escape_attr(r.stream_id) + "'>" + xml::escape_text(r.key) + "</db:verify>");
    }
    return out;
}

bool VerifyRequests::waiting() const {
    for (auto& r : requests_)
        if (r.sent) return true;
    return false;
}

void VerifyRequests::answer(const xml::Element& e, const std::string& remote) {
    std::string local = normalize_domain(attr_or_empty(e, "to")).value_or(""), sid = attr_or_empty(e, "id");
    for (auto it = requests_.begin(); it != requests_.end(); ++it) {
        if (!it->sent || it->local != local || it->stream_id != sid) continue;
        Router::VerifyDone done = std::move(it->done);
        requests_.erase(it);
        bool valid = attr_or_empty(e, "type") == "valid";
        done(valid ? Router::Verdict::Valid : Router::Verdict::Invalid,
             valid ? "" : remote + " says the key is not one it issued");
        return;
    }
}

void VerifyRequests::fail_all(Router::Verdict verdict, const std::string& why) {
    std::vector<Request> requests;
    requests.swap(requests_);
    for (auto& r : requests) r.done(verdict, why);
}

}  // namespace s2s
