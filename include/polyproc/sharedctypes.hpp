// polyproc/sharedctypes.hpp — Value, Array, RawValue, RawArray (Python's multiprocessing.sharedctypes).
//
// Trivially copyable values in anonymous shared memory: a write by any process of the tree is seen
// by all. Handles are cheap copies of the same shared object (capture them, or pass them as
// arguments). The memory is freed by the kernel when the last process using it is gone.
//
// Value<T> and Array<T> carry a lock (an RLock, as in Python; get_lock()); value() / set_value()
// take it for one access. For a read-modify-write hold the lock yourself:
//
//   mp::Value<int> counter(0);
//   { std::lock_guard guard(counter.get_lock()); counter.set_value(counter.value() + 1); }
//
// RawValue<T> and RawArray<T> have no lock. Element access through operator[] and span() is
// direct, like Python's get_obj(): hold get_lock() when other processes may write concurrently.
//
// Process-safety: the shared memory is; a handle object itself may be used from several threads as
// long as the lock is used for concurrent writes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "polyproc/detail/shared_region.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/synchronize.hpp"

namespace polyproc {

#define POLYPROC_CHECK_SHAREABLE(T)                                                                       \
    static_assert(std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>,                               \
                  "polyproc: shared values and arrays hold trivially copyable, pointer-free types only "  \
                  "(int, double, POD structs, std::array...). For strings use Array<char>; for anything " \
                  "else send it through a Pipe or Queue.")

// A T in shared memory, without a lock. Python: RawValue(typecode, value).
template <class T>
class RawValue {
    POLYPROC_CHECK_SHAREABLE(T);

public:
    explicit RawValue(const T& initial = T{}) {
        auto [region, obj] = detail::make_shared_object<T>(initial);
        region_ = std::move(region);
        obj_ = obj;
    }
    T value() const { return *obj_; }
    void set_value(const T& v) { *obj_ = v; }
    T& get_obj() const noexcept { return *obj_; }  // the shared object itself

    void reduce_for_child(detail::ChildWriter& w) const { w.region(*region_); }
    explicit RawValue(detail::ChildReader& r) : region_(r.region()), obj_(detail::region_object<T>(*region_)) {}

private:
    std::shared_ptr<detail::SharedRegion> region_;
    T* obj_;
};

// A T in shared memory with an RLock. Python: Value(typecode, value, lock=True).
template <class T>
class Value {
    POLYPROC_CHECK_SHAREABLE(T);

public:
    explicit Value(const T& initial = T{}, RLock lock = RLock()) : raw_(initial), lock_(std::move(lock)) {}
    T value() const {
        if (lock_.is_mine()) return raw_.value();  // under `with v.get_lock():` already
        std::lock_guard guard(lock_);
        return raw_.value();
    }
    void set_value(const T& v) {
        if (lock_.is_mine()) return raw_.set_value(v);
        std::lock_guard guard(lock_);
        raw_.set_value(v);
    }
    RLock& get_lock() const noexcept { return lock_; }
    T& get_obj() const noexcept { return raw_.get_obj(); }
    // Python's `with v:` is `std::lock_guard guard(v);`.
    void lock() { lock_.lock(); }
    void unlock() { lock_.unlock(); }

    void reduce_for_child(detail::ChildWriter& w) const {
        raw_.reduce_for_child(w);
        lock_.reduce_for_child(w);
    }
    explicit Value(detail::ChildReader& r) : raw_(r), lock_(r) {}

private:
    RawValue<T> raw_;
    mutable RLock lock_;
};

// A fixed-size array of T in shared memory, zero-filled or initialised, without a lock.
// Python: RawArray(typecode, size_or_initializer).
template <class T>
class RawArray {
    POLYPROC_CHECK_SHAREABLE(T);

public:
    explicit RawArray(std::size_t size) : size_(size) {
        region_ = std::make_shared<detail::SharedRegion>(std::max<std::size_t>(1, size * sizeof(T)));
        data_ = static_cast<T*>(region_->data());  // anonymous mappings start zero-filled
    }
    RawArray(std::initializer_list<T> init) : RawArray(std::span<const T>(init.begin(), init.size())) {}
    explicit RawArray(std::span<const T> init) : RawArray(init.size()) {
        std::memcpy(static_cast<void*>(data_), init.data(), init.size_bytes());
    }
    explicit RawArray(const std::vector<T>& init) : RawArray(std::span<const T>(init)) {}

    std::size_t size() const noexcept { return size_; }
    T& operator[](std::size_t i) const noexcept { return data_[i]; }
    // Python's IndexError("invalid index") as std::out_of_range.
    T& at(std::size_t i) const {
        if (i >= size_) throw std::out_of_range("invalid index");
        return data_[i];
    }
    std::span<T> span() const noexcept { return {data_, size_}; }
    T* begin() const noexcept { return data_; }
    T* end() const noexcept { return data_ + size_; }
    std::vector<T> to_vector() const { return {data_, data_ + size_}; }  // Python's arr[:]
    // Python's arr[:] = seq.
    void assign(std::span<const T> values) {
        if (values.size() != size_) throw ValueError("Can only assign sequence of same size");
        std::memcpy(static_cast<void*>(data_), values.data(), values.size_bytes());
    }

    // For Array<char> / RawArray<char> used as a string buffer (Python's typecode 'c'):
    // value() is the text up to the first NUL, set_value() writes it NUL-terminated when room.
    std::string value() const
        requires std::is_same_v<T, char>
    {
        return std::string(data_, strnlen(data_, size_));
    }
    void set_value(std::string_view s)
        requires std::is_same_v<T, char>
    {
        if (s.size() > size_) throw ValueError("byte string too long");
        std::memcpy(data_, s.data(), s.size());
        if (s.size() < size_) data_[s.size()] = '\0';
    }
    std::string raw() const
        requires std::is_same_v<T, char>
    {
        return std::string(data_, size_);
    }

    void reduce_for_child(detail::ChildWriter& w) const {
        w.raw(static_cast<std::uint64_t>(size_));
        w.region(*region_);
    }
    explicit RawArray(detail::ChildReader& r) : size_(r.raw<std::uint64_t>()), region_(r.region()) {
        if (region_->size() / sizeof(T) < size_ && size_ != 0)
            throw DecodeError("polyproc: a received shared array is smaller than its length");
        data_ = static_cast<T*>(region_->data());
    }

private:
    std::size_t size_;
    std::shared_ptr<detail::SharedRegion> region_;
    T* data_;
};

// RawArray plus an RLock. Python: Array(typecode, size_or_initializer, lock=True).
template <class T>
class Array : public RawArray<T> {
public:
    explicit Array(std::size_t size, RLock lock = RLock()) : RawArray<T>(size), lock_(std::move(lock)) {}
    Array(std::initializer_list<T> init) : RawArray<T>(init) {}
    explicit Array(std::span<const T> init, RLock lock = RLock()) : RawArray<T>(init), lock_(std::move(lock)) {}
    explicit Array(const std::vector<T>& init, RLock lock = RLock()) : RawArray<T>(init), lock_(std::move(lock)) {}
    RLock& get_lock() const noexcept { return lock_; }
    void lock() { lock_.lock(); }
    void unlock() { lock_.unlock(); }

    void reduce_for_child(detail::ChildWriter& w) const {
        RawArray<T>::reduce_for_child(w);
        lock_.reduce_for_child(w);
    }
    explicit Array(detail::ChildReader& r) : RawArray<T>(r), lock_(r) {}

private:
    mutable RLock lock_;
};

}  // namespace polyproc
