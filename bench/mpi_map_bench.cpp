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
// About `ms` milliseconds of arithmetic.
long spin(long ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    long x = 0;
    while (Clock::now() < end)
        for (int i = 0; i < 1000; ++i) x += i ^ (x >> 3);
    return x & 1;
}
double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

int main(int argc, char** argv) {
    mp::mpi::init(argc, argv);
    const long n = argc > 1 ? std::atol(argv[1]) : 20000;
    const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
    mp::Pool pool(mp::PoolOptions{.backend = mp::mpi::world()});
    const std::size_t workers = pool.size();
    std::vector<long> xs(static_cast<std::size_t>(n));
    std::iota(xs.begin(), xs.end(), 0L);
    const std::size_t python_default = std::max<std::size_t>(1, (xs.size() + 4 * workers - 1) / (4 * workers));
    for (const std::size_t chunksize : {std::size_t(1), python_default}) {
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
    // CPU-bound: 8 tasks of 50 ms per worker; ideal = tasks x 50 ms / workers.
    const std::vector<long> jobs(8 * workers, 50);
    double best = 1e9;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        pool.map(spin, jobs, 1);
        best = std::min(best, seconds(t0));
    }
    const double ideal = double(jobs.size()) * 0.050 / double(workers);
    std::printf("{\"bench\": \"cpu_bound_efficiency\", \"workers\": %zu, \"value\": %.3f}\n", workers, ideal / best);
}
