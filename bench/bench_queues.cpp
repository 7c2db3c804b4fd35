// bench/bench_queues.cpp — queues.hpp against the practical limit and against Boost.
//
//   * 64-byte messages, one producer to one consumer on two CPUs: the child puts N items, the
//     parent's timed loop gets one per iteration. mp::Queue<Message64> (bounded to 4096 items, so
//     a fast producer waits instead of growing the ring) against
//       - a raw single-producer single-consumer ring of 4096 64-byte slots in shared memory,
//         written here: head and tail on their own cache lines, each side caching the other's
//         index, spin (128 pauses, then sched_yield up to 50 µs, polyproc's budget) then
//         FUTEX_WAIT on the index it waits for; publishing takes a release store and the check
//         for a sleeper a plain load, made safe by an asymmetric membarrier(2) on the side about
//         to sleep (as polyproc does). No locks, no framing, no sizes: the practical limit.
//       - Boost.Interprocess message_queue (4096 messages of 64 bytes; a process-shared mutex and
//         condition variables inside).
//   * Round trip: the parent puts an 8-byte item into one queue and gets the child's reply from a
//     second queue (also for the raw ring, as the floor).
//   * 4 producers x 4 consumers, 64-byte items, one queue: items per second, all 8 processes
//     started and waiting before the clock starts.
//   * 1 MiB messages (std::vector<char>), one producer to one consumer: bytes per second against
//     the raw ring with 1 MiB slots (memcpy in, memcpy out: a raw cross-process shared-memory copy).
//
// CPython's figures for the same work come from bench/cpython_bench.py.
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>

#include "bench_common.hpp"

#if defined(POLYPROC_BENCH_BOOST)
#include <boost/interprocess/ipc/message_queue.hpp>
#endif

namespace {

using bench::Placement;
using bench::Shared;

struct Message64 {
    std::array<char, 64> bytes;
};

constexpr std::size_t kBoundedItems = 4096;

// ---------------------------------------------------------------------------------------------
// The raw SPSC ring

void futex_wait(std::uint32_t* word, std::uint32_t expected) {
    ::syscall(SYS_futex, word, FUTEX_WAIT, expected, nullptr, nullptr, 0);
}
void futex_wake(std::uint32_t* word) { ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }

// Every process using a ring registers for the asymmetric barrier (see RawRing::wait and wake).
bool membarrier_registered() { return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0; }
void heavy_barrier() {
    if (::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) != 0)
        throw std::runtime_error("membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) failed");
}

template <class Ready>
bool spin(Ready ready) {
    for (int i = 0; i < 128; ++i) {
        if (ready()) return true;
        __builtin_ia32_pause();
    }
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::microseconds(50)) {
        if (ready()) return true;
        ::sched_yield();
    }
    return false;
}

template <std::size_t SlotBytes, std::size_t Slots>
struct RawRing {
    alignas(64) std::uint32_t tail = 0;  // producer's; futex word for a sleeping consumer
    std::uint32_t seen_head = 0;
    alignas(64) std::uint32_t head = 0;  // consumer's; futex word for a sleeping producer
    std::uint32_t seen_tail = 0;
    alignas(64) std::uint32_t consumer_sleeps = 0;
    alignas(64) std::uint32_t producer_sleeps = 0;
    alignas(64) std::array<std::array<std::byte, SlotBytes>, Slots> slots;

    static std::atomic_ref<std::uint32_t> at(std::uint32_t& x) { return std::atomic_ref<std::uint32_t>(x); }

    // Waits until ready(), sleeping on `word` (whose value changes when it may be) with `flag` set.
    template <class Ready>
    static void wait(std::uint32_t& word, std::uint32_t& flag, Ready ready) {
        if (spin(ready)) return;
        for (;;) {
            const std::uint32_t observed = at(word).load();
            at(flag).store(1);
            heavy_barrier();
            if (ready()) return;
            futex_wait(&word, observed);
            if (ready()) return;
        }
    }
    static void wake(std::uint32_t& word, std::uint32_t& flag) {
        std::atomic_signal_fence(std::memory_order_seq_cst);  // the light side of the barrier
        if (at(flag).load(std::memory_order_relaxed) && at(flag).exchange(0)) futex_wake(&word);
    }

    void push(const void* src, std::size_t n) {
        const std::uint32_t t = tail;
        if (t - seen_head == Slots) {
            wait(head, producer_sleeps,
                 [&] { return t - (seen_head = at(head).load(std::memory_order_acquire)) < Slots; });
        }
        std::memcpy(slots[t % Slots].data(), src, n);
        at(tail).store(t + 1, std::memory_order_release);
        wake(tail, consumer_sleeps);
    }
    void pop(void* dst, std::size_t n) {
        const std::uint32_t h = head;
        if (h == seen_tail) {
            wait(tail, consumer_sleeps, [&] { return (seen_tail = at(tail).load(std::memory_order_acquire)) != h; });
        }
        std::memcpy(dst, slots[h % Slots].data(), n);
        at(head).store(h + 1, std::memory_order_release);
        wake(head, producer_sleeps);
    }
};

using Ring64 = RawRing<64, kBoundedItems>;
using Ring1MiB = RawRing<(1 << 20), 4>;

// ---------------------------------------------------------------------------------------------
// 64-byte messages, 1 producer -> 1 consumer. The child produces exactly as many items as the
// parent's loop will take (state.max_iterations), so nothing is left over.

void BM_Queue64_Polyproc(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        mp::Queue<Message64> q(kBoundedItems);
        const auto n = state.max_iterations;
        mp::Process child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            Message64 m{};
            for (benchmark::IterationCount i = 0; i < n; ++i) {
                m.bytes[0] = static_cast<char>(i);
                q.put(m);
            }
        });
        child.set_daemon(true);
        bench::ProcessGuard guard(child, [] {});
        child.start();
        for (auto _ : state) benchmark::DoNotOptimize(q.get());
        state.SetItemsProcessed(state.iterations());
        bench::finish_child(state, child);
    });
}

void BM_Queue64_RawSpscRing(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        if (!membarrier_registered()) throw std::runtime_error("membarrier unavailable");
        Shared<Ring64> ring;
        const auto n = state.max_iterations;
        bench::RawChild child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            membarrier_registered();
            Message64 m{};
            for (benchmark::IterationCount i = 0; i < n; ++i) {
                m.bytes[0] = static_cast<char>(i);
                ring->push(&m, sizeof m);
            }
        });
        Message64 m;
        for (auto _ : state) {
            ring->pop(&m, sizeof m);
            benchmark::DoNotOptimize(m);
        }
        state.SetItemsProcessed(state.iterations());
        bench::finish_child(state, child);
    });
}

#if defined(POLYPROC_BENCH_BOOST)
namespace bip = boost::interprocess;

// A named Boost message_queue, removed again at scope exit.
struct BoostQueue {
    std::string name = "polyproc_bench_" + std::to_string(::getpid());
    bip::message_queue mq;
    BoostQueue(std::size_t messages, std::size_t size)
        : mq((bip::message_queue::remove(name.c_str()), bip::create_only), name.c_str(), messages, size) {}
    ~BoostQueue() { bip::message_queue::remove(name.c_str()); }
};

void BM_Queue64_BoostMessageQueue(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        BoostQueue q(kBoundedItems, sizeof(Message64));
        const auto n = state.max_iterations;
        bench::RawChild child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            Message64 m{};
            for (benchmark::IterationCount i = 0; i < n; ++i) {
                m.bytes[0] = static_cast<char>(i);
                q.mq.send(&m, sizeof m, 0);
            }
        });
        Message64 m;
        bip::message_queue::size_type got = 0;
        unsigned priority = 0;
        for (auto _ : state) {
            q.mq.receive(&m, sizeof m, got, priority);
            benchmark::DoNotOptimize(m);
        }
        state.SetItemsProcessed(state.iterations());
        bench::finish_child(state, child);
    });
}
#endif

// ---------------------------------------------------------------------------------------------
// Round trip: put into `request`, get the reply from `reply`.

void BM_QueueRoundTrip_Polyproc(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        mp::Queue<std::int64_t> request, reply;
        mp::Process child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            for (std::int64_t x; (x = request.get()) >= 0;) reply.put(x + 1);
        });
        child.set_daemon(true);
        bench::ProcessGuard guard(child, [&] { request.put(-1); });
        child.start();
        std::int64_t i = 0;
        for (auto _ : state) {
            request.put(i);
            if (reply.get() != i + 1) throw std::runtime_error("wrong reply");
            ++i;
        }
        state.SetItemsProcessed(state.iterations());
        request.put(-1);
        bench::finish_child(state, child);
    });
}

void BM_QueueRoundTrip_RawSpscRing(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        if (!membarrier_registered()) throw std::runtime_error("membarrier unavailable");
        Shared<RawRing<8, 64>> request, reply;
        bench::RawChild child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            membarrier_registered();
            for (std::int64_t x;;) {
                request->pop(&x, 8);
                if (x < 0) return;
                ++x;
                reply->push(&x, 8);
            }
        });
        std::int64_t i = 0, r = 0;
        for (auto _ : state) {
            request->push(&i, 8);
            reply->pop(&r, 8);
            if (r != i + 1) throw std::runtime_error("wrong reply");
            ++i;
        }
        state.SetItemsProcessed(state.iterations());
        const std::int64_t stop = -1;
        request->push(&stop, 8);
        bench::finish_child(state, child);
    });
}

// ---------------------------------------------------------------------------------------------
// 4 producers x 4 consumers, 64-byte items. One iteration moves kItems items; the clock runs from
// the go signal until every consumer has its share.

constexpr int kSide = 4;
constexpr std::int64_t kItems = 400000;

template <class Queue>
void run_4x4(benchmark::State& state, Queue& q) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            mp::Event go;
            std::vector<mp::Process> ps;
            for (int i = 0; i < kSide; ++i) {
                ps.emplace_back([&] {
                    go.wait();
                    Message64 m{};
                    for (std::int64_t k = 0; k < kItems / kSide; ++k) q.put(m);
                });
                ps.emplace_back([&] {
                    go.wait();
                    for (std::int64_t k = 0; k < kItems / kSide; ++k) benchmark::DoNotOptimize(q.get());
                });
            }
            for (auto& p : ps) {
                p.set_daemon(true);
                p.start();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // all 8 waiting on `go`
            const auto start = std::chrono::steady_clock::now();
            go.set();
            for (auto& p : ps) p.join();
            state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            for (auto& p : ps)
                if (p.exitcode() != 0) throw std::runtime_error("a producer or consumer failed");
        }
        state.SetItemsProcessed(state.iterations() * kItems);
    });
}

void BM_Queue64_4x4_Polyproc(benchmark::State& state) {
    mp::Queue<Message64> q(kBoundedItems);
    run_4x4(state, q);
}

#if defined(POLYPROC_BENCH_BOOST)
// The same put/get shape over a Boost message_queue.
struct BoostAdapter {
    BoostQueue q{kBoundedItems, sizeof(Message64)};
    void put(const Message64& m) { q.mq.send(&m, sizeof m, 0); }
    Message64 get() {
        Message64 m;
        bip::message_queue::size_type got = 0;
        unsigned priority = 0;
        q.mq.receive(&m, sizeof m, got, priority);
        return m;
    }
};

void BM_Queue64_4x4_BoostMessageQueue(benchmark::State& state) {
    BoostAdapter q;
    run_4x4(state, q);
}
#endif

// ---------------------------------------------------------------------------------------------
// 1 MiB messages, 1 producer -> 1 consumer, bytes per second.

void BM_Queue1MiB_Polyproc(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        mp::Queue<std::vector<char>> q(4);
        const auto n = state.max_iterations;
        mp::Process child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            const std::vector<char> payload(1 << 20, 'x');
            for (benchmark::IterationCount i = 0; i < n; ++i) q.put(payload);
        });
        child.set_daemon(true);
        bench::ProcessGuard guard(child, [] {});
        child.start();
        for (auto _ : state) {
            auto v = q.get();
            benchmark::DoNotOptimize(v.data());
        }
        state.SetBytesProcessed(state.iterations() * (1 << 20));
        bench::finish_child(state, child);
    });
}

void BM_Queue1MiB_RawSpscRing(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        if (!membarrier_registered()) throw std::runtime_error("membarrier unavailable");
        Shared<Ring1MiB> ring;
        const auto n = state.max_iterations;
        bench::RawChild child([&, cpu = pin.child_cpu()] {
            bench::pin_to(cpu);
            membarrier_registered();
            const std::vector<char> payload(1 << 20, 'x');
            for (benchmark::IterationCount i = 0; i < n; ++i) ring->push(payload.data(), payload.size());
        });
        std::vector<char> out(1 << 20);
        for (auto _ : state) {
            ring->pop(out.data(), out.size());
            benchmark::DoNotOptimize(out.data());
        }
        state.SetBytesProcessed(state.iterations() * (1 << 20));
        bench::finish_child(state, child);
    });
}

const bool registered = [] {
    using bench::register_placed;
    register_placed("BM_Queue64_Polyproc", BM_Queue64_Polyproc, benchmark::kNanosecond);
    register_placed("BM_Queue64_RawSpscRing", BM_Queue64_RawSpscRing, benchmark::kNanosecond);
#if defined(POLYPROC_BENCH_BOOST)
    register_placed("BM_Queue64_BoostMessageQueue", BM_Queue64_BoostMessageQueue, benchmark::kNanosecond);
#endif
    register_placed("BM_QueueRoundTrip_Polyproc", BM_QueueRoundTrip_Polyproc, benchmark::kMicrosecond);
    register_placed("BM_QueueRoundTrip_RawSpscRing", BM_QueueRoundTrip_RawSpscRing, benchmark::kMicrosecond);
    register_placed("BM_Queue1MiB_Polyproc", BM_Queue1MiB_Polyproc, benchmark::kMicrosecond);
    register_placed("BM_Queue1MiB_RawSpscRing", BM_Queue1MiB_RawSpscRing, benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Queue64_4x4_Polyproc", BM_Queue64_4x4_Polyproc)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
#if defined(POLYPROC_BENCH_BOOST)
    benchmark::RegisterBenchmark("BM_Queue64_4x4_BoostMessageQueue", BM_Queue64_4x4_BoostMessageQueue)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
#endif
    return true;
}();

}  // namespace
