// polyproc/synchronize.hpp — Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier
// (Python's multiprocessing.synchronize).
//
// Every primitive keeps its state in anonymous shared memory (detail/shared_region.hpp) and sleeps
// on futexes after a brief spin: no busy-waiting, no polling. Handles are cheap copies of one shared
// object: capture them in a child's lambda or pass them as arguments, exactly as Python passes
// them. The memory is freed by the kernel when the last process using it is gone, even after
// SIGKILL.
//
// Python's semantics: acquire(block = true, timeout = {}) -> bool (a timeout <= 0 tries once);
// Python's errors with Python's messages (mp::ValueError for Python's ValueError and
// AssertionError). The standard names (lock, unlock, try_lock, try_lock_for, try_lock_until) make
// std::lock_guard, std::unique_lock, std::scoped_lock and std::condition_variable_any work.
//
// Better than Python when a process dies:
//   * Lock, RLock (and so Condition's lock): if the owner dies holding it, the next acquirer gets
//     the lock AND mp::OwnerDiedError naming the dead process; it repairs the guarded state and
//     release()s. The kernel's robust-futex list tells us; nothing polls.
//   * Semaphore units taken by a process that dies are not returned (a semaphore has no owner).
//   * A process that dies inside Condition::wait is simply no longer a waiter; notify() skips it.
//   * A Barrier party that dies before arriving never arrives: the others wait until their
//     timeout, which breaks the barrier (BrokenBarrierError) as a timeout always does; reset()
//     makes it usable again. Give barriers a timeout when parties may die. A party that dies
//     after arriving changes nothing for the others.
//
// Deviations from Python, both deliberate: a Lock has an owner, so releasing a Lock held by another
// thread or process is an error (Python allows it); and a thread that blocks forever acquiring a
// Lock it already holds gets mp::ValueError instead of a deadlock.
//
//   mp::Lock lock;
//   mp::Value<int> counter(0);
//   mp::Process p([&] { std::lock_guard guard(lock); counter.set_value(counter.value() + 1); });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <pthread.h>
#include <string>
#include <sys/types.h>

#include "polyproc/detail/futex_sleepers.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/shared_region.hpp"
#include "polyproc/detail/thread_identity.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"

namespace polyproc {

namespace detail {

struct MutexState {
    pthread_mutex_t mutex;  // robust, process-shared
    pid_t owner_pid = 0;    // 0 while free
    pid_t owner_tid = 0;
    std::uint32_t depth = 0;  // RLock recursion depth
    bool recursive = false;
};

// The futex words below are waited on with os::futex_wait_until, their sleepers counted beside them.
// A Barrier's sleep: every broadcast wakes every sleeper (the barrier's generation count says which
// of them may leave). Condition keeps per-waiter tickets instead (src/condition.cpp).
struct BroadcastState {
    std::uint32_t seq = 0;  // futex word: bumped by every broadcast
    FutexSleepers sleepers;
};

struct ConditionState;  // src/condition.cpp

struct CounterState {
    std::uint32_t value = 0;  // futex word
    std::uint32_t maxvalue = 0;  // 0: unbounded (SEM_VALUE_MAX)
    FutexSleepers sleepers;
};

struct EventState {
    std::uint32_t flag = 0;  // futex word
    FutexSleepers sleepers;
};

// A generation-counting barrier: the last arrival starts a new generation, which releases the
// others. Nothing has to drain afterwards, so a party that dies at any point after arriving cannot
// wedge the next cycle.
struct BarrierState {
    MutexState mutex;
    BroadcastState cond;
    int parties = 0;
    int count = 0;                      // arrivals in the current generation
    std::uint32_t generation = 0;
    std::uint32_t reset_generation = ~0u;  // waiters of this generation were reset: BrokenBarrierError
    bool broken = false;
    std::int64_t default_timeout_ns = -1;
};

void init_mutex(MutexState& m, bool recursive);
// A robust, process-shared pthread mutex of `type` (a Lock's, a Condition slot's).
void init_robust_mutex(pthread_mutex_t& m, int type);
// Whether the calling thread holds it (only the owner writes the owner fields, so relaxed reads
// are exact for the question "is it me?").
inline bool mutex_is_mine(const MutexState& m) noexcept {
    const ThreadIdentity& me = this_thread();
    return __atomic_load_n(&m.owner_pid, __ATOMIC_RELAXED) == me.pid &&
           __atomic_load_n(&m.owner_tid, __ATOMIC_RELAXED) == me.tid;
}
inline void take_ownership(MutexState& m) noexcept {
    const ThreadIdentity& me = this_thread();
    // Other threads read the owner fields (mutex_is_mine) without the mutex: atomic stores.
    __atomic_store_n(&m.owner_pid, me.pid, __ATOMIC_RELAXED);
    __atomic_store_n(&m.owner_tid, me.tid, __ATOMIC_RELAXED);
    m.depth = 1;
}

// The rest of an acquire whose first pthread_mutex_trylock returned `trylock_result` (not 0):
// busy, already ours, or its owner died.
bool mutex_acquire_contended(MutexState& m, int trylock_result, bool block, const Timeout& timeout);
[[noreturn]] void throw_not_owner(const MutexState& m);  // Python's error for releasing it
[[noreturn]] void throw_pthread_error(const char* call, int rc);

// Lock and RLock acquire/release for Lock, RLock, Condition and Barrier alike. The uncontended
// paths are inline (no call into the library beyond pthread's own); every other case, errors
// included, goes out of line.
inline bool mutex_acquire(MutexState& m, bool block, const Timeout& timeout) {
    if (m.recursive && mutex_is_mine(m)) {  // RLock re-entry: no call, no atomic
        ++m.depth;
        return true;
    }
    const int rc = ::pthread_mutex_trylock(&m.mutex);
    if (rc == 0) {
        take_ownership(m);
        return true;
    }
    return mutex_acquire_contended(m, rc, block, timeout);
}

inline void mutex_release(MutexState& m) {
    if (!mutex_is_mine(m)) throw_not_owner(m);
    if (--m.depth > 0) return;  // depth and the owner fields are the owner's only
    __atomic_store_n(&m.owner_tid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m.owner_pid, 0, __ATOMIC_RELAXED);
    if (const int rc = ::pthread_mutex_unlock(&m.mutex); rc != 0) throw_pthread_error("pthread_mutex_unlock", rc);
}

std::string mutex_repr(const MutexState& m, const char* kind);

// Sleeps on a BroadcastState with the mutex released (all RLock levels; the same depth restored
// however it leaves) until the next broadcast; false on timeout.
bool broadcast_wait(BroadcastState& c, MutexState& m, Deadline deadline);
void broadcast(BroadcastState& c);

// The standard library's lockable names over Python's acquire/release, so that std::lock_guard,
// std::unique_lock, std::scoped_lock and std::condition_variable_any work with every primitive.
template <class Derived>
class StandardLockNames {
public:
    void lock() { self().acquire(); }
    void unlock() { self().release(); }
    bool try_lock() { return self().acquire(false); }
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return self().acquire(true, d);
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return self().acquire(true, t - Clock::now());
    }

private:
    Derived& self() { return static_cast<Derived&>(*this); }
};

// The shared half of a Lock or RLock handle.
class LockBase : public StandardLockNames<LockBase> {
public:
    bool acquire(bool block = true, Timeout timeout = {}) { return mutex_acquire(*state_, block, timeout); }
    void release() { mutex_release(*state_); }
    // Whether the calling thread holds it (Python's _is_mine()).
    bool is_mine() const noexcept { return mutex_is_mine(*state_); }
    MutexState& state() const noexcept { return *state_; }
    // Sending to a spawn or forkserver child (detail/inherit.hpp).
    void reduce_for_child(ChildWriter& w) const { w.region(*region_); }
    explicit LockBase(ChildReader& r) : region_(r.region()), state_(region_object<MutexState>(*region_)) {}

protected:
    explicit LockBase(bool recursive);
    std::shared_ptr<SharedRegion> region_;
    MutexState* state_;
};

}  // namespace detail

// A non-recursive lock. Python: multiprocessing.Lock.
class Lock : public detail::LockBase {
public:
    Lock() : LockBase(false) {}
    explicit Lock(detail::ChildReader& r) : LockBase(r) {}
    std::string repr() const { return detail::mutex_repr(*state_, "Lock"); }  // <Lock(owner=MainProcess)>
};

// A lock its owner thread may acquire again; released when released as often. Python: RLock.
class RLock : public detail::LockBase {
public:
    RLock() : LockBase(true) {}
    explicit RLock(detail::ChildReader& r) : LockBase(r) {}
    std::string repr() const { return detail::mutex_repr(*state_, "RLock"); }  // <RLock(MainProcess, 2)>
};

// A counter of free units. Python: multiprocessing.Semaphore(value=1).
class Semaphore : public detail::StandardLockNames<Semaphore> {
public:
    // std::system_error(EINVAL) for a negative value, as Python's sem_open.
    explicit Semaphore(int value = 1);
    bool acquire(bool block = true, Timeout timeout = {});
    void release();
    int get_value() const noexcept;
    std::string repr() const;  // <Semaphore(value=N)>
    void reduce_for_child(detail::ChildWriter& w) const { w.region(*region_); }
    explicit Semaphore(detail::ChildReader& r)
        : region_(r.region()), state_(detail::region_object<detail::CounterState>(*region_)) {}

protected:
    Semaphore(int value, bool bounded);
    std::shared_ptr<detail::SharedRegion> region_;
    detail::CounterState* state_;
};

// A Semaphore whose release() beyond the initial value is an error. Python: BoundedSemaphore.
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(int value = 1) : Semaphore(value, true) {}
    explicit BoundedSemaphore(detail::ChildReader& r) : Semaphore(r) {}
    std::string repr() const;  // <BoundedSemaphore(value=N, maxvalue=M)>
};

// Python: multiprocessing.Condition(lock=None); the default lock is a new RLock.
//
// Exact, as Python's is: notify(n) chooses at most n of the threads waiting at that moment (the
// oldest first) and wakes only those, also when they are still in their spin before sleeping;
// wait() returns true only in a waiter that a notify chose, and a waiter whose timeout comes at
// the same time as its notification returns true (the notification is not lost). A waiter that
// dies is skipped by notify, also before its parent has reaped it. At most kMaxWaiters threads
// (of any processes) wait on one Condition at a time; one more gets mp::ValueError.
class Condition : public detail::StandardLockNames<Condition> {
public:
    Condition() : Condition(RLock()) {}
    explicit Condition(Lock lock) : Condition(static_cast<detail::LockBase&&>(lock)) {}
    explicit Condition(RLock lock) : Condition(static_cast<detail::LockBase&&>(lock)) {}

    static constexpr int kMaxWaiters = 340;  // the slots of its 16 KiB of shared memory

    bool acquire(bool block = true, Timeout timeout = {}) { return lock_.acquire(block, timeout); }
    void release() { lock_.release(); }

    // True when notified, false on timeout. mp::ValueError("must acquire() condition before using
    // wait()") when the caller does not hold the lock.
    bool wait(Timeout timeout = {});
    // Python's wait_for: waits until predicate() is truthy; returns its last value.
    template <class Predicate>
    auto wait_for(Predicate predicate, Timeout timeout = {}) -> decltype(predicate()) {
        auto result = predicate();
        const detail::Deadline deadline(timeout);
        while (!result) {
            if (deadline.expired()) break;
            wait(deadline.is_never() ? Timeout() : Timeout(*deadline.remaining()));
            result = predicate();
        }
        return result;
    }
    // Wakes up to n waiters. mp::ValueError("lock is not owned") when the caller does not hold it.
    void notify(int n = 1);
    void notify_all();
    std::string repr() const;  // <Condition(<RLock(None, 0)>, 2)>: its lock, then its waiters

    void reduce_for_child(detail::ChildWriter& w) const {
        lock_.reduce_for_child(w);
        w.region(*region_);
    }
    explicit Condition(detail::ChildReader& r);

private:
    explicit Condition(detail::LockBase&& lock);
    detail::LockBase lock_;
    std::shared_ptr<detail::SharedRegion> region_;
    detail::ConditionState* state_;
};

// Python: multiprocessing.Event.
class Event {
public:
    Event();
    bool is_set() const noexcept;
    void set();
    void clear();
    // True if the flag is set on return, false on timeout.
    bool wait(Timeout timeout = {});

    void reduce_for_child(detail::ChildWriter& w) const { w.region(*region_); }
    explicit Event(detail::ChildReader& r)
        : region_(r.region()), state_(detail::region_object<detail::EventState>(*region_)) {}

private:
    std::shared_ptr<detail::SharedRegion> region_;
    detail::EventState* state_;
};

// Python: multiprocessing.Barrier(parties, action=None, timeout=None), threading.Barrier's
// semantics. The action runs in the process of the last party to arrive, before anyone is released.
class Barrier {
public:
    explicit Barrier(int parties, std::function<void()> action = {}, Timeout timeout = {});
    // Returns the arrival index 0..parties-1. An empty timeout uses the constructor's.
    // mp::BrokenBarrierError when the barrier is or becomes broken (abort, reset, timeout).
    int wait(Timeout timeout = {});
    void reset();
    void abort();
    int parties() const noexcept;
    int n_waiting() const;
    bool broken() const;

    // A Barrier with an action cannot go to a spawn or forkserver child: the action is arbitrary
    // code of this process (mp::ValueError when it is tried).
    void reduce_for_child(detail::ChildWriter& w) const;
    explicit Barrier(detail::ChildReader& r)
        : region_(r.region()), state_(detail::region_object<detail::BarrierState>(*region_)) {}

private:
    std::function<void()> action_;
    std::shared_ptr<detail::SharedRegion> region_;
    detail::BarrierState* state_;
};

}  // namespace polyproc
