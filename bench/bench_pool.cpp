// bench/bench_pool.cpp — the Pool: trivial tasks through map (chunksize 1 and the default),
// apply_async(...).get() round trips, a CPU-bound map on 2 workers against 1, and pool start.
// The raw comparisons are the futex ping-pong of bench_synchronize.cpp (round trip) and N raw
// fork+_exit+waitpid (start); CPython's figures come from bench/cpython_bench.py, doing the same.
#include <numeric>
#include <stdexcept>
#include <vector>

#include "bench_common.hpp"

namespace {

constexpr int kWorkers = 2;

int increment(int x) { return x + 1; }

// About 2 ms of arithmetic the compiler cannot fold away.
std::uint64_t cpu_work(std::uint64_t seed) {
    std::uint64_t x = seed | 1;
    for (int i = 0; i < 2'000'000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

std::vector<int> inputs(std::size_t n) {
    std::vector<int> xs(n);
    std::iota(xs.begin(), xs.end(), 0);
    return xs;
}

void check_increments(const std::vector<int>& out) {
    if (out.empty() || out.back() != static_cast<int>(out.size())) throw std::runtime_error("wrong map result");
}

// pool.map(increment, range(n), chunksize): tasks per second.
void map_trivial(benchmark::State& state, std::size_t n, std::size_t chunksize) {
    bench::run_guarded(state, [&] {
        mp::Pool pool(kWorkers);
        const auto xs = inputs(n);
        check_increments(pool.map(increment, xs, chunksize));  // warm-up
        for (auto _ : state) check_increments(pool.map(increment, xs, chunksize));
        state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
    });
}
void BM_PoolMapTrivial_Chunksize1_Polyproc(benchmark::State& state) { map_trivial(state, 20'000, 1); }
void BM_PoolMapTrivial_DefaultChunksize_Polyproc(benchmark::State& state) { map_trivial(state, 1'000'000, 0); }

// pool.apply_async(increment, i).get(), one at a time.
void BM_PoolApplyAsyncRoundTrip_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        mp::Pool pool(kWorkers);
        int i = 0;
        for (int k = 0; k < 100; ++k) pool.apply_async(increment, k).get();
        for (auto _ : state)
            if (pool.apply_async(increment, i).get() != i + 1)
                throw std::runtime_error("wrong result");
            else
                ++i;
        state.SetItemsProcessed(state.iterations());
    });
}

// A CPU-bound map of 16 tasks (~2 ms each) on Pool(workers): tasks per second.
void cpu_bound(benchmark::State& state, int workers) {
    bench::run_guarded(state, [&] {
        mp::Pool pool(workers);
        std::vector<std::uint64_t> seeds(16);
        std::iota(seeds.begin(), seeds.end(), 1);
        pool.map(cpu_work, seeds, 1);
        for (auto _ : state) benchmark::DoNotOptimize(pool.map(cpu_work, seeds, 1));
        state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(seeds.size()));
    });
}
void BM_PoolCpuBound_TwoWorkers_Polyproc(benchmark::State& state) { cpu_bound(state, 2); }
void BM_PoolCpuBound_OneWorker_Polyproc(benchmark::State& state) { cpu_bound(state, 1); }

// Pool(2), one task per worker, close, join: what CPython's Pool(2) create + map + close costs.
void BM_PoolStart2_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            mp::Pool pool(kWorkers);
            check_increments(pool.map(increment, inputs(2), 1));
            pool.close();
            pool.join();
        }
        state.SetItemsProcessed(state.iterations());
    });
}

// N = 2 raw fork + _exit(0), then both waitpid.
void BM_PoolStart2_RawForks(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            pid_t pids[kWorkers];
            for (pid_t& pid : pids) {
                pid = ::fork();
                if (pid < 0) bench::throw_errno("fork");
                if (pid == 0) ::_exit(0);
            }
            for (pid_t pid : pids) {
                int status = 0;
                while (::waitpid(pid, &status, 0) < 0)
                    if (errno != EINTR) bench::throw_errno("waitpid");
            }
        }
        state.SetItemsProcessed(state.iterations());
    });
}

}  // namespace

BENCHMARK(BM_PoolMapTrivial_Chunksize1_Polyproc)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PoolMapTrivial_DefaultChunksize_Polyproc)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PoolApplyAsyncRoundTrip_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PoolCpuBound_TwoWorkers_Polyproc)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PoolCpuBound_OneWorker_Polyproc)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PoolStart2_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PoolStart2_RawForks)->UseRealTime()->Unit(benchmark::kMicrosecond);
