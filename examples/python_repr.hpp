// python_repr.hpp — Python's repr() (and str()) for the values the ported examples print, so that
// each example prints exactly what its Python original prints: py::repr(42) is 42, py::repr(true)
// True, py::repr(3.0) 3.0, py::repr(std::string("it's")) "it's", py::repr(std::vector{1, 4, 9})
// [1, 4, 9], std::monostate and std::nullopt None, a pair or a tuple (1, 2), a variant the repr of
// the value it holds. py::str() is what print() shows: the text itself for a string, repr()
// otherwise. py::dict_repr("url", url, "text", text) is a dict's repr, its items in order.
//
// An example's own type gets a repr() of its own, a function `std::string repr(const T&)` declared
// next to the type: py::repr of a vector, optional, ... of that type finds it (by argument-dependent
// lookup). Floats and strings are printed by mp::Object's repr, so they are exactly Python's.
#pragma once

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <polyproc/object.hpp>

namespace py {

// The overloads for containers are declared first, so that each can use all the others for its
// elements (a vector of optionals of pairs, ...).
inline std::string repr(bool b);
template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
std::string repr(T n);
inline std::string repr(double x);
inline std::string repr(std::string_view s);
inline std::string repr(const std::string& s);
inline std::string repr(const char* s);
inline std::string repr(std::monostate);
inline std::string repr(std::nullopt_t);
template <class T>
std::string repr(const std::optional<T>& x);
template <class... Ts>
std::string repr(const std::variant<Ts...>& x);
template <class A, class B>
std::string repr(const std::pair<A, B>& t);
template <class... Ts>
std::string repr(const std::tuple<Ts...>& t);
template <class T>
std::string repr(const std::vector<T>& list);

// True / False
inline std::string repr(bool b) { return b ? "True" : "False"; }

template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
std::string repr(T n) {
    return std::to_string(n);
}

// A float and a str, as mp::Object prints them: exactly Python's repr (the shortest digits that
// read back as the same double, 1e+16, 1.5e-05, inf; quotes and escapes as Python chooses them).
inline std::string repr(double x) { return polyproc::repr(polyproc::Object(x)); }

inline std::string repr(std::string_view s) { return polyproc::repr(polyproc::Object(s)); }
inline std::string repr(const std::string& s) { return repr(std::string_view(s)); }
inline std::string repr(const char* s) { return repr(std::string_view(s)); }

// None
inline std::string repr(std::monostate) { return "None"; }
inline std::string repr(std::nullopt_t) { return "None"; }

// An optional: None, or the value's repr.
template <class T>
std::string repr(const std::optional<T>& x) {
    return x ? repr(*x) : "None";
}

// A variant (one of several Python types): the repr of the value it holds.
template <class... Ts>
std::string repr(const std::variant<Ts...>& x) {
    return std::visit([](const auto& v) { return repr(v); }, x);
}

// A tuple: (1, 2); a tuple of one item: (1,)
template <class A, class B>
std::string repr(const std::pair<A, B>& t) {
    std::string out = "(";
    out += repr(t.first);
    out += ", ";
    out += repr(t.second);
    return out + ")";
}
template <class... Ts>
std::string repr(const std::tuple<Ts...>& t) {
    std::string out = "(";
    std::apply(
        [&](const auto&... item) {
            std::size_t k = 0;
            ((out += k++ ? ", " : "", out += repr(item)), ...);
        },
        t);
    return out + (sizeof...(Ts) == 1 ? ",)" : ")");
}

// A list: [1, 4, 9]
template <class T>
std::string repr(const std::vector<T>& list) {
    std::string out = "[";
    for (std::size_t k = 0; k < list.size(); ++k) {
        if (k) out += ", ";
        out += repr(list[k]);
    }
    return out + "]";
}

// A dict, given as its keys and values in turn, in order: dict_repr("a", 1, "b", 2) is {'a': 1, 'b': 2}
template <class... KeysAndValues>
std::string dict_repr(const KeysAndValues&... kv) {
    static_assert(sizeof...(KeysAndValues) % 2 == 0, "dict_repr takes keys and values in pairs");
    if constexpr (sizeof...(KeysAndValues) == 0) {
        return "{}";
    } else {
        const std::string items[] = {repr(kv)...};
        std::string out = "{";
        for (std::size_t k = 0; k < sizeof...(KeysAndValues); k += 2) {
            if (k) out += ", ";
            out += items[k];
            out += ": ";
            out += items[k + 1];
        }
        return out + "}";
    }
}

// What print() shows (Python's str()): a string's text itself, anything else its repr.
template <class T>
std::string str(const T& x) {
    return repr(x);
}
inline std::string str(const std::string& s) { return s; }
inline std::string str(std::string_view s) { return std::string(s); }
inline std::string str(const char* s) { return s; }
template <class... Ts>
std::string str(const std::variant<Ts...>& x) {
    return std::visit([](const auto& v) { return str(v); }, x);
}

}  // namespace py
