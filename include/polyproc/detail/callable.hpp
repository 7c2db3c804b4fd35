// polyproc/detail/callable.hpp — one vocabulary for calling a function with stored arguments and
// for sending functions and arguments to another process of this program, shared by Process
// (process.hpp, detail/inherit.hpp) and Pool (detail/pool_task.hpp):
//   * call_with(f, args): Python's f(*args), lvalues when f takes them, else f and args moved in;
//   * sent_as_t<T>: the type an argument T travels as (a C string as std::string);
//   * is_sendable_function<F>: whether another process can call F, and how (Captures);
//   * function_bytes<F> and write_function: the bytes that stand for a function.
// Internal. Header-only; no process-safety concerns (pure types and functions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "polyproc/detail/code_ref.hpp"

namespace polyproc::detail {

// ---- calling ------------------------------------------------------------------------------------

template <class F, class Tuple, std::size_t... I>
constexpr bool callable_with_elements(std::index_sequence<I...>) {
    return std::is_invocable_v<F, decltype(std::get<I>(std::declval<Tuple>()))...>;
}
// F can be called with the elements of Tuple (a tuple, pair or array), each with Tuple's value
// category: CallableWith<F&, T&> is f(lvalues...), CallableWith<F, T> is std::move(f)(rvalues...).
// A plain false when it cannot (std::apply is unconstrained: testing it is a hard error).
template <class F, class Tuple>
concept CallableWith = requires {
    std::tuple_size<std::remove_cvref_t<Tuple>>::value;
} && callable_with_elements<F, Tuple>(std::make_index_sequence<std::tuple_size_v<std::remove_cvref_t<Tuple>>>{});

// call_with(f, args) compiles for an F and a Tuple stored by value (a Process's target and
// arguments, a Pool task's function and its arguments or a starmap item).
template <class F, class Tuple>
concept CanCallWith = CallableWith<F&, Tuple&> || CallableWith<F, Tuple>;

// f(*args), as Python calls a target: with lvalue arguments when f takes them, else with f and
// the arguments moved in (a move-only Connection taken by value, a one-shot &&-qualified callable).
template <class F, class Tuple>
decltype(auto) call_with(F& f, Tuple& args) {
    if constexpr (CallableWith<F&, Tuple&>)
        return std::apply(f, args);
    else
        return std::apply(std::move(f), std::move(args));
}

// ---- arguments ----------------------------------------------------------------------------------

template <class T>
inline constexpr bool is_c_string =
    std::is_same_v<std::decay_t<T>, const char*> || std::is_same_v<std::decay_t<T>, char*>;

// What std::ref(x) sends. unwrap: x itself (a Process: the child gets its own x, a duplicate
// handle, as Python's pickling gives). refuse: the reference_wrapper stays, and the codec refuses
// it at compile time (a Pool task: the worker would silently change a copy).
enum class StdRef : bool { refuse, unwrap };

// The type an argument T is sent to another process as: by value (decayed), a C string as a
// std::string (Python passes str; the pointer means nothing there).
template <class T, StdRef R = StdRef::refuse>
using sent_as_t = std::conditional_t<
    is_c_string<T>, std::string,
    std::conditional_t<R == StdRef::unwrap, std::remove_cvref_t<std::unwrap_ref_decay_t<T>>, std::decay_t<T>>>;

// ---- functions ----------------------------------------------------------------------------------

template <class F>
inline constexpr bool is_function_pointer = std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

// What another process of this program may call. Captures::trivially_copyable (a Pool task): a
// function pointer, or an object (a lambda) whose bytes are its whole state; captured pointers
// and references travel as addresses, valid in fork workers only. Captures::none (a spawn or
// forkserver target, a pool initializer): only a function pointer or an object whose type alone
// is its state (a lambda without captures), which the child default-constructs.
enum class Captures : bool { trivially_copyable, none };
template <class F, Captures C = Captures::trivially_copyable>
inline constexpr bool is_sendable_function =
    is_function_pointer<F> ||
    (std::is_class_v<F> && std::is_trivially_copyable_v<F> &&
     (C == Captures::trivially_copyable || (std::is_empty_v<F> && std::is_default_constructible_v<F>)));

// The bytes that stand for F: a function pointer's CodeRef, or the object's bytes, padded to 8.
template <class F>
inline constexpr std::size_t function_bytes = is_function_pointer<F> ? sizeof(CodeRef) : (sizeof(F) + 7) / 8 * 8;

// Writes those bytes into `out`, zero-padded. A function pointer that no loaded file holds:
// mp::ValueError (code_offset).
template <class F>
void write_function(const F& f, std::span<std::byte, function_bytes<F>> out) {
    std::memset(out.data(), 0, out.size());
    if constexpr (is_function_pointer<F>) {
        const CodeRef ref = code_offset(reinterpret_cast<std::uintptr_t>(f));
        std::memcpy(out.data(), &ref, sizeof ref);
    } else {
        std::memcpy(out.data(), &f, sizeof(F));
    }
}

}  // namespace polyproc::detail
