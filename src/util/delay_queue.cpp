#include "deepseek_gateway/util/delay_queue.hpp"

namespace dsgw::util {

void DelayQueue::push(Entry& e, Clock::time_point now) {
    if (e.queue_) remove(e);
    e.queue_ = this;
    e.pushed_ = now;
    e.prev_ = tail_;
    e.next_ = nullptr;
    (tail_ ? tail_->next_ : head_) = &e;
    tail_ = &e;
    ++size_;
    start_ticking();
}

void DelayQueue::remove(Entry& e) {
    if (e.queue_ != this) return;
    (e.prev_ ? e.prev_->next_ : head_) = e.next_;
    (e.next_ ? e.next_->prev_ : tail_) = e.prev_;
    e.prev_ = e.next_ = nullptr;
    e.queue_ = nullptr;
    --size_;
}

void DelayQueue::clear() {
    while (head_) remove(*head_);
}

// A tick every `delay` while entries wait: one timer wake-up per interval
// whatever the number of requests, instead of one timer per entry.
void DelayQueue::start_ticking() {
    if (ticking_) return;
    ticking_ = true;
    timer_.expires_after(delay_);
    timer_.async_wait([this](boost::system::error_code ec) {
        ticking_ = false;
        if (!ec) tick();
    });
}

void DelayQueue::tick() {
    const auto now = Clock::now();
    // Entries waited at least `delay`: due. on_due() may push or remove
    // entries (its own or others), so the head is read again each time.
    while (head_ && now - head_->pushed_ >= delay_) {
        Entry& e = *head_;
        remove(e);
        e.on_due();
    }
    if (head_) start_ticking();
}

}  // namespace dsgw::util
