// bench/bench_managers.cpp — a manager's proxies: dict set and get, list.append, two processes
// writing one dict, and Manager() start+shutdown. The raw comparisons are a socketpair round trip
// (bench_connection.cpp: what each proxy call is at least) and a Process start+join; CPython's
// figures come from bench/cpython_bench.py doing the same with its Manager().
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "bench_common.hpp"

namespace {

// d[i % 100] = i, from the main process (the server is another process, as always).
void BM_ManagerDictSet_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        auto manager = mp::Manager();
        auto d = manager.dict<int, int>();
        for (int i = 0; i < 100; ++i) d[i] = i;  // warm-up: the channel is open, the keys exist
        int i = 0;
        for (auto _ : state) {
            d[i % 100] = i;
            ++i;
        }
        state.SetItemsProcessed(state.iterations());
    });
}

// Pins every thread of process `pid` to `cpu` (threads it starts later inherit it).
void pin_process(pid_t pid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
        ::sched_setaffinity(std::stoi(task.path().filename().string()), sizeof set, &set);
}

// d[i % 100] = i with the client and the server pinned as `placement` says.
void BM_ManagerDictSetPinned_Polyproc(benchmark::State& state, bench::Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pinned(placement);
        auto manager = mp::Manager();
        pin_process(*manager.pid(), pinned.child_cpu());
        auto d = manager.dict<int, int>();
        for (int i = 0; i < 100; ++i) d[i] = i;
        int i = 0;
        for (auto _ : state) {
            d[i % 100] = i;
            ++i;
        }
        state.SetItemsProcessed(state.iterations());
    });
}
[[maybe_unused]] const bool registered = [] {
    for (auto p : {bench::Placement::cross_cpu, bench::Placement::same_cpu})
        bench::register_placed("BM_ManagerDictSetPinned_Polyproc", BM_ManagerDictSetPinned_Polyproc,
                               benchmark::kMicrosecond, p);
    return true;
}();

// v = d[i % 100]
void BM_ManagerDictGet_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        auto manager = mp::Manager();
        auto d = manager.dict<int, int>();
        for (int i = 0; i < 100; ++i) d[i] = i;
        int i = 0;
        for (auto _ : state) {
            const int v = d[i % 100];
            if (v != i % 100) throw std::runtime_error("wrong value");
            ++i;
        }
        state.SetItemsProcessed(state.iterations());
    });
}

// l.append(i), the list cleared every 10 000 appends (outside the timing).
void BM_ManagerListAppend_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        auto manager = mp::Manager();
        auto l = manager.list<int>();
        int i = 0;
        for (auto _ : state) {
            l.append(i);
            if (++i % 10'000 == 0) {
                state.PauseTiming();
                l.clear();
                state.ResumeTiming();
            }
        }
        state.SetItemsProcessed(state.iterations());
    });
}

// q.put(i); q.get(), timed, after one untimed pair.
void queue_put_get(benchmark::State& state, const mp::QueueProxy<int>& q) {
    q.put(0);
    q.get();
    int i = 0;
    for (auto _ : state) {
        q.put(i);
        if (q.get() != i) throw std::runtime_error("wrong item");
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}

// q.put(i); q.get() on a manager Queue, from the main process.
void BM_ManagerQueuePutGet_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        auto manager = mp::Manager();
        queue_put_get(state, manager.Queue<int>());
    });
}

// lock.acquire(); lock.release() on a manager Lock.
void BM_ManagerLockAcquireRelease_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        auto manager = mp::Manager();
        auto lock = manager.Lock();
        lock.acquire();
        lock.release();
        for (auto _ : state) {
            lock.acquire();
            lock.release();
        }
        state.SetItemsProcessed(state.iterations());
    });
}

void write_keys(mp::DictProxy<int, int> d, mp::Connection go, int who, int count) {
    go.recv<int>();
    for (int i = 0; i < count; ++i) d[who * 1'000'000 + i % 1000] = i;
    go.send(1);
}

// Two child processes each set 2 000 keys of one dict; timed from the go signal until both are
// done. Items are the sets of both.
void BM_ManagerTwoWriters_Polyproc(benchmark::State& state) {
    constexpr int kEach = 2000;
    bench::run_guarded(state, [&] {
        auto manager = mp::Manager();
        auto d = manager.dict<int, int>();
        for (auto _ : state) {
            auto [a_here, a_there] = mp::Pipe();
            auto [b_here, b_there] = mp::Pipe();
            mp::Process a(write_keys, d, std::move(a_there), 1, kEach), b(write_keys, d, std::move(b_there), 2, kEach);
            a.start();
            b.start();
            d[0] = 0;  // both children are started; the first call of each opens its channel in the timing
            const auto start = std::chrono::steady_clock::now();
            a_here.send(1);
            b_here.send(1);
            a_here.recv<int>();
            b_here.recv<int>();
            state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            a.join();
            b.join();
        }
        state.SetItemsProcessed(state.iterations() * 2 * kEach);
    });
}

// mp::Manager(), then shutdown() (its destructor).
void BM_ManagerStartShutdown_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            auto manager = mp::Manager();
            manager.shutdown();
        }
    });
}

}  // namespace

// A remote manager's Queue over TCP loopback, as the distributed-processes tutorial uses it: a
// BaseManager on 127.0.0.1 gives its one Queue (register_shared); a client that connected to it
// does put(i); get().
void BM_RemoteQueuePutGet_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        mp::BaseManager master(mp::InetAddress{"127.0.0.1", 0}, std::string("bench"));
        master.register_shared("get_queue", "Queue");
        master.start();
        mp::BaseManager client(master.address(), std::string("bench"));
        client.connect();
        mp::QueueProxy<int> q(client.create("get_queue"));
        queue_put_get(state, q);
    });
}

// The tutorial's master/worker shape: a master on TCP loopback with a task queue and a result
// queue, two worker processes that connect to it and turn each task n into n * n; timed from the
// first task put until the last result is got. Items are tasks.
void remote_worker(std::uint16_t port, mp::Connection go) {
    mp::BaseManager m(mp::InetAddress{"127.0.0.1", port}, std::string("bench"));
    m.connect();
    mp::QueueProxy<long long> tasks(m.create("get_task_queue"));
    mp::QueueProxy<long long> results(m.create("get_result_queue"));
    go.send(1);
    for (;;) {
        const long long n = tasks.get();
        if (n < 0) return;
        results.put(n * n);
    }
}
void BM_RemoteTaskMaster_TwoWorkers_Polyproc(benchmark::State& state) {
    constexpr int kTasks = 2000;
    bench::run_guarded(state, [&] {
        mp::BaseManager master(mp::InetAddress{"127.0.0.1", 0}, std::string("bench"));
        master.register_shared("get_task_queue", "Queue");
        master.register_shared("get_result_queue", "Queue");
        master.start();
        mp::QueueProxy<long long> tasks(master.create("get_task_queue"));
        mp::QueueProxy<long long> results(master.create("get_result_queue"));
        std::vector<mp::Process> workers;
        for (int w = 0; w < 2; ++w) {
            auto [here, there] = mp::Pipe();
            workers.emplace_back(remote_worker, std::get<mp::InetAddress>(master.address()).port, std::move(there));
            workers.back().start();
            here.recv<int>();  // connected
        }
        bench::Defer stop([&] {
            for (auto& w : workers) {
                if (w.is_alive()) w.kill();
                w.join();
            }
        });
        for (auto _ : state) {
            const auto started = std::chrono::steady_clock::now();
            for (long long n = 0; n < kTasks; ++n) tasks.put(n);
            long long sum = 0;
            for (int i = 0; i < kTasks; ++i) sum += results.get();
            if (sum != static_cast<long long>(kTasks - 1) * kTasks * (2 * kTasks - 1) / 6)
                throw std::runtime_error("wrong results");
            state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        }
        for (std::size_t w = 0; w < workers.size(); ++w) tasks.put(-1);
        for (auto& w : workers) w.join(std::chrono::seconds(5));
        state.SetItemsProcessed(state.iterations() * kTasks);
    });
}

BENCHMARK(BM_RemoteQueuePutGet_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RemoteTaskMaster_TwoWorkers_Polyproc)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ManagerDictSet_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ManagerDictGet_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ManagerListAppend_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ManagerQueuePutGet_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ManagerLockAcquireRelease_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ManagerTwoWriters_Polyproc)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ManagerStartShutdown_Polyproc)->UseRealTime()->Unit(benchmark::kMillisecond);
