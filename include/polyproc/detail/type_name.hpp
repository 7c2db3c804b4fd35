// polyproc/detail/type_name.hpp — a readable name and a stable 64-bit id for a C++ type, so every
// frame can say what it holds. The name comes from the compiler's __PRETTY_FUNCTION__: stable
// within one build of one program, which is what processes of one program tree share.
#pragma once

#include <cstdint>
#include <string_view>

namespace polyproc::detail {

template <class T>
constexpr std::string_view type_name() noexcept {
    std::string_view f = __PRETTY_FUNCTION__;
    // GCC: "... [with T = int; std::string_view = ...]"; Clang: "... [T = int]".
    auto start = f.find("T = ");
    if (start == std::string_view::npos) return f;
    start += 4;
    auto end = f.find_first_of(";]", start);
    // Template arguments may contain ';'-free ']' only in array types; good enough for naming.
    return f.substr(start, end - start);
}

constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}

template <class T>
constexpr std::uint64_t type_id() noexcept {
    return fnv1a64(type_name<T>());
}

}  // namespace polyproc::detail
