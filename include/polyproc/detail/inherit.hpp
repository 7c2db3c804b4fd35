// polyproc/detail/inherit.hpp — how a spawn or forkserver child receives its target, its
// arguments and the handles among them (Python: the pickles a spawned child reads, with
// reduction.DupFd and the SemLock/arena rebuild functions).
//
// The parent writes everything into a ChildWriter: values through the codec, descriptors and
// shared-memory regions as indices into a list of descriptors that travel beside the bytes
// (SCM_RIGHTS). The child reads them back in the same order from a ChildReader. A handle type
// (Queue, Lock, Value, Connection...) takes part by providing
//     void reduce_for_child(detail::ChildWriter&) const;   and   explicit T(detail::ChildReader&);
// Internal: users never see these types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyproc/detail/callable.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/shared_region.hpp"
#include "polyproc/detail/type_name.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail {

class ChildWriter {
public:
    template <class T>
    void value(const T& v) {
        const std::size_t size = encoded_size(v);
        raw(static_cast<std::uint64_t>(size));
        const std::size_t at = bytes_.size();
        bytes_.resize(at + size);
        encode_into(v, std::span<std::byte>(bytes_.data() + at, size));
    }
    // A descriptor the child gets a duplicate of. It must stay open until the child is started.
    void fd(int fd) {
        raw(static_cast<std::uint32_t>(fds_.size()));
        fds_.push_back(fd);
    }
    void region(const SharedRegion& r) {
        fd(r.fd());
        raw(static_cast<std::uint64_t>(r.offset()));
        raw(static_cast<std::uint64_t>(r.size()));
    }
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void raw(const T& v) {
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        bytes_.insert(bytes_.end(), p, p + sizeof(T));
    }
    // Overwrites what raw() wrote at `at` (a value known only after what follows it is written).
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void raw_at(std::size_t at, const T& v) {
        if (at + sizeof(T) > bytes_.size()) throw std::out_of_range("ChildWriter::raw_at");
        std::memcpy(bytes_.data() + at, &v, sizeof(T));
    }
    const std::vector<std::byte>& bytes() const noexcept { return bytes_; }
    const std::vector<int>& fds() const noexcept { return fds_; }

private:
    std::vector<std::byte> bytes_;
    std::vector<int> fds_;
};

class ChildReader {
public:
    ChildReader(std::span<const std::byte> bytes, std::vector<FileDescriptor> fds)
        : bytes_(bytes), fds_(std::move(fds)) {}

    template <class T>
    T value() {
        const auto size = raw<std::uint64_t>();
        return decode_payload<T>(take(static_cast<std::size_t>(size)));
    }
    // The descriptor itself; each can be taken once.
    FileDescriptor fd();
    std::shared_ptr<SharedRegion> region();
    template <class T>
        requires std::is_trivially_copyable_v<T>
    T raw() {
        T v;
        auto b = take(sizeof(T));
        std::memcpy(&v, b.data(), sizeof(T));
        return v;
    }
    std::size_t remaining() const noexcept { return bytes_.size() - at_; }

private:
    std::span<const std::byte> take(std::size_t n);
    std::span<const std::byte> bytes_;
    std::size_t at_ = 0;
    std::vector<FileDescriptor> fds_;
};

// The T at the start of a received region; mp::DecodeError when the region is too small for one.
template <class T>
T* region_object(const SharedRegion& region) {
    if (region.size() < sizeof(T) || reinterpret_cast<std::uintptr_t>(region.data()) % alignof(T) != 0)
        throw DecodeError("polyproc: a received shared region of " + std::to_string(region.size()) +
                          " bytes at offset " + std::to_string(region.offset()) + " cannot hold a " +
                          std::string(type_name<T>()));
    return static_cast<T*>(region.data());
}

// A handle whose shared state and descriptors can travel to a spawned child.
template <class T>
concept InheritableHandle = std::is_class_v<T> && requires(const T& t, ChildWriter& w, ChildReader& r) {
    t.reduce_for_child(w);
    T(r);  // a class: a constructor call, never a cast
};

// What can be an argument of a spawn or forkserver child's target.
template <class T>
inline constexpr bool is_inheritable = Serializable<T> || InheritableHandle<T>;

template <class T>
void write_argument(ChildWriter& w, const T& v) {
    if constexpr (InheritableHandle<T>)
        v.reduce_for_child(w);
    else
        w.value(v);
}

template <class T>
T read_argument(ChildReader& r) {
    if constexpr (InheritableHandle<T>)
        return T(r);
    else
        return r.value<T>();
}

// A function a fresh child can find again: is_sendable_function<F, Captures::none> (a function
// pointer, or a lambda without captures: its type alone says what to call). Its bytes as
// write_function makes them, but nothing for an empty F, which read_function default-constructs.
template <class F>
void write_function(ChildWriter& w, const F& f) {
    static_assert(is_sendable_function<F, Captures::none>);
    if constexpr (!std::is_empty_v<F>) {
        std::byte bytes[function_bytes<F>];
        write_function(f, std::span<std::byte, function_bytes<F>>(bytes));
        w.raw(bytes);
    }
}

template <class F>
F read_function(ChildReader& r) {
    if constexpr (std::is_pointer_v<F>)
        return reinterpret_cast<F>(code_address(r.raw<CodeRef>()));
    else
        return F{};
}

// What runs in the child: reads the function and the arguments, calls it.
using ChildEntry = void (*)(ChildReader&);

}  // namespace polyproc::detail
