// What the pool's parts share: the task and result records (their format is in docs/design.md,
// "Pool task and result records"; a result record is also what a backend hands the engine), how a
// worker runs a task, and the per-worker slots in shared memory that LocalPoolBackend's supervisor
// watches. Included by every pool_*.cpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <span>
#include <vector>

#include <sys/types.h>

#include "polyproc/queues.hpp"

namespace polyproc::detail {

enum class TaskKind : std::uint32_t { run = 0, stop = 1 };
struct TaskHeader {
    std::uint64_t ordinal;
    std::uint64_t runner;  // code offset of the TaskRunner
    std::int64_t timeout_ns;
    TaskKind kind;
    std::uint32_t reserved;
};

// lost: the worker died running the task (pid, exitcode); a payload, when there is one, is text
// saying where it ran (" on MPI rank 2 (host 'b')"). gone: a worker that cannot say how it ended
// (an MPI rank that stopped answering, or whose connection closed); the payload is why, as text.
enum class Status : std::uint32_t { ok, raised, lost, timed_out, shutdown, gone };
struct ResultHeader {
    std::uint64_t ordinal;
    Status status;
    std::int32_t pid;
    std::int32_t exitcode;
    std::uint32_t run_us;  // how long the task ran, in µs (saturated); 0 when it did not run here
};

enum class SlotState : std::uint32_t { free, starting, ready, retired, finished, init_failed };

// One per worker position, in shared memory: what the worker is doing, for the supervisor.
struct WorkerSlot {
    std::atomic<std::uint64_t> task{0};        // ordinal + 1 of the task taken; 0 when none
    std::atomic<std::int64_t> deadline_ns{0};  // CLOCK_MONOTONIC; 0 = no timeout
    std::atomic<SlotState> state{SlotState::free};
    std::atomic<bool> waiting{false};  // in get(), waiting for a task (cleared by reap if it died there)
    char error[240]{};  // what the initializer threw
    char crashed_in[200]{};  // the function a fatal signal came in (faulthandler.hpp), or empty
};

struct PoolShared {
    std::atomic<std::int32_t> live{0};  // workers started and not yet gone or retired
};

// How a worker of any backend runs a task: `out` becomes its result record, a ResultHeader
// (Status::ok, or raised with the exception captured) then the payload. pool_worker.cpp.
void execute_task(const TaskHeader& task, std::span<const std::byte> body, pid_t worker, std::vector<std::byte>& out);
// The result record of the exception being handled, for `task`.
void result_of_exception(const TaskHeader& task, pid_t worker, std::vector<std::byte>& out);

inline std::int64_t monotonic_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline void put_record(QueueCore& q, std::span<const std::byte> a, std::span<const std::byte> b = {}) {
    std::byte* out = q.begin_put(a.size() + b.size(), true, {});
    std::memcpy(out, a.data(), a.size());
    if (!b.empty()) std::memcpy(out + a.size(), b.data(), b.size());
    q.end_put(true);
}

template <class H>
std::span<const std::byte> bytes_of(const H& h) {
    return std::as_bytes(std::span<const H, 1>(&h, 1));
}

// The pool's header in shared memory, then one WorkerSlot per possible worker.
static_assert(sizeof(PoolShared) <= 64);

}  // namespace polyproc::detail
