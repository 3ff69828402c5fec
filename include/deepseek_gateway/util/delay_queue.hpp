#pragma once
// Defers work that most requests never need. An entry pushed now is "due"
// between `delay` and 2 x `delay` later, unless it is removed first; one timer
// per queue serves every entry, ticking only while the queue is not empty.
//
// The client watch uses it: a short request is answered before its watch is
// due, so it never pays for one (Asio's async_wait costs an epoll_ctl each
// time); a long generation gets its watch within 2 x delay.
//
// Single-threaded (a worker's loop); entries are intrusive, so pushing and
// removing allocate nothing, and an entry unlinks itself when destroyed.

#include "deepseek_gateway/util/clock.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>

namespace dsgw::util {

class DelayQueue {
public:
    using Clock = util::Clock;

    class Entry {
    public:
        Entry() = default;
        Entry(const Entry&) = delete;
        Entry& operator=(const Entry&) = delete;
        bool queued() const { return queue_ != nullptr; }

    protected:
        ~Entry() {
            if (queue_) queue_->remove(*this);
        }

    private:
        friend class DelayQueue;
        // Runs on the loop's thread, after the entry left the queue.
        virtual void on_due() = 0;
        DelayQueue* queue_ = nullptr;
        Entry* prev_ = nullptr;
        Entry* next_ = nullptr;
        Clock::time_point pushed_;
    };

    DelayQueue(boost::asio::io_context& io, Clock::duration delay) : timer_(io), delay_(delay) {}
    ~DelayQueue() { clear(); }
    DelayQueue(const DelayQueue&) = delete;
    DelayQueue& operator=(const DelayQueue&) = delete;

    // Appends `e` (pushed again: moved to the back with a new start time).
    void push(Entry& e, Clock::time_point now = Clock::now());
    void remove(Entry& e);
    // Unlinks every entry without running it. A pending tick finds nothing.
    void clear();
    std::size_t size() const { return size_; }
    Clock::duration delay() const { return delay_; }

private:
    void start_ticking();
    void tick();

    Timer timer_;
    Clock::duration delay_;
    Entry* head_ = nullptr;  // oldest first: push order is time order
    Entry* tail_ = nullptr;
    std::size_t size_ = 0;
    bool ticking_ = false;
};

}  // namespace dsgw::util
