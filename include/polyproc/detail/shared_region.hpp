// polyproc/detail/shared_region.hpp — shared memory for process-shared state, in memfd files.
//
// A SharedRegion is a piece of a MAP_SHARED mapping of a memfd (an anonymous file): fork children
// inherit it at the same address, and its descriptor can travel to a spawned or forkserver child
// (SCM_RIGHTS), which maps it at an address of its own. The kernel frees the memory when the last
// process that maps it or holds its descriptor is gone, even if every one of them is SIGKILLed,
// so locks, values and arrays can never leak.
//
// Small regions (up to 16 KiB: a Lock, a Condition, a Value) are carved from shared 256 KiB arena files, so that a program
// with thousands of locks does not hold thousands of descriptors; the arena's bump pointer lives
// in the arena itself, so a fork child allocating from an inherited arena never collides with its
// parent. Large regions get a file of their own. The objects placed in a region are never
// destroyed (other processes may still use them); they must be trivially destructible and hold
// no pointers (each process maps the memory at a different address).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "polyproc/detail/fd.hpp"

namespace polyproc::detail {

struct SharedSegment;  // one memfd and this process's mapping of it (src/shared_region.cpp)

class SharedRegion {
public:
    // on_touch: MAP_NORESERVE, address space that costs memory only as pages are touched (a
    // queue's ring reserves gigabytes this way); always a file of its own.
    enum class Commit { now, on_touch };
    explicit SharedRegion(std::size_t size, Commit commit = Commit::now);
    // The region at [offset, offset + size) of a memfd received from another process. Mapping the
    // same file twice in one process shares one mapping. mp::ValueError when the range is not
    // inside the file.
    static SharedRegion attach(FileDescriptor memfd, std::size_t offset, std::size_t size);

    SharedRegion(SharedRegion&&) noexcept = default;
    SharedRegion& operator=(SharedRegion&&) noexcept = default;
    SharedRegion(const SharedRegion&) = delete;
    SharedRegion& operator=(const SharedRegion&) = delete;
    ~SharedRegion();

    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    // The memfd holding the region and where in it; for sending the region to a child.
    int fd() const noexcept;
    std::size_t offset() const noexcept { return offset_; }

private:
    SharedRegion() = default;
    std::shared_ptr<SharedSegment> segment_;
    void* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t offset_ = 0;
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
