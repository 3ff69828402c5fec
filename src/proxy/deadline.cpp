// proxy::Deadline: one timer per connection, moved only when a deadline comes sooner.

#include "proxy/deadline.hpp"

namespace dsgw::proxy {

void Deadline::arm(Phase p, Clock::duration d) {
    phase_ = p;
    timed_out_ = Phase::none;
    deadline_ = Clock::now() + d;
    // A pending wait that ends sooner re-checks the deadline when it fires;
    // only an earlier deadline needs the timer moved.
    if (waiting_ && timer_.expiry() <= deadline_) return;
    timer_.expires_at(deadline_);
    start_wait();
}

void Deadline::start_wait() {
    waiting_ = true;
    ++generation_;
    timer_.async_wait(
        [this, keep = owner_.hold(), gen = generation_](const boost::system::error_code& ec) {
            if (gen != generation_) return;  // superseded by a re-arm
            waiting_ = false;
            if (ec) return;
            on_timer();
        });
}

void Deadline::on_timer() {
    if (deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) {
        timer_.expires_at(deadline_);
        start_wait();
        return;
    }
    timed_out_ = phase_;
    deadline_ = Clock::time_point::max();
    owner_.on_deadline(timed_out_);
}

}  // namespace dsgw::proxy
