// polyproc/detail/shared_region.hpp — anonymous shared memory for process-shared state.
//
// A SharedRegion is a MAP_SHARED | MAP_ANONYMOUS mapping: fork children inherit it at the same
// address, and the kernel frees it when the last process that maps it is gone, even if every one
// of them is SIGKILLed. So locks, values and arrays can never leak. The objects placed in it are
// never destroyed (other processes may still use them); they must be trivially destructible.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace polyproc::detail {

class SharedRegion {
public:
    // on_touch: MAP_NORESERVE, address space that costs memory only as pages are touched (a
    // queue's ring reserves gigabytes this way).
    enum class Commit { now, on_touch };
    explicit SharedRegion(std::size_t size, Commit commit = Commit::now);
    ~SharedRegion();
    SharedRegion(const SharedRegion&) = delete;
    SharedRegion& operator=(const SharedRegion&) = delete;
    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }

private:
    void* data_;
    std::size_t size_;
};

// Constructs a T in a fresh shared region; the shared_ptr keeps this process's mapping alive.
template <class T, class... Args>
std::pair<std::shared_ptr<SharedRegion>, T*> make_shared_object(Args&&... args) {
    static_assert(std::is_trivially_destructible_v<T>, "process-shared state is never destroyed");
    auto region = std::make_shared<SharedRegion>(sizeof(T));
    T* obj = ::new (region->data()) T(std::forward<Args>(args)...);
    return {std::move(region), obj};
}

}  // namespace polyproc::detail
