// polyproc/detail/pool_task.hpp — how a Pool task travels: the function, its arguments and its
// result as bytes, and the runner a worker calls to execute it. Internal to pool.hpp.
//
// A task body is the function's bytes (padded to 8) followed by its encoded arguments: a tuple for
// apply, a counted run of items for a map chunk. The worker finds the runner (a template
// instantiation for that function and argument type) by its offset from an anchor function of the
// program, not by its address, so the same message would stay valid in a re-executed program
// (spawn, issue #6). A function pointer the user passes is shipped the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyproc/detail/callable.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail {

// Executes one task: reads the body, appends the encoded result to `result`; throws what the task
// threw. Runs in a worker.
using TaskRunner = void (*)(std::span<const std::byte> body, std::vector<std::byte>& result);

// What a pool can send to a worker: is_sendable_function<F> (detail/callable.hpp), a function
// pointer or an object (a lambda) whose bytes are its whole state. Pointers and references
// captured by a lambda travel as addresses: in a worker they point into the worker's own copy of
// memory as it was when the worker started.
#define POLYPROC_CHECK_SENDABLE_FUNCTION(F)                                                                  \
    static_assert(::polyproc::detail::is_sendable_function<F>,                                               \
                  "polyproc::Pool: this function cannot be sent to a worker process. Use a plain function, " \
                  "a lambda without captures, or a lambda whose captures are trivially copyable (numbers, "  \
                  "plain structs); pass other state (std::string, std::vector, std::function, ...) as "      \
                  "arguments of the task instead.")

// F is trivially copyable, so copying its bytes into suitable storage makes a valid F (C++20
// implicit object creation).
template <class F>
class LoadedFunction {
public:
    // mp::ProcessError when a function pointer names nothing here (a library loaded after the
    // worker started): the task fails with it, the worker lives on.
    explicit LoadedFunction(const std::byte* in) {
        if constexpr (is_function_pointer<F>) {
            std::uint64_t offset;
            std::memcpy(&offset, in, 8);
            fn_ = reinterpret_cast<F>(code_address(offset));
        } else {
            std::memcpy(storage_, in, sizeof(F));
        }
    }
    F& get() noexcept {
        if constexpr (is_function_pointer<F>)
            return fn_;
        else
            return *std::launder(reinterpret_cast<F*>(storage_));
    }

private:
    std::conditional_t<is_function_pointer<F>, F, char> fn_{};
    alignas(F) std::byte storage_[is_function_pointer<F> ? 1 : sizeof(F)];
};

template <class F, class... A>
using apply_result_t = std::decay_t<decltype(call_with(std::declval<F&>(), std::declval<std::tuple<A...>&>()))>;

template <class F, class T, bool Star>
struct item_result {
    using type = std::decay_t<std::invoke_result_t<F&, T&>>;
};
template <class F, class T>
struct item_result<F, T, true> {
    using type = std::decay_t<decltype(call_with(std::declval<F&>(), std::declval<T&>()))>;
};
template <class F, class T, bool Star>
using item_result_t = typename item_result<F, T, Star>::type;

// Python's default chunk size for map over `total` items: ceil(total / (4 × workers)).
constexpr std::size_t default_chunksize(std::size_t total, std::size_t workers) {
    const std::size_t per = 4 * (workers > 0 ? workers : 1);
    return total / per + (total % per ? 1 : 0);
}

// What an apply's function and arguments, a task's result and a map's items must be (a local
// Pool's and a manager's PoolProxy's).
template <class F, class Args>
constexpr void check_apply_task() {
    POLYPROC_CHECK_SENDABLE_FUNCTION(F);
    static_assert(CanCallWith<F, Args>, "polyproc::Pool: the function cannot be called with these arguments");
    POLYPROC_CHECK_SERIALIZABLE(Args);
}
template <class R>
constexpr void check_task_result() {
    if constexpr (!std::is_void_v<R>) {
        POLYPROC_CHECK_SERIALIZABLE(R);
        static_assert(std::is_default_constructible_v<R>,
                      "polyproc::Pool: a task's result type must be default-constructible");
    }
}
template <bool Star, class F, class T>
constexpr void check_map_items() {
    POLYPROC_CHECK_SERIALIZABLE(T);
    static_assert(std::is_default_constructible_v<T>, "polyproc::Pool: map's item type must be default-constructible");
    if constexpr (Star)
        static_assert(CanCallWith<F, T>,
                      "polyproc::Pool::starmap: the function cannot be called with the items' tuple elements");
    else
        static_assert(std::is_invocable_v<F&, T&>, "polyproc::Pool::map: the function cannot be called with an item");
}

template <class R>
void append_encoded(const R& value, std::vector<std::byte>& out) {
    if constexpr (std::is_trivially_copyable_v<R>) {
        const auto* p = reinterpret_cast<const std::byte*>(&value);
        out.insert(out.end(), p, p + sizeof(R));
    } else {
        OutputArchive ar(out);
        ar(value);
    }
}

template <class F, class... A>
void run_apply(std::span<const std::byte> body, std::vector<std::byte>& result) {
    LoadedFunction<F> f(body.data());
    auto args = decode_payload<std::tuple<A...>>(body.subspan(function_bytes<F>));
    using R = apply_result_t<F, A...>;
    if constexpr (std::is_void_v<R>)
        call_with(f.get(), args);
    else
        append_encoded<R>(call_with(f.get(), args), result);
}

template <class F, class T, bool Star>
decltype(auto) call_item(F& f, T& item) {
    if constexpr (Star)
        return call_with(f, item);
    else
        return std::invoke(f, item);
}

// A chunk is a size tag and the items, each as the codec writes it; its result likewise.
template <class F, class T, bool Star>
void run_chunk(std::span<const std::byte> body, std::vector<std::byte>& result) {
    LoadedFunction<F> f(body.data());
    InputArchive in(body.subspan(function_bytes<F>));
    cereal::size_type n = 0;
    in(cereal::make_size_tag(n));
    if (n > in.remaining()) throw DecodeError("polyproc::Pool: corrupt task (item count larger than the task)");
    using R = item_result_t<F, T, Star>;
    if constexpr (std::is_void_v<R>) {
        for (cereal::size_type i = 0; i < n; ++i) {
            T item{};
            in(item);
            call_item<F, T, Star>(f.get(), item);
        }
    } else {
        if constexpr (std::is_trivially_copyable_v<R>) result.reserve(result.size() + 8 + n * sizeof(R));
        OutputArchive out(result);
        out(cereal::make_size_tag(static_cast<cereal::size_type>(n)));
        for (cereal::size_type i = 0; i < n; ++i) {
            T item{};
            in(item);
            const R r = call_item<F, T, Star>(f.get(), item);
            out(r);
        }
    }
}

// Writes the task body for function f and arguments `args...` (apply) into `out`, which holds
// exactly apply_body_size(args...) bytes.
template <class F, class... A>
std::size_t apply_body_size(const std::tuple<A...>& args) {
    return function_bytes<F> + encoded_size(args);
}
template <class F, class... A>
void write_apply_body(const F& f, const std::tuple<A...>& args, std::span<std::byte> out) {
    write_function(f, out.first<function_bytes<F>>());
    encode_into(args, out.subspan(function_bytes<F>));
}

// The items [first, first + n) of a chunk: counted, then written.
template <class It>
std::size_t chunk_body_size_after_function(It first, std::size_t n) {
    using T = std::iter_value_t<It>;
    if constexpr (std::is_arithmetic_v<T>) {  // the codec writes these as their bytes
        (void)first;
        return sizeof(cereal::size_type) + n * sizeof(T);
    } else {
        OutputArchive ar(OutputArchive::CountOnly{});
        ar(cereal::make_size_tag(static_cast<cereal::size_type>(n)));
        for (std::size_t i = 0; i < n; ++i, ++first) ar(static_cast<const T&>(*first));
        return ar.written();
    }
}
template <class F, class It>
void write_chunk_body(const F& f, It first, std::size_t n, std::span<std::byte> out) {
    using T = std::iter_value_t<It>;
    write_function(f, out.first<function_bytes<F>>());
    OutputArchive ar(out.subspan(function_bytes<F>));
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(n)));
    for (std::size_t i = 0; i < n; ++i, ++first) ar(static_cast<const T&>(*first));
}

// A chunk's results, decoded into `out` (which has room for them) by `store(i, value)`.
template <class R, class Store>
void read_chunk_result(std::span<const std::byte> payload, std::size_t expected, Store&& store) {
    InputArchive in(payload);
    cereal::size_type n = 0;
    in(cereal::make_size_tag(n));
    if (n != expected)
        throw DecodeError("polyproc::Pool: a chunk came back with " + std::to_string(n) + " results, expected " +
                          std::to_string(expected));
    for (std::size_t i = 0; i < n; ++i) {
        R value{};
        in(value);
        store(i, std::move(value));
    }
    if (in.remaining() != 0) throw DecodeError("polyproc::Pool: corrupt chunk result (bytes left over)");
}

}  // namespace polyproc::detail
