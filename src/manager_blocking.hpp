// What the server's blocking referents share (manager_sync.cpp, manager_pool.cpp): Python's
// timeout arguments, a wait that watches its client, argument lookup, and the error for a
// method that is not exposed. Internal to the server.
#pragma once

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "manager_server.hpp"
#include "os.hpp"

namespace polyproc::detail::manager {

using Clock = std::chrono::steady_clock;
constexpr auto kWatchSlice = std::chrono::milliseconds(100);

// An optional timeout in seconds (None: forever), as Python's methods take it: a lock's
// acquire(timeout=-1) blocks forever and any other negative value is a ValueError; a queue's
// negative timeout is a ValueError; Event.wait treats a negative timeout as 0.
enum class Negative { lock, queue, event };
inline std::optional<Clock::time_point> deadline_from(const Object& timeout, Negative negative) {
    if (timeout.is_none()) return std::nullopt;
    double seconds = timeout.as_float();
    if (std::isnan(seconds)) throw ValueError("timeout must be a number, not nan");
    if (seconds < 0) {
        if (negative == Negative::lock && seconds == -1) return std::nullopt;
        if (negative == Negative::lock) throw ValueError("timeout value must be a non-negative number");
        if (negative == Negative::queue) throw ValueError("'timeout' must be a non-negative number");
        seconds = 0;
    }
    return Clock::now() +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(seconds, 1e9)));
}

// Waits until ready() or the deadline; false at the deadline. PeerGone when the caller's client
// hangs up meanwhile.
template <class Ready>
bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                std::optional<Clock::time_point> deadline, const Caller& caller, Ready ready) {
    while (!ready()) {
        auto until = Clock::now() + kWatchSlice;
        if (deadline) {
            if (Clock::now() >= *deadline) return false;
            until = std::min(until, *deadline);
        }
        cv.wait_until(lock, until);
        if (!ready() && os::peer_hung_up(caller.fd)) throw PeerGone();
    }
    return true;
}

// Positional argument i, or keyword `name`, or the fallback (a value: the fallback is often a
// temporary).
inline Object arg_or(const Object& args, const Object& kwds, std::size_t i, const char* name, Object fallback) {
    if (args.size() > i) return args[i];
    const auto key = Object(name);
    if (kwds.contains(key)) return kwds.at(key);
    return fallback;
}

[[noreturn]] inline void unknown(const char* type, const std::string& method) {
    throw UnknownName(std::string("AttributeError: method '") + method + "' of <class '" + type +
                      "'> object is not exposed");
}

}  // namespace polyproc::detail::manager
