// Test helper: wait for an asynchronous event without asserting how long it takes.
#ifndef EPP_TESTING_WAIT_H_
#define EPP_TESTING_WAIT_H_

#include <chrono>
#include <thread>

namespace epp::testing {

// Polls `pred` up to 10 s in 20 ms steps; returns its last value. A bound on waiting, never a
// timing assertion.
template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace epp::testing

#endif  // EPP_TESTING_WAIT_H_
