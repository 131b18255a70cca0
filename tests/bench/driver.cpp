#include "tests/bench/driver.h"

#include <algorithm>
#include <cmath>

namespace s2s::bench {

namespace {

std::string link_domain(const std::string& pattern, uint64_t n) {
    std::string out = pattern;
    std::size_t at = out.find('%');
    if (at != std::string::npos) out.replace(at, 1, std::to_string(n));
    return out;
}

StanzaTemplate* stanza_template(Link& link) { return static_cast<StanzaTemplate*>(link.user); }

}  // namespace

Driver::Driver() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
    tick_.data = this;
    uv_timer_start(&tick_, on_tick, 20, 20);
}

Driver::~Driver() {
    shutdown();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop_);
}

bool Driver::start_sink(const SinkOptions& options, const std::string& ip, int port, std::string* error) {
    uv_loop_init(&sink_loop_);
    sink_ = std::make_unique<Sink>(&sink_loop_, options);
    sink_->on_marker = [this](uint64_t value) {
        std::lock_guard<std::mutex> lock(markers_mu_);
        markers_.push_back({uv_hrtime(), value});
    };
    sink_stop_.data = this;
    uv_async_init(&sink_loop_, &sink_stop_, [](uv_async_t* a) {
        auto* self = static_cast<Driver*>(a->data);
        self->sink_->close();
        uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    bool ok = sink_->listen(ip, port, error);
    sink_thread_ = std::thread([this] { uv_run(&sink_loop_, UV_RUN_DEFAULT); });
    if (!ok) stop_sink();
    return ok;
}

void Driver::stop_sink() {
    if (!sink_thread_.joinable()) return;
    uv_async_send(&sink_stop_);
    sink_thread_.join();
    uv_run(&sink_loop_, UV_RUN_NOWAIT);
    (void)uv_loop_close(&sink_loop_);
}

void Driver::open_links(std::size_t total, std::size_t concurrency) {
    target_ = total;
    concurrency_ = concurrency;
    open_more();
}

void Driver::open_wave(std::size_t count, std::size_t concurrency) {
    wave_end_ = next_id_ + count;
    concurrency_ = concurrency;
    open_more();
}

void Driver::open_more() {
    auto more = [this] { return traffic_ == Traffic::Burst ? next_id_ < wave_end_ : links_.size() < target_; };
    while (!stopping_ && more() && negotiating_ < concurrency_) {
        LinkOptions o = link_template;
        uint64_t n = next_id_++;
        o.from_domain = link_domain(from_pattern, domain_pool ? n % domain_pool : n);
        if (!sources.empty()) o.source = sources[n % sources.size()];
        if (resume_sessions) o.resume = saved_;
        ++negotiating_;
        Link* link = Link::open(&loop_, o, *this, n);
        links_.insert(link);
    }
}

void Driver::on_ready(Link& link) {
    --negotiating_;
    ++ready_;
    ++completed_;
    if (resume_sessions && !saved_ && link.tls()) saved_ = link.tls()->save_session();
    link.user = new StanzaTemplate("bench@" + link.options().from_domain + "/load",
                                   "sink@" + link.options().to_domain);
    if (traffic_ == Traffic::Saturate) pump(link);
    if (traffic_ == Traffic::Churn) link.finish();
    if (traffic_ == Traffic::Burst) {
        batch_.clear();
        for (std::size_t i = 0; i < burst_stanzas; ++i) stanza_template(link)->append(batch_, uv_hrtime());
        link.sent += burst_stanzas;
        stanzas_sent_ += burst_stanzas;
        link.send(batch_);
        link.finish();
    }
    open_more();
}

void Driver::on_closed(Link& link, const std::string& reason, bool was_ready) {
    links_.erase(&link);
    delete stanza_template(link);
    link.user = nullptr;
    if (was_ready) {
        --ready_;
    } else {
        --negotiating_;
    }
    bool ending = traffic_ == Traffic::Churn || traffic_ == Traffic::Burst;
    bool expected = stopping_ || (ending && was_ready && link.state() == Link::State::Closing);
    if (!expected) {
        ++failures_;
        last_failure_ = "link " + link.options().from_domain + " (" + Link::state_name(link.state()) + "): " + reason;
    }
    if (ending && !stopping_) open_more();
}

void Driver::on_writable(Link& link) {
    if (traffic_ == Traffic::Saturate && link.state() == Link::State::Ready) pump(link);
}

void Driver::set_traffic(Traffic t) {
    traffic_ = t;
    uv_timer_start(&tick_, on_tick, t == Traffic::Paced ? 1 : 20, t == Traffic::Paced ? 1 : 20);
    if (t == Traffic::Paced) {
        pace_start_ns_ = uv_hrtime();
        paced_sent_ = 0;
    }
    if (t == Traffic::Saturate)
        for (Link* l : std::set<Link*>(links_))
            if (l->state() == Link::State::Ready) pump(*l);
}

void Driver::pump(Link& link) {
    StanzaTemplate* tmpl = stanza_template(link);
    if (!tmpl) return;
    const std::size_t cap = std::max(kInFlight / std::max<std::size_t>(ready_, 1), kMinInFlight);
    const std::size_t batch = std::max<std::size_t>(1, std::min(pump_batch, cap / tmpl->size()));
    while (link.in_flight() < cap && link.state() == Link::State::Ready) {
        batch_.clear();
        uint64_t now = uv_hrtime();
        for (std::size_t i = 0; i < batch; ++i) {
            tmpl->append(batch_, now);
            ++link.sent;
            if (marker_every_ && link.sent % marker_every_ == 0)
                append_marker(batch_, "bench@" + link.options().from_domain + "/load", marker_to_, link.sent);
        }
        stanzas_sent_ += batch;
        link.send(batch_);
        link.flush();
    }
}

void Driver::send_marker_all(const std::string& to) {
    for (Link* l : links_) {
        if (l->state() != Link::State::Ready) continue;
        batch_.clear();
        append_marker(batch_, "bench@" + l->options().from_domain + "/load", to, l->sent);
        l->send(batch_);
        l->flush();
    }
}

void Driver::pace() {
    Link* link = nullptr;
    for (Link* l : links_)
        if (l->state() == Link::State::Ready) {
            link = l;
            break;
        }
    if (!link) return;
    uint64_t now = uv_hrtime();
    auto due = static_cast<uint64_t>(std::floor(static_cast<double>(now - pace_start_ns_) * rate_ * 1e-9));
    if (due <= paced_sent_) return;
    batch_.clear();
    for (; paced_sent_ < due; ++paced_sent_) {
        stanza_template(*link)->append(batch_, uv_hrtime());
        ++link->sent;
        ++stanzas_sent_;
    }
    link->send(batch_);
    link->flush();
}

void Driver::on_tick(uv_timer_t* t) noexcept {
    auto* self = static_cast<Driver*>(t->data);
    if (self->traffic_ == Traffic::Paced) self->pace();
}

bool Driver::run_until(const std::function<bool()>& done, double timeout_s) {
    const double end = now_s() + timeout_s;
    while (!done()) {
        if (now_s() >= end) return false;
        uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
}

void Driver::run_for(double seconds) {
    const double end = now_s() + seconds;
    (void)run_until([end] { return now_s() >= end; }, seconds + 1);
}

void Driver::shutdown() {
    stopping_ = true;
    traffic_ = Traffic::Quiet;
    for (Link* l : std::set<Link*>(links_)) l->abort("benchmark over");
    // Let what the server still holds reach the sink (a server that cannot deliver would bounce
    // it toward the generator's domains), until nothing has arrived for 300 ms.
    if (sink_thread_.joinable()) {
        uint64_t last = sink_->counters().stanzas;
        double quiet_since = now_s();
        (void)run_until(
            [&] {
                if (sink_->counters().stanzas != last) {
                    last = sink_->counters().stanzas;
                    quiet_since = now_s();
                }
                return now_s() - quiet_since > 0.3;
            },
            5);
        stop_sink();
    }
    (void)run_until([this] { return links_.empty(); }, 10);
    uv_run(&loop_, UV_RUN_NOWAIT);
}

}  // namespace s2s::bench
