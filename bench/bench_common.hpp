// bench/bench_common.hpp — helpers shared by the benchmarks: exact reads and writes on raw
// descriptors, raw fork children that are always reaped, and a guard that never leaves a
// polyproc child behind.
#pragma once

#include <benchmark/benchmark.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

namespace bench {

// argv[1] that makes polyproc_bench _exit(0) at the top of main(), before mp::init: the raw
// spawn baseline (bench_process.cpp) starts the executable with it.
inline constexpr const char* kRawExitFlag = "--bench-raw-exit";

[[noreturn]] inline void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// Reads exactly n bytes. false on EOF before the first byte; throws on error or EOF mid-way.
inline bool read_exact(int fd, void* buf, std::size_t n) {
    auto* p = static_cast<char*>(buf);
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::read(fd, p + done, n - done);
        if (r > 0) {
            done += static_cast<std::size_t>(r);
        } else if (r == 0) {
            if (done == 0) return false;
            throw std::runtime_error("read_exact: EOF in the middle of a message");
        } else if (errno != EINTR) {
            throw_errno("read");
        }
    }
    return true;
}

// Writes every byte of the iovecs, continuing partial writes.
inline void writev_exact(int fd, iovec* iov, int count) {
    while (count > 0) {
        const ssize_t w = ::writev(fd, iov, count);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw_errno("writev");
        }
        auto left = static_cast<std::size_t>(w);
        while (count > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {
            iov->iov_base = static_cast<char*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
}

inline void write_exact(int fd, const void* buf, std::size_t n) {
    iovec v{const_cast<void*>(buf), n};
    writev_exact(fd, &v, 1);
}

inline void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// A T constructed in anonymous shared memory (MAP_SHARED: a fork child sees the same object).
template <class T>
class Shared {
public:
    Shared() {
        void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) bench::throw_errno("mmap");
        obj_ = ::new (p) T();
    }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    ~Shared() { ::munmap(obj_, sizeof(T)); }
    T& operator*() const { return *obj_; }
    T* operator->() const { return obj_; }

private:
    T* obj_;
};

// Where the two processes of a communication benchmark run. Left to the scheduler, a 2-CPU machine
// puts them on one CPU in some runs and on two in others, and the figures differ by up to 10x; so
// the benchmarks pin them: on two different CPUs (the wake-up crosses CPUs) or both on one.
enum class Placement { cross_cpu, same_cpu };

inline const char* placement_name(Placement p) { return p == Placement::cross_cpu ? "cross_cpu" : "same_cpu"; }

// Registers fn(state, placement) as "<name>/<placement>" (e.g. BM_EventPingPong_Polyproc/cross_cpu),
// timed in real time: the work happens in two processes.
inline void register_placed(const std::string& name, void (*fn)(benchmark::State&, Placement), benchmark::TimeUnit unit,
                            Placement placement = Placement::cross_cpu) {
    benchmark::RegisterBenchmark((name + "/" + placement_name(placement)).c_str(), fn, placement)
        ->UseRealTime()
        ->Unit(unit);
}

// The CPUs this thread may run on, ascending.
inline std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) throw_errno("sched_getaffinity");
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) cpus.push_back(c);
    return cpus;
}

inline void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("sched_setaffinity");
}

// Pins the calling thread (the parent) for the scope and tells which CPU the child must pin itself
// to; the previous affinity comes back at scope exit.
class PinnedPair {
public:
    explicit PinnedPair(Placement p) {
        CPU_ZERO(&saved_);
        if (::sched_getaffinity(0, sizeof saved_, &saved_) != 0) throw_errno("sched_getaffinity");
        const std::vector<int> cpus = allowed_cpus();
        if (cpus.empty() || (p == Placement::cross_cpu && cpus.size() < 2))
            throw std::runtime_error("this placement needs 2 CPUs");
        parent_cpu_ = cpus[0];
        child_cpu_ = p == Placement::cross_cpu ? cpus[1] : cpus[0];
        pin_to(parent_cpu_);
    }
    PinnedPair(const PinnedPair&) = delete;
    PinnedPair& operator=(const PinnedPair&) = delete;
    ~PinnedPair() { ::sched_setaffinity(0, sizeof saved_, &saved_); }
    int child_cpu() const { return child_cpu_; }

private:
    cpu_set_t saved_;
    int parent_cpu_ = -1;
    int child_cpu_ = -1;
};

// Runs f at scope exit (declare it after the objects whose cleanup must come later).
template <class F>
class Defer {
public:
    explicit Defer(F f) : f_(std::move(f)) {}
    Defer(const Defer&) = delete;
    Defer& operator=(const Defer&) = delete;
    ~Defer() {
        try {
            f_();
        } catch (...) {
        }
    }

private:
    F f_;
};

// A raw fork() child. The child runs body() and _exit()s (0, or 1 if body threw); it is killed by
// the kernel if the benchmark process dies. The destructor reaps it: after `grace` it is SIGKILLed.
class RawChild {
public:
    template <class F>
    explicit RawChild(F&& body) {
        std::fflush(nullptr);  // nothing buffered may be written twice
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(1);
            int code = 0;
            try {
                body();
            } catch (...) {
                code = 1;
            }
            ::_exit(code);
        }
    }
    RawChild(const RawChild&) = delete;
    RawChild& operator=(const RawChild&) = delete;
    ~RawChild() { reap(std::chrono::seconds(2)); }

    // Waits up to `grace` for the child to exit, then kills it. Returns its wait status.
    int reap(std::chrono::milliseconds grace) noexcept {
        if (pid_ <= 0) return status_;
        const auto deadline = std::chrono::steady_clock::now() + grace;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
            if (r == pid_ || (r < 0 && errno != EINTR)) break;
            if (std::chrono::steady_clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
                }
                break;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        pid_ = -1;
        return status_;
    }

private:
    pid_t pid_ = -1;
    int status_ = 0;
};

// Makes sure a started mp::Process is gone when the scope ends: runs `stop` (e.g. tell the child to
// quit, close our end), joins for up to 2 s, then kills and joins.
template <class Stop>
class ProcessGuard {
public:
    ProcessGuard(mp::Process& p, Stop stop) : p_(p), stop_(std::move(stop)) {}
    ProcessGuard(const ProcessGuard&) = delete;
    ProcessGuard& operator=(const ProcessGuard&) = delete;
    ~ProcessGuard() {
        try {
            if (p_.pid() == 0) return;  // never started
            if (p_.is_alive()) stop_();
        } catch (...) {
        }
        try {
            p_.join(std::chrono::seconds(2));
            if (p_.is_alive()) {
                p_.kill();
                p_.join();
            }
        } catch (...) {
        }
    }

private:
    mp::Process& p_;
    Stop stop_;
};

// Runs a benchmark body, turning an exception into a reported benchmark error (the guards above
// have already cleaned up the children by then).
template <class F>
void run_guarded(benchmark::State& state, F&& body) {
    try {
        body();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    } catch (...) {
        state.SkipWithError("unknown exception");
    }
}

// Ends a benchmark's child: waits (bounded) and marks the run failed unless it exited cleanly.
inline void finish_child(benchmark::State& state, mp::Process& child) {
    child.join(std::chrono::seconds(5));
    if (child.exitcode() != 0) state.SkipWithError("the child did not exit cleanly");
}

inline void finish_child(benchmark::State& state, RawChild& child) {
    const int status = child.reap(std::chrono::seconds(5));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("the child did not exit cleanly");
}

}  // namespace bench
