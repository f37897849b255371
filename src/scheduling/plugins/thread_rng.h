// The random generator scheduling plugins draw from (random tie-breaks, random pickers,
// exploration): one per thread, seeded from the OS; SeedThreadRng makes a thread's draws
// reproducible (the cluster simulator seeds it per run so comparisons are deterministic).
#ifndef EPP_SCHEDULING_PLUGINS_THREAD_RNG_H_
#define EPP_SCHEDULING_PLUGINS_THREAD_RNG_H_

#include <cstdint>
#include <random>

namespace epp::scheduling {

inline std::mt19937_64& ThreadRng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

inline void SeedThreadRng(uint64_t seed) { ThreadRng().seed(seed); }

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_THREAD_RNG_H_
