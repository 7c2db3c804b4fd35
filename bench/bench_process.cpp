// bench/bench_process.cpp — process start + join per start method: mp::Process with an empty target
// started through mp::get_context("fork" / "spawn" / "forkserver"), against the raw OS primitive
// each is built on: fork() + _exit(0) + waitpid() for fork and forkserver, posix_spawn() of this
// very executable exiting at the top of main() + waitpid() for spawn. CPython's figures come from
// bench/cpython_bench.py.
#include <spawn.h>

#include <climits>
#include <stdexcept>
#include <string>

#include <polyproc/context.hpp>

#include "bench_common.hpp"

extern char** environ;

namespace {

void empty_target() {}

// One start + join of a process running empty_target through ctx, construction included, as in
// Python's ctx.Process(target=f).start(); join().
void start_join_once(const mp::Context& ctx) {
    mp::Process p = ctx.Process(&empty_target);
    bench::ProcessGuard guard(p, [] {});  // a few ns: the child is already reaped
    p.start();
    p.join();
    if (p.exitcode() != 0) throw std::runtime_error("child exited with a non-zero code");
}

// ctx = mp::get_context(method); p = ctx.Process(empty); p.start(); p.join(). The steady state:
// one throw-away process first, outside the timing (the forkserver's server starts on first use).
void BM_ProcessStartJoin_Polyproc(benchmark::State& state, const char* method) {
    bench::run_guarded(state, [&] {
        const mp::Context ctx = mp::get_context(method);
        start_join_once(ctx);
        for (auto _ : state) start_join_once(ctx);
        state.SetItemsProcessed(state.iterations());
    });
}

void wait_exit_0(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) bench::throw_errno("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("child failed");
}

// pid = fork(); child: _exit(0); parent: waitpid(pid).
void BM_ProcessStartJoin_RawForkWaitpid(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        for (auto _ : state) {
            const pid_t pid = ::fork();
            if (pid < 0) bench::throw_errno("fork");
            if (pid == 0) ::_exit(0);
            wait_exit_0(pid);
        }
        state.SetItemsProcessed(state.iterations());
    });
}

// posix_spawn(this executable, --bench-raw-exit): a fresh run of the same binary (loader, shared
// libraries, static initialisers) that _exit(0)s at the top of main() (bench_main.cpp); then
// waitpid(pid). What a spawn start costs at the least.
void BM_ProcessStartJoin_RawPosixSpawnSelf(benchmark::State& state) {
    bench::run_guarded(state, [&] {
        char exe[PATH_MAX];
        const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n < 0) bench::throw_errno("readlink /proc/self/exe");
        exe[n] = '\0';
        std::string flag = bench::kRawExitFlag;
        char* argv[] = {exe, flag.data(), nullptr};
        for (auto _ : state) {
            pid_t pid = -1;
            if (const int rc = ::posix_spawn(&pid, exe, nullptr, nullptr, argv, environ); rc != 0) {
                errno = rc;
                bench::throw_errno("posix_spawn");
            }
            wait_exit_0(pid);
        }
        state.SetItemsProcessed(state.iterations());
    });
}

}  // namespace

BENCHMARK_CAPTURE(BM_ProcessStartJoin_Polyproc, fork, "fork")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ProcessStartJoin_Polyproc, spawn, "spawn")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ProcessStartJoin_Polyproc, forkserver, "forkserver")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ProcessStartJoin_RawForkWaitpid)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ProcessStartJoin_RawPosixSpawnSelf)->UseRealTime()->Unit(benchmark::kMicrosecond);
