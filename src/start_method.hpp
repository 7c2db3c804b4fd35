// The start methods as one type, and the global one (Python's DefaultContext). How a child of
// each method starts is picked in one place, Process::start() (process.cpp): fork there
// (popen_fork), spawn and forkserver in spawn.cpp (popen_spawn_posix, popen_forkserver).
// context.hpp is the public face of this, with Python's names and messages.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace polyproc::detail {

enum class StartMethod : std::uint8_t { fork, spawn, forkserver };

// Python's order on Linux.
inline constexpr std::array<StartMethod, 3> kAllStartMethods = {StartMethod::fork, StartMethod::spawn,
                                                                StartMethod::forkserver};

constexpr std::string_view start_method_name(StartMethod m) {
    switch (m) {
        case StartMethod::fork:
            return "fork";
        case StartMethod::spawn:
            return "spawn";
        case StartMethod::forkserver:
            break;
    }
    return "forkserver";
}

// The method called `name`; mp::ValueError("<what>cannot find context for 'x'") otherwise.
StartMethod parse_start_method(std::string_view name, const char* what = "");

// The global method; fixes the default on first use (fork, or $POLYPROC_START_METHOD).
StartMethod global_start_method();
// Empty while none was set or fixed.
std::optional<StartMethod> global_start_method_if_set();
// Python's set_start_method: std::runtime_error("context has already been set") when one was set
// or fixed and not `force`; an empty method with `force` unsets it, without fixes the default.
void set_global_start_method(std::optional<StartMethod> method, bool force);
// In a child: the method that started it (Python's children report it). In a fork child the
// parent's lock may have been held by another thread: it is made anew.
void set_start_method_in_child(StartMethod method);

}  // namespace polyproc::detail
