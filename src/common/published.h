// Published<T>: a cell holding immutable data that readers take a reference to and keep using
// while writers replace the whole value (style rule 6: readers use snapshots).
//
// The cell is guarded by a mutex held only for the pointer copy or swap (a reference-count
// increment), never while a value is built or destroyed. libstdc++'s
// std::atomic<std::shared_ptr> takes an internal spin lock for the same two operations, but in
// a way ThreadSanitizer cannot see; a plain mutex costs the same uncontended and keeps the tsan
// preset meaningful.
#ifndef EPP_COMMON_PUBLISHED_H_
#define EPP_COMMON_PUBLISHED_H_

#include <memory>
#include <mutex>

namespace epp {

template <typename T>
class Published {
 public:
  Published() : value_(std::make_shared<const T>()) {}
  explicit Published(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  // Thread-safe; never returns null.
  std::shared_ptr<const T> Load() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }

  // Thread-safe; `value` must not be null. The old value is released outside the lock.
  void Store(std::shared_ptr<const T> value) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_.swap(value);
    }
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
};

}  // namespace epp

#endif  // EPP_COMMON_PUBLISHED_H_
