// The simulated batch (--max-batch): the completions running now, and the
// FIFO queue of those waiting for a place, shared by every thread.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>

#include "stats.hpp"

namespace mock {

class Batch {
 public:
  // One completion's place: waiting in the queue, then running.
  struct Ticket {
    // Called once, under the batch's lock, when a waiting ticket starts to
    // run; it must only post a wake-up to the ticket's own thread.
    std::function<void()> wake;
    std::uint64_t prompt_blocks = 0;  // counted in prompt_blocks() while running

   private:
    friend class Batch;
    enum class State { outside, waiting, running } state = State::outside;
    std::list<Ticket*>::iterator pos;
  };

  // max 0: no limit (every ticket runs at once, and is counted).
  Batch(std::uint64_t max, Stats& stats);

  // Runs `t` now (true), or puts it at the end of the queue (false): its
  // wake is called when its turn comes.
  bool enter(Ticket& t);
  // Whether `t` runs by now.
  bool running(const Ticket& t);
  // The prompt blocks of a running ticket (kv_cache_usage_perc).
  void set_prompt_blocks(Ticket& t, std::uint64_t blocks);
  // A waiting ticket leaves the queue; a running one gives its place to the
  // first in line. Nothing for a ticket outside.
  void leave(Ticket& t);

  std::uint64_t running_count();
  std::uint64_t waiting_count();
  std::uint64_t prompt_blocks();

 private:
  void admit_waiting();

  const std::uint64_t max_;
  Stats& stats_;
  std::mutex mu_;
  std::uint64_t running_ = 0;
  std::uint64_t prompt_blocks_ = 0;
  std::list<Ticket*> queue_;
};

// RAII: leaves the batch (the queue, or its running place) on destruction.
class BatchPlace {
 public:
  explicit BatchPlace(Batch& b) : batch_(b) {}
  BatchPlace(const BatchPlace&) = delete;
  BatchPlace& operator=(const BatchPlace&) = delete;
  ~BatchPlace() { batch_.leave(ticket); }

  Batch::Ticket ticket;

 private:
  Batch& batch_;
};

}  // namespace mock
