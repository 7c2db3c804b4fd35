// polyproc/detail/timeout.hpp — mp::Timeout (Python's `timeout=None|seconds`) and the Deadline that
// blocking calls count down, so that a wait retried after EINTR or a spurious wake-up never
// restarts its full timeout.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>

namespace polyproc {

// Empty means "block forever" (Python's None). Any std::chrono duration converts, including
// fractional seconds: `conn.poll(std::chrono::duration<double>(0.5))`. Negative means "do not wait".
class Timeout {
public:
    constexpr Timeout() noexcept = default;
    constexpr Timeout(std::nullopt_t) noexcept {}
    template <class Rep, class Period>
    constexpr Timeout(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT: implicit on purpose
        : ns_(clamp(d).count()) {}

    constexpr bool has_value() const noexcept { return ns_ != kNone; }
    constexpr explicit operator bool() const noexcept { return has_value(); }
    constexpr std::chrono::nanoseconds value() const {
        if (!has_value()) throw std::bad_optional_access();
        return std::chrono::nanoseconds(ns_);
    }
    constexpr std::chrono::nanoseconds operator*() const noexcept { return std::chrono::nanoseconds(ns_); }
    // Zero or negative: check once, never wait (Python's timeout <= 0).
    constexpr bool non_blocking() const noexcept { return has_value() && ns_ <= 0; }

private:
    template <class Rep, class Period>
    static constexpr std::chrono::nanoseconds clamp(std::chrono::duration<Rep, Period> d) noexcept {
        // A timeout of years is "forever" in practice; clamp so that now() + timeout cannot overflow.
        using Secs = std::chrono::duration<double>;
        constexpr double limit = 100.0 * 365 * 24 * 3600;
        const double s = std::chrono::duration_cast<Secs>(d).count();
        if (s > limit) return std::chrono::duration_cast<std::chrono::nanoseconds>(Secs(limit));
        if (s < -limit) return std::chrono::duration_cast<std::chrono::nanoseconds>(Secs(-limit));
        return std::chrono::duration_cast<std::chrono::nanoseconds>(d);
    }
    // One integer, "none" as a sentinel the clamp never produces: passed by value it travels in a
    // register. (A std::optional's separate flag byte, reloaded as part of a wider word, costs a
    // store-forwarding stall on every call: it doubled an uncontended Lock acquire.)
    static constexpr std::int64_t kNone = INT64_MIN;
    std::int64_t ns_ = kNone;
};

namespace detail {

// A point on the steady clock, or "never".
class Deadline {
public:
    using Clock = std::chrono::steady_clock;
    Deadline() = default;  // never
    explicit Deadline(Timeout t) {
        if (t) at_ = Clock::now() + *t;
    }
    static Deadline never() { return {}; }
    bool is_never() const { return !at_.has_value(); }
    bool expired() const { return at_ && Clock::now() >= *at_; }
    // Remaining time, never negative; empty when the deadline is "never".
    std::optional<std::chrono::nanoseconds> remaining() const {
        if (!at_) return std::nullopt;
        auto left = *at_ - Clock::now();
        return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left)
                                : std::chrono::nanoseconds(0);
    }
    // Milliseconds for poll(2): -1 = forever; rounded up so we never wake just before the deadline.
    int poll_ms() const;
    // The absolute point on the steady clock (libstdc++'s steady_clock is CLOCK_MONOTONIC), for
    // kernel calls that take absolute deadlines; empty when "never".
    const std::optional<Clock::time_point>& at() const noexcept { return at_; }

private:
    std::optional<Clock::time_point> at_;
};

inline int Deadline::poll_ms() const {
    auto left = remaining();
    if (!left) return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*left).count();
    return ms > 0x3fffffff ? 0x3fffffff : static_cast<int>(ms);
}

}  // namespace detail
}  // namespace polyproc
