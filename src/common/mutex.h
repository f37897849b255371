// Mutex: std::mutex with Clang thread-safety annotations. Used instead of absl::Mutex because
// Debian's Abseil is not built for ThreadSanitizer, so tsan cannot see absl::Mutex's
// happens-before edges and would report every guarded field; std::mutex goes through pthread,
// which tsan intercepts.
#ifndef EPP_COMMON_MUTEX_H_
#define EPP_COMMON_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace epp {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace epp

#endif  // EPP_COMMON_MUTEX_H_
