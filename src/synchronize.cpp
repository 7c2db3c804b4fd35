// Lock, RLock, Semaphore, BoundedSemaphore, Event, Barrier (Condition: condition.cpp). See synchronize.hpp.
#include "polyproc/synchronize.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>

#include <sys/syscall.h>
#include <unistd.h>

#include "os.hpp"
#include "fork_safety.hpp"
#include "names.hpp"

namespace polyproc {

namespace detail {

namespace {

template <class T>
std::atomic_ref<T> atomic(T& x) noexcept {
    return std::atomic_ref<T>(x);
}

#if defined(__SANITIZE_THREAD__)
timespec realtime_deadline(const Deadline& d) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const long long ns = static_cast<long long>(now.tv_sec) * 1000000000 + now.tv_nsec + d.remaining()->count();
    return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}
#endif

}  // namespace

// ---- Lock and RLock ----------------------------------------------------------------------------

void init_robust_mutex(pthread_mutex_t& m, int type) {
    pthread_mutexattr_t attr;
    ::pthread_mutexattr_init(&attr);
    ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    // Robust: the kernel marks the mutex when its owner dies, which is how we report OwnerDiedError.
    ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    ::pthread_mutexattr_settype(&attr, type);
    const int rc = ::pthread_mutex_init(&m, &attr);
    ::pthread_mutexattr_destroy(&attr);
    if (rc != 0) os::throw_errno("pthread_mutex_init", rc);
}

void init_mutex(MutexState& m, bool recursive) {
    init_robust_mutex(m.mutex, PTHREAD_MUTEX_ERRORCHECK);
    m.recursive = recursive;
}

void throw_pthread_error(const char* call, int rc) { os::throw_errno(call, rc); }

bool mutex_acquire_contended(MutexState& m, int trylock_result, bool block, const Timeout& timeout) {
    if (timeout.non_blocking()) block = false;  // Python: a timeout <= 0 tries once
    int rc = trylock_result;
    if (rc == EDEADLK || (rc == EBUSY && mutex_is_mine(m))) {
        // We hold it already. Python would deadlock on a blocking acquire; a bounded wait would
        // time out; waiting forever on ourselves is a bug worth reporting.
        if (!block || timeout) return false;
        throw ValueError("Lock.acquire() would deadlock: the calling thread already holds this Lock");
    }
    if (rc == EBUSY && block) {
        // No spin here: a contender that sleeps at once lets the holder run many short critical
        // sections in a row (what glibc does); spinning made both cores fight over the lock's
        // cache line and cut contended throughput by two thirds.
        if (timeout) {
#if defined(__SANITIZE_THREAD__)
            // ThreadSanitizer (GCC 12) does not intercept pthread_mutex_clocklock: use the
            // realtime-clock variant it knows, so that it sees the acquisition.
            const timespec at = realtime_deadline(Deadline(timeout));
            rc = ::pthread_mutex_timedlock(&m.mutex, &at);
#else
            const timespec at = os::monotonic_timespec(Deadline(timeout));
            rc = ::pthread_mutex_clocklock(&m.mutex, CLOCK_MONOTONIC, &at);
#endif
        } else {
            rc = ::pthread_mutex_lock(&m.mutex);
        }
    }
    switch (rc) {
        case 0:
            take_ownership(m);
            return true;
        case EBUSY:
        case ETIMEDOUT:
            return false;
        case EOWNERDEAD: {
            const pid_t dead = m.owner_pid;
            ::pthread_mutex_consistent(&m.mutex);
            take_ownership(m);
            throw OwnerDiedError(dead);
        }
        default:
            os::throw_errno("pthread_mutex_lock", rc);
    }
}

void throw_not_owner(const MutexState& m) {
    if (m.recursive) throw ValueError("attempt to release recursive lock not owned by thread");
    if (atomic(const_cast<pid_t&>(m.owner_pid)).load(std::memory_order_relaxed) == 0)
        throw ValueError("semaphore or lock released too many times");
    throw ValueError("cannot release a Lock held by another thread or process (polyproc's Lock has an owner)");
}

std::string mutex_repr(const MutexState& m, const char* kind) {
    const pid_t pid = atomic(const_cast<pid_t&>(m.owner_pid)).load(std::memory_order_relaxed);
    std::string owner;
    if (pid == 0)
        owner = "None";
    else if (mutex_is_mine(m))
        owner = this_process_name();
    else if (pid == this_thread().pid)
        owner = "SomeOtherThread";
    else
        owner = "SomeOtherProcess";
    if (m.recursive) return std::string("<") + kind + "(" + owner + ", " + std::to_string(pid ? m.depth : 0) + ")>";
    return std::string("<") + kind + "(owner=" + owner + ")>";
}

LockBase::LockBase(bool recursive) {
    auto [region, state] = make_shared_object<MutexState>();
    init_mutex(*state, recursive);
    region_ = std::move(region);
    state_ = state;
}

// ---- a Barrier's broadcast -----------------------------------------------------------------------

bool broadcast_wait(BroadcastState& c, MutexState& m, Deadline deadline) {
    const std::uint32_t seq = atomic(c.seq).load();  // under the mutex: a broadcast after it bumps seq
    // Release every level, remember the depth, and restore it however we leave.
    const std::uint32_t depth = m.depth;
    m.depth = 1;
    mutex_release(m);
    const bool woken = os::futex_wait_until(
        c.seq, c.sleepers, [&] { return atomic(c.seq).load() != seq; }, deadline, os::WaitStyle{.sleep_while = seq});
    struct Restore {
        MutexState& m;
        std::uint32_t depth;
        ~Restore() {
            if (mutex_is_mine(m)) m.depth = depth;
        }
    } restore{m, depth};
    mutex_acquire(m, true, {});  // OwnerDiedError propagates with the lock held at its old depth
    return woken;
}

// Always moves seq (a waiter still spinning, not yet counted, sees that), then wakes sleepers.
void broadcast(BroadcastState& c) {
    atomic(c.seq).fetch_add(1);
    os::futex_wake_sleepers(c.seq, c.sleepers, INT_MAX, os::Wake::word_changed);
}

}  // namespace detail

// ---- Semaphore ---------------------------------------------------------------------------------

Semaphore::Semaphore(int value) : Semaphore(value, false) {}

Semaphore::Semaphore(int value, bool bounded) {
    if (value < 0)
        os::throw_error(std::errc::invalid_argument,
                        "Semaphore: the initial value must be >= 0, not " + std::to_string(value));
    auto [region, state] = detail::make_shared_object<detail::CounterState>();
    state->value = static_cast<std::uint32_t>(value);
    state->maxvalue = bounded ? static_cast<std::uint32_t>(value) : 0;
    region_ = std::move(region);
    state_ = state;
}

bool Semaphore::acquire(bool block, Timeout timeout) {
    auto value = detail::atomic(state_->value);
    auto try_take = [&] {
        std::uint32_t v = value.load();
        while (v > 0)
            if (value.compare_exchange_weak(v, v - 1)) return true;
        return false;
    };
    if (try_take()) return true;
    if (!block || timeout.non_blocking()) return false;
    return os::futex_wait_until(state_->value, state_->sleepers, try_take, detail::Deadline(timeout),
                                os::WaitStyle{.sleep_while = 0});
}

void Semaphore::release() {
    auto value = detail::atomic(state_->value);
    const std::uint32_t max = state_->maxvalue;
    std::uint32_t v = value.load();
    for (;;) {
        if (max != 0 && v >= max) throw ValueError("semaphore or lock released too many times");
        if (v == static_cast<std::uint32_t>(INT_MAX)) throw ValueError("semaphore value would exceed SEM_VALUE_MAX");
        if (value.compare_exchange_weak(v, v + 1)) break;
    }
    os::futex_wake_sleepers(state_->value, state_->sleepers, 1, os::Wake::word_changed);
}

int Semaphore::get_value() const noexcept { return static_cast<int>(detail::atomic(state_->value).load()); }

std::string Semaphore::repr() const { return "<Semaphore(value=" + std::to_string(get_value()) + ")>"; }

std::string BoundedSemaphore::repr() const {
    return "<BoundedSemaphore(value=" + std::to_string(get_value()) + ", maxvalue=" + std::to_string(state_->maxvalue) +
           ")>";
}

// ---- Event -------------------------------------------------------------------------------------

Event::Event() {
    auto [region, state] = detail::make_shared_object<detail::EventState>();
    region_ = std::move(region);
    state_ = state;
}

bool Event::is_set() const noexcept { return detail::atomic(state_->flag).load() != 0; }

void Event::set() {
    detail::atomic(state_->flag).store(1);
    os::futex_wake_sleepers(state_->flag, state_->sleepers, INT_MAX, os::Wake::word_changed);
}

void Event::clear() { detail::atomic(state_->flag).store(0); }

bool Event::wait(Timeout timeout) {
    if (is_set()) return true;
    if (timeout.non_blocking()) return false;
    return os::futex_wait_until(
        state_->flag, state_->sleepers, [&] { return is_set(); }, detail::Deadline(timeout),
        os::WaitStyle{.sleep_while = 0});
}

// ---- Barrier ------------------------------------------------------------------------------
// Python's threading.Barrier drains: the last party out of a cycle refills it. A party that dies
// between arriving and leaving would leave it draining forever, so we count generations instead.

namespace {

struct BarrierGuard {
    detail::BarrierState& b;
    explicit BarrierGuard(detail::BarrierState& state) : b(state) {
        try {
            detail::mutex_acquire(b.mutex, true, {});
        } catch (const OwnerDiedError&) {
            // A party died inside the barrier's own critical section: the count may be off, so
            // the barrier is broken for everyone until reset() (we hold the lock now).
            b.broken = true;
        }
    }
    ~BarrierGuard() { detail::mutex_release(b.mutex); }
};

void barrier_break(detail::BarrierState& b) {
    b.broken = true;
    detail::broadcast(b.cond);
}

}  // namespace

void Barrier::reduce_for_child(detail::ChildWriter& w) const {
    if (action_)
        throw ValueError(
            "polyproc: a Barrier with an action cannot be sent to a spawn or forkserver child (the "
            "action is code of this process); use a Barrier without one, or the fork start method");
    w.region(*region_);
}

Barrier::Barrier(int parties, std::function<void()> action, Timeout timeout) : action_(std::move(action)) {
    auto [region, state] = detail::make_shared_object<detail::BarrierState>();
    detail::init_mutex(state->mutex, false);
    state->parties = parties;
    state->default_timeout_ns = timeout ? timeout.value().count() : -1;
    region_ = std::move(region);
    state_ = state;
}

int Barrier::wait(Timeout timeout) {
    detail::BarrierState& b = *state_;
    if (!timeout && b.default_timeout_ns >= 0) timeout = std::chrono::nanoseconds(b.default_timeout_ns);
    const detail::Deadline deadline(timeout);
    BarrierGuard guard(b);
    if (b.broken) throw BrokenBarrierError();
    const std::uint32_t generation = b.generation;
    const int index = b.count++;
    if (b.count >= b.parties) {  // the last arrival runs the action, then releases everyone
        try {
            if (action_) action_();
        } catch (...) {
            barrier_break(b);
            throw;
        }
        b.count = 0;
        ++b.generation;
        detail::broadcast(b.cond);
        return index;
    }
    while (b.generation == generation && !b.broken) {
        bool woken = false;
        try {
            woken = !deadline.expired() && detail::broadcast_wait(b.cond, b.mutex, deadline);
        } catch (const OwnerDiedError&) {  // a party died holding the barrier's lock
            barrier_break(b);
            throw BrokenBarrierError();
        }
        if (!woken && b.generation == generation && !b.broken) {  // our timeout: break it for all
            barrier_break(b);
            throw BrokenBarrierError();
        }
    }
    if (b.generation == generation || b.reset_generation == generation) throw BrokenBarrierError();
    return index;
}

void Barrier::reset() {
    detail::BarrierState& b = *state_;
    BarrierGuard guard(b);
    // Parties waiting now get BrokenBarrierError; the barrier starts afresh.
    if (b.count > 0) {
        b.reset_generation = b.generation;
        ++b.generation;
    }
    b.count = 0;
    b.broken = false;
    detail::broadcast(b.cond);
}

void Barrier::abort() {
    BarrierGuard guard(*state_);
    barrier_break(*state_);
}

int Barrier::parties() const noexcept { return state_->parties; }

int Barrier::n_waiting() const {
    BarrierGuard guard(*state_);
    return state_->broken ? 0 : state_->count;
}

bool Barrier::broken() const {
    BarrierGuard guard(*state_);
    return state_->broken;
}

}  // namespace polyproc
