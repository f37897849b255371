// Published<T>: a single-writer-friendly cell holding immutable data that readers load
// lock-free. Readers take a shared_ptr<const T> once and keep using it while writers replace
// the whole value (style rule 6: readers use snapshots).
#ifndef EPP_COMMON_PUBLISHED_H_
#define EPP_COMMON_PUBLISHED_H_

#include <atomic>
#include <memory>

namespace epp {

template <typename T>
class Published {
 public:
  Published() : value_(std::make_shared<const T>()) {}
  explicit Published(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  // Thread-safe; never returns null.
  std::shared_ptr<const T> Load() const { return value_.load(std::memory_order_acquire); }

  // Thread-safe; `value` must not be null.
  void Store(std::shared_ptr<const T> value) {
    value_.store(std::move(value), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const T>> value_;
};

}  // namespace epp

#endif  // EPP_COMMON_PUBLISHED_H_
