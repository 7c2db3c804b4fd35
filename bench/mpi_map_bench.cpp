// The MPI pool's figures (tools/bench-table --filter MPI runs it under mpiexec, beside bench/mpi4py_map_bench.py
// under the same mpiexec): map of a trivial function, tasks per second, at chunksize 1 and at
// Python's default chunksize; and a CPU-bound map's efficiency with every worker rank busy.
// Prints one JSON object per line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <vector>

#include <polyproc/mpi.hpp>
#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using Clock = std::chrono::steady_clock;

namespace {
long twice(long x) { return 2 * x; }
// A fixed amount of arithmetic (not "until a deadline": a task slowed by another process on its
// CPU must take longer, or the efficiency could not show it).
long spin(long rounds) {
    long x = 0;
    for (long r = 0; r < rounds; ++r)
        for (int i = 0; i < 1000; ++i) x += i ^ (x >> 3);
    return x & 1;
}
double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

int main(int argc, char** argv) {
    mp::mpi::init(argc, argv);
    // Tasks per map: at chunksize 1, and at Python's default chunksize (more: a map of those is short).
    const long n1 = argc > 1 ? std::atol(argv[1]) : 5000;
    const long n_default = argc > 2 ? std::atol(argv[2]) : 200000;
    const int reps = argc > 3 ? std::atoi(argv[3]) : 3;
    mp::Pool pool(mp::PoolOptions{.backend = mp::mpi::world()});
    const std::size_t workers = pool.size();
    for (const bool chunked : {false, true}) {
        const long n = chunked ? n_default : n1;
        std::vector<long> xs(static_cast<std::size_t>(n));
        std::iota(xs.begin(), xs.end(), 0L);
        const std::size_t chunksize =
            chunked ? std::max<std::size_t>(1, (xs.size() + 4 * workers - 1) / (4 * workers)) : 1;
        double best = 1e9;
        for (int r = 0; r < reps; ++r) {
            const auto t0 = Clock::now();
            const auto out = pool.map(twice, xs, chunksize);
            best = std::min(best, seconds(t0));
            if (out.back() != 2 * (n - 1)) return 1;
        }
        std::printf("{\"bench\": \"map_tasks_per_s\", \"chunksize\": %zu, \"value\": %.0f}\n", chunksize,
                    double(n) / best);
    }
    // CPU-bound: 8 tasks of about 50 ms each per worker. The ideal is the time of one task here
    // (rank 0 alone) times the tasks, over the workers.
    long rounds = 1000;
    double one = 0;
    for (;;) {
        const auto t0 = Clock::now();
        volatile long sink = spin(rounds);
        (void)sink;
        one = seconds(t0);
        if (one >= 0.02) break;
        rounds *= 2;
    }
    rounds = static_cast<long>(double(rounds) * 0.050 / one);
    const auto t1 = Clock::now();
    volatile long sink = spin(rounds);
    (void)sink;
    one = seconds(t1);
    const std::vector<long> jobs(8 * workers, rounds);
    double best = 1e9;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        pool.map(spin, jobs, 1);
        best = std::min(best, seconds(t0));
    }
    const double ideal = double(jobs.size()) * one / double(workers);
    std::printf("{\"bench\": \"cpu_bound_efficiency\", \"workers\": %zu, \"value\": %.3f}\n", workers, ideal / best);
}
