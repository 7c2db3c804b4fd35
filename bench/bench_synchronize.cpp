// bench/bench_synchronize.cpp — synchronize.hpp and sharedctypes.hpp against the raw primitives
// under them.
//
//   * Uncontended Lock acquire + release in one process: mp::Lock (a robust, process-shared,
//     error-checking pthread mutex plus its owner bookkeeping) against a bare process-shared
//     pthread mutex and a robust process-shared one, both in shared memory.
//   * Two-process ping-pong round trip: the parent wakes a child and waits for the child to wake
//     it back. mp::Event (two events, Python's idiom: set, wait, clear) and mp::Condition (a turn
//     variable under the condition's RLock, notify + wait_for) against a raw futex ping-pong on one
//     32-bit word, written here: each side stores the next turn number, FUTEX_WAKEs the word only
//     when the other side sleeps, and waits for its own turn spinning first (128 pauses, then
//     sched_yield for up to 50 µs, the budget polyproc uses) before FUTEX_WAIT on the same word.
//   * Two processes incrementing one shared int under its lock: mp::Value<int> (Python's
//     `with v.get_lock(): v.value += 1`, i.e. lock_guard on get_lock() + set_value(value() + 1),
//     which re-enter the RLock; and, for comparison, ++get_obj() under the one lock level)
//     against a plain int under a raw robust process-shared mutex. The child increments
//     continuously; the parent increments in the timed loop; the figure is both processes'
//     increments per second.
//
// The two-process benchmarks pin parent and child to two different CPUs (bench::Placement), like
// the pipe round trips. CPython's figures come from bench/cpython_bench.py.
#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "bench_common.hpp"

namespace {

using bench::Placement;
using bench::Shared;

// A process-shared pthread mutex, robust or not, initialised in place.
struct RawMutex {
    pthread_mutex_t m;
    void init(bool robust) {
        pthread_mutexattr_t attr;
        ::pthread_mutexattr_init(&attr);
        ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (robust) ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        const int rc = ::pthread_mutex_init(&m, &attr);
        ::pthread_mutexattr_destroy(&attr);
        if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_mutex_init");
    }
    void lock() {
        const int rc = ::pthread_mutex_lock(&m);
        if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_mutex_lock");
    }
    void unlock() { ::pthread_mutex_unlock(&m); }
};

// ---------------------------------------------------------------------------------------------
// Uncontended Lock acquire + release

void BM_LockUncontended_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        mp::Lock lock;
        for (auto _ : state) {
            lock.acquire();
            lock.release();
        }
        state.SetItemsProcessed(state.iterations());
    });
}

void raw_lock_uncontended(benchmark::State& state, bool robust) {
    bench::run_guarded(state, [&] {
        Shared<RawMutex> mutex;
        mutex->init(robust);
        for (auto _ : state) {
            mutex->lock();
            mutex->unlock();
        }
        state.SetItemsProcessed(state.iterations());
    });
}

void BM_LockUncontended_RawPsharedMutex(benchmark::State& state) { raw_lock_uncontended(state, false); }
void BM_LockUncontended_RawRobustMutex(benchmark::State& state) { raw_lock_uncontended(state, true); }

// ---------------------------------------------------------------------------------------------
// Two-process ping-pong

// Parent: ping.set(); pong.wait(); pong.clear(). Child: ping.wait(); ping.clear(); pong.set().
void BM_EventPingPong_Polyproc(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        mp::Event ping, pong;
        mp::RawValue<int> stop(0);
        mp::Process child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            for (;;) {
                ping.wait();
                ping.clear();
                if (std::atomic_ref<int>(stop.get_obj()).load()) return;
                pong.set();
            }
        });
        child.set_daemon(true);
        bench::ProcessGuard guard(child, [&] {
            std::atomic_ref<int>(stop.get_obj()).store(1);
            ping.set();
        });
        child.start();

        for (auto _ : state) {
            ping.set();
            pong.wait();
            pong.clear();
        }
        state.SetItemsProcessed(state.iterations());
        std::atomic_ref<int>(stop.get_obj()).store(1);
        ping.set();
        bench::finish_child(state, child);
    });
}

// A turn variable under the Condition's lock (its default RLock, as in Python): the parent sets
// turn = 1 and notifies, then waits for turn == 0; the child waits for turn != 0, sets it to 0
// and notifies. turn == 2 stops the child.
void BM_ConditionPingPong_Polyproc(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        mp::Condition cond;
        mp::RawValue<int> turn(0);
        int& t = turn.get_obj();
        mp::Process child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            std::lock_guard guard(cond);
            for (;;) {
                cond.wait_for([&] { return t != 0; });
                if (t == 2) return;
                t = 0;
                cond.notify();
            }
        });
        child.set_daemon(true);
        auto stop = [&] {
            std::lock_guard g(cond);
            t = 2;
            cond.notify();
        };
        bench::ProcessGuard guard(child, stop);
        child.start();

        for (auto _ : state) {
            std::lock_guard g(cond);
            t = 1;
            cond.notify();
            cond.wait_for([&] { return t == 0; });
        }
        state.SetItemsProcessed(state.iterations());
        stop();
        bench::finish_child(state, child);
    });
}

long futex(std::uint32_t* word, int op, std::uint32_t val) {
    return ::syscall(SYS_futex, word, op, val, nullptr, nullptr, 0);
}

struct FutexPingPong {
    std::uint32_t turn;      // the futex word: the number of the last move
    std::uint32_t sleepers;  // processes inside FUTEX_WAIT (or about to be)
};

// Makes move `next` and wakes the other side if it sleeps.
void futex_move(FutexPingPong& s, std::uint32_t next) {
    std::atomic_ref<std::uint32_t>(s.turn).store(next);
    if (std::atomic_ref<std::uint32_t>(s.sleepers).load() > 0) futex(&s.turn, FUTEX_WAKE, INT_MAX);
}

// Waits until the word is `want` (or stop_value): spin, then sleep on the same word.
std::uint32_t futex_await(FutexPingPong& s, std::uint32_t want, std::uint32_t stop_value) {
    std::atomic_ref<std::uint32_t> turn(s.turn);
    auto ready = [&] {
        const std::uint32_t v = turn.load();
        return v == want || v == stop_value;
    };
    for (int i = 0; i < 128; ++i) {
        if (ready()) return turn.load();
        __builtin_ia32_pause();
    }
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::microseconds(50)) {
        if (ready()) return turn.load();
        ::sched_yield();
    }
    std::atomic_ref<std::uint32_t> sleepers(s.sleepers);
    sleepers.fetch_add(1);
    for (;;) {
        const std::uint32_t v = turn.load();
        if (v == want || v == stop_value) break;
        futex(&s.turn, FUTEX_WAIT, v);  // returns at once if the word is no longer v
    }
    sleepers.fetch_sub(1);
    return turn.load();
}

// Odd moves are the parent's, even moves the child's; UINT32_MAX stops the child.
void BM_FutexPingPong_RawSpinThenSleep(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        constexpr std::uint32_t kStop = UINT32_MAX;
        bench::PinnedPair pin(placement);
        Shared<FutexPingPong> s;
        bench::RawChild child([&] {
            bench::pin_to(pin.child_cpu());
            for (std::uint32_t move = 1;; move += 2) {
                if (futex_await(*s, move, kStop) == kStop) return;
                futex_move(*s, move + 1);
            }
        });
        bench::Defer stop([&] { futex_move(*s, kStop); });
        std::uint32_t move = 1;
        for (auto _ : state) {
            futex_move(*s, move);
            futex_await(*s, move + 1, kStop);
            move += 2;
        }
        state.SetItemsProcessed(state.iterations());
        futex_move(*s, kStop);
        bench::finish_child(state, child);
    });
}

// ---------------------------------------------------------------------------------------------
// Two processes incrementing one int under its lock

// The child's side: increments until told to stop, then reports its count.
struct IncrementControl {
    int running = 0;  // set by the child once it increments
    int stop = 0;
    long long child_count = 0;
};

constexpr long long kParentBatch = 1000;  // increments per timed iteration in the parent

void wait_until_running(IncrementControl& ctl) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!std::atomic_ref<int>(ctl.running).load()) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the incrementing child did not start");
        ::sched_yield();
    }
}

// How the increment is written: Python's `v.value += 1` (value() and set_value(), each of which
// takes the RLock again, recursively), or through get_obj() (one lock level).
enum class Increment { value_set_value, get_obj };

void polyproc_value_increment(benchmark::State& state, Placement placement, Increment how) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        mp::Value<int> v(0);
        Shared<IncrementControl> ctl;
        auto increment = [&v, how] {
            std::lock_guard guard(v.get_lock());  // with v.get_lock():
            if (how == Increment::value_set_value)
                v.set_value(v.value() + 1);  //     v.value += 1
            else
                ++v.get_obj();
        };
        mp::Process child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            long long n = 0;
            std::atomic_ref<int>(ctl->running).store(1);
            while (!std::atomic_ref<int>(ctl->stop).load(std::memory_order_relaxed)) {
                increment();
                ++n;
            }
            ctl->child_count = n;
        });
        child.set_daemon(true);
        bench::ProcessGuard guard(child, [&] { std::atomic_ref<int>(ctl->stop).store(1); });
        child.start();
        wait_until_running(*ctl);

        long long mine = 0;
        const int start_value = v.value();
        for (auto _ : state) {
            for (long long i = 0; i < kParentBatch; ++i) increment();
            mine += kParentBatch;
        }
        const int end_value = v.value();
        std::atomic_ref<int>(ctl->stop).store(1);
        bench::finish_child(state, child);
        // Every increment of both processes counted: the lock did its job.
        if (static_cast<long long>(v.value()) != mine + ctl->child_count)
            throw std::runtime_error("lost increments: the lock did not exclude");
        state.SetItemsProcessed(end_value - start_value);
        state.counters["parent_share"] = static_cast<double>(mine) / (end_value - start_value);
    });
}

void BM_ValueIncrement_Polyproc(benchmark::State& state, Placement placement) {
    polyproc_value_increment(state, placement, Increment::value_set_value);
}
void BM_ValueIncrement_PolyprocGetObj(benchmark::State& state, Placement placement) {
    polyproc_value_increment(state, placement, Increment::get_obj);
}

struct RawCounter {
    RawMutex mutex;
    int value;
};

void BM_ValueIncrement_RawRobustMutex(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        Shared<RawCounter> c;
        c->mutex.init(true);
        Shared<IncrementControl> ctl;
        auto read = [&] {
            std::lock_guard g(c->mutex);
            return c->value;
        };
        bench::RawChild child([&] {
            bench::pin_to(pin.child_cpu());
            long long n = 0;
            std::atomic_ref<int>(ctl->running).store(1);
            while (!std::atomic_ref<int>(ctl->stop).load(std::memory_order_relaxed)) {
                std::lock_guard g(c->mutex);
                c->value = c->value + 1;
                ++n;
            }
            ctl->child_count = n;
        });
        bench::Defer stop([&] { std::atomic_ref<int>(ctl->stop).store(1); });
        wait_until_running(*ctl);

        long long mine = 0;
        const int start_value = read();
        for (auto _ : state) {
            for (long long i = 0; i < kParentBatch; ++i) {
                std::lock_guard g(c->mutex);
                c->value = c->value + 1;
            }
            mine += kParentBatch;
        }
        const int end_value = read();
        std::atomic_ref<int>(ctl->stop).store(1);
        bench::finish_child(state, child);
        if (static_cast<long long>(read()) != mine + ctl->child_count)
            throw std::runtime_error("lost increments: the mutex did not exclude");
        state.SetItemsProcessed(end_value - start_value);
        state.counters["parent_share"] = static_cast<double>(mine) / (end_value - start_value);
    });
}

const bool registered = [] {
    benchmark::RegisterBenchmark("BM_LockUncontended_Polyproc", BM_LockUncontended_Polyproc)
        ->Unit(benchmark::kNanosecond);
    benchmark::RegisterBenchmark("BM_LockUncontended_RawPsharedMutex", BM_LockUncontended_RawPsharedMutex)
        ->Unit(benchmark::kNanosecond);
    benchmark::RegisterBenchmark("BM_LockUncontended_RawRobustMutex", BM_LockUncontended_RawRobustMutex)
        ->Unit(benchmark::kNanosecond);

    using bench::register_placed;
    register_placed("BM_EventPingPong_Polyproc", BM_EventPingPong_Polyproc, benchmark::kMicrosecond);
    register_placed("BM_ConditionPingPong_Polyproc", BM_ConditionPingPong_Polyproc, benchmark::kMicrosecond);
    register_placed("BM_FutexPingPong_RawSpinThenSleep", BM_FutexPingPong_RawSpinThenSleep, benchmark::kMicrosecond);
    register_placed("BM_ValueIncrement_Polyproc", BM_ValueIncrement_Polyproc, benchmark::kMicrosecond);
    register_placed("BM_ValueIncrement_PolyprocGetObj", BM_ValueIncrement_PolyprocGetObj, benchmark::kMicrosecond);
    register_placed("BM_ValueIncrement_RawRobustMutex", BM_ValueIncrement_RawRobustMutex, benchmark::kMicrosecond);
    return true;
}();

}  // namespace
