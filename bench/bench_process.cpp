// bench/bench_process.cpp — process start + join: mp::Process with an empty target against the raw
// fork() + _exit(0) + waitpid() it is built on. CPython's figure comes from bench/cpython_bench.py.
#include <stdexcept>

#include "bench_common.hpp"

namespace {

// mp::Process p(empty); p.start(); p.join(); — construction included, as in Python's
// Process(target=f).start(); join().
void BM_ProcessStartJoin_Polyproc(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            mp::Process p([] {});
            bench::ProcessGuard guard(p, [] {});  // a few ns: the child is already reaped
            p.start();
            p.join();
            if (p.exitcode() != 0) throw std::runtime_error("child exited with a non-zero code");
        }
        state.SetItemsProcessed(state.iterations());
    });
}

// pid = fork(); child: _exit(0); parent: waitpid(pid).
void BM_ProcessStartJoin_RawForkWaitpid(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            const pid_t pid = ::fork();
            if (pid < 0) bench::throw_errno("fork");
            if (pid == 0) ::_exit(0);
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) bench::throw_errno("waitpid");
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("child failed");
        }
        state.SetItemsProcessed(state.iterations());
    });
}

}  // namespace

BENCHMARK(BM_ProcessStartJoin_Polyproc)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ProcessStartJoin_RawForkWaitpid)->UseRealTime()->Unit(benchmark::kMicrosecond);
