// polyproc/detail/manager_pool.hpp — the machinery behind managers.hpp's PoolProxy: a task for a
// manager's Pool made at the client exactly as a local Pool makes it (the task runner as a code
// reference, each chunk's body as bytes), and its results read back. The server runs the bodies
// without knowing their types (src/manager_pool.cpp). Internal; no process-safety concerns of
// its own (pure functions of their arguments).
#pragma once

#include <bit>
#include <cstddef>
#include <iterator>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/pool_task.hpp"
#include "polyproc/object.hpp"

namespace polyproc::detail::manager {

// Throws what a pool task's failure was, as the client knows its type (a local pool's get()
// throws the same): the failure a manager's AsyncResult or IMapIterator sent. src/manager_client.cpp.
[[noreturn]] void raise_pool_failure(const Object& failure);

inline Object code_object(TaskRunner runner) {
    return Object(std::bit_cast<std::int64_t>(code_offset(reinterpret_cast<std::uintptr_t>(runner))));
}
// The server runs a task only for a client that runs the same files (program_fingerprint()).
inline Object program_object() { return Object(std::bit_cast<std::int64_t>(program_fingerprint())); }
inline std::span<const std::byte> payload_of(const Object& bytes) {
    const std::string_view v = bytes.as_bytes().view();
    return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

// apply_async's (runner, (body,), (), program): f and its arguments.
template <class F, class... A>
Object apply_submission(const F& f, const std::tuple<A...>& args) {
    std::string body(apply_body_size<F>(args), '\0');
    write_apply_body(f, args, std::as_writable_bytes(std::span(body)));
    return Object::tuple({code_object(&run_apply<F, A...>), Object::tuple({Object(Bytes(std::move(body)))}),
                          Object::tuple(), program_object()});
}

// map's and imap's (runner, bodies, counts, program): the items in chunks of `chunksize`, f applied to
// each item (Star: to its elements, as starmap does).
template <class F, class T, bool Star, class Range>
Object chunk_submission(const F& f, const Range& items, std::size_t chunksize) {
    std::vector<Object> bodies, counts;
    const std::size_t total = std::ranges::size(items);
    auto first = std::ranges::begin(items);
    for (std::size_t start = 0; start < total; start += chunksize) {
        const std::size_t n = std::min(chunksize, total - start);
        std::string body(function_bytes<F> + chunk_body_size_after_function(first, n), '\0');
        write_chunk_body(f, first, n, std::as_writable_bytes(std::span(body)));
        bodies.emplace_back(Bytes(std::move(body)));
        counts.emplace_back(static_cast<std::int64_t>(n));
        std::ranges::advance(first, static_cast<std::ranges::range_difference_t<Range>>(n));
    }
    return Object::tuple({code_object(&run_chunk<F, T, Star>), Object::tuple(std::move(bodies)),
                          Object::tuple(std::move(counts)), program_object()});
}

// A chunk's results appended to `out` (a vector, a deque): ("ok"/"error", count, payload-or-failure) as an
// IMapIterator's next() sends it, or (count, payload) from an AsyncResult's outcome.
template <class R, class Out>
void read_chunk(const Object& count, const Object& payload, Out& out) {
    read_chunk_result<R>(payload_of(payload), static_cast<std::size_t>(count.as_int()),
                         [&](std::size_t, R&& v) { out.push_back(std::move(v)); });
}

// What an AsyncResult's get() sent, as T: ("ok", ((count, payload), ...)) with count 0 for
// apply_async's one value; ("error", failure) is thrown.
template <class T>
T read_outcome(const Object& outcome) {
    if (outcome[0].as_str() == "error") raise_pool_failure(outcome[1]);
    const Object& parts = outcome[1];
    if constexpr (std::is_void_v<T>) {
        (void)parts;
    } else if constexpr (is_specialization_of<T, std::vector>) {
        if (parts.size() == 1 && parts[0][0].as_int() == 0) return decode_payload<T>(payload_of(parts[0][1]));
        T all;
        for (const Object& part : parts) read_chunk<typename T::value_type>(part[0], part[1], all);
        return all;
    } else {
        return decode_payload<T>(payload_of(parts[0][1]));
    }
}

}  // namespace polyproc::detail::manager
