#include "proxy/xmpp/stream_machine.h"

namespace s2s {

StreamMachineBase::StreamMachineBase(ProxyContext& ctx) : Connection(ctx.next_conn_id()), ctx_(ctx) {
    ctx_.connections.insert(this);
}

StreamMachineBase::~StreamMachineBase() { ctx_.connections.erase(this); }

Stream& StreamMachineBase::open_stream(const xml::StreamOptions& parse, Side side, uint64_t max_rate) {
    stream_ = Stream::create(ctx_.loop, *this, parse, id(), side);
    if (max_rate > 0) stream_->set_rate_limit(max_rate);
    return *stream_;
}

bool StreamMachineBase::accept_stream(uv_stream_t* listener, const xml::StreamOptions& parse, Side side,
                                      uint64_t max_rate) {
    open_stream(parse, side, max_rate);
    if (uv_accept(listener, stream_->handle()) == 0) return true;
    stream_->abort("accept failed");
    return false;
}

}  // namespace s2s
