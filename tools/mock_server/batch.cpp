#include "batch.hpp"

namespace mock {

Batch::Batch(std::uint64_t max, Stats& stats) : max_(max), stats_(stats) {}

bool Batch::enter(Ticket& t) {
  std::lock_guard lock(mu_);
  if (t.state != Ticket::State::outside) return t.state == Ticket::State::running;
  if ((max_ == 0 || running_ < max_) && queue_.empty()) {
    t.state = Ticket::State::running;
    ++running_;
    return true;
  }
  t.state = Ticket::State::waiting;
  t.pos = queue_.insert(queue_.end(), &t);
  stats_.requests_queued.fetch_add(1, std::memory_order_relaxed);
  stats_.note_queue_length(queue_.size());
  return false;
}

bool Batch::running(const Ticket& t) {
  std::lock_guard lock(mu_);
  return t.state == Ticket::State::running;
}

void Batch::set_prompt_blocks(Ticket& t, std::uint64_t blocks) {
  std::lock_guard lock(mu_);
  if (t.state != Ticket::State::running) return;
  prompt_blocks_ -= t.prompt_blocks;
  t.prompt_blocks = blocks;
  prompt_blocks_ += blocks;
}

void Batch::leave(Ticket& t) {
  std::lock_guard lock(mu_);
  switch (t.state) {
    case Ticket::State::outside: return;
    case Ticket::State::waiting: queue_.erase(t.pos); break;
    case Ticket::State::running:
      --running_;
      prompt_blocks_ -= t.prompt_blocks;
      t.prompt_blocks = 0;
      admit_waiting();
      break;
  }
  t.state = Ticket::State::outside;
}

// Under mu_: first come, first served.
void Batch::admit_waiting() {
  while (!queue_.empty() && (max_ == 0 || running_ < max_)) {
    Ticket* next = queue_.front();
    queue_.pop_front();
    next->state = Ticket::State::running;
    ++running_;
    if (next->wake) next->wake();
  }
}

std::uint64_t Batch::running_count() {
  std::lock_guard lock(mu_);
  return running_;
}

std::uint64_t Batch::waiting_count() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::uint64_t Batch::prompt_blocks() {
  std::lock_guard lock(mu_);
  return prompt_blocks_;
}

}  // namespace mock
