// The seam between the pool engine and where its tasks run.
//
// The engine (PoolCore, pool_core.hpp) is what every pool shares: jobs and their table of
// outstanding tasks, AsyncResult, callbacks, the imap window, close/join/terminate. A backend is
// where tasks go, where results come from, and which workers exist or were lost. The engine talks
// to it only through PoolBackend below; the backend asks the engine only through PoolBackend::Owner.
// Which backend a pool gets is decided in one place: make_pool_backend (pool_backend.cpp).
//
// The backends: LocalPoolBackend (pool_local.hpp), worker processes started by fork, spawn or
// forkserver, with the tasks and results on two shared-memory queues; and MpiPoolBackend
// (src/mpi/mpi_pool.hpp, the polyproc::mpi library), the worker ranks of an MPI job, reached over
// TCP, each running its tasks in a LocalPoolBackend of one worker.
//
// Ordinals. Every record a backend puts (a task, or a record of its own such as a stop) gets the
// next ordinal of a single sequence, in put order; the engine learns a task's ordinal from `admit`
// and keys its table by it. A result names the ordinal of its task. A worker that dies or is
// killed while running a task comes back as a result too (Status::lost or timed_out), so the
// engine hears of lost work the same way it hears of finished work, in one stream, in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <sys/types.h>

#include "pool_records.hpp"
#include "polyproc/pool.hpp"

namespace polyproc::detail {

// How many workers a pool keeps: `start` at first, never fewer than `min` while it runs, never
// more than `max` (min == max unless elastic).
struct WorkerCounts {
    int min, max, start;
};
WorkerCounts plan_workers(const PoolOptions& o);  // validates the options; pool_core.cpp

// A finished task (or what stands for one) as the backend hands it over: valid until end_result()
// or cancel_result().
struct ResultView {
    ResultHeader header;
    std::span<const std::byte> payload;
};

class PoolBackend {
public:
    enum class Phase { run, close, terminate };

    // What the engine answers a backend. Any thread; each call is consistent on its own.
    class Owner {
    public:
        virtual Phase phase() const = 0;
        // Closed (not terminated), and no imap is still feeding: the backend's close_workers() has
        // been (or is being) called, and no task will be admitted after it.
        virtual bool workers_released() const = 0;
        virtual bool tasks_outstanding() const = 0;  // admitted without a settled result yet
        // For a put waiting for room: once the pool terminated, throws what a submitter gets,
        // ValueError("Pool not running") or ProcessError saying why the pool broke.
        virtual void throw_if_terminated() const = 0;
        // The backend cannot go on (its workers keep failing, its supervisor failed): the engine
        // stops taking tasks and fails every pending one with ProcessError(why).
        virtual void break_pool(std::string why) noexcept = 0;

    protected:
        ~Owner() = default;
    };

    virtual ~PoolBackend() = default;

    // Starts the first workers; returns once they are started. Throws what prevented it; the
    // result stream then ends at once (a Status::shutdown result).
    virtual void start(Owner& owner) = 0;

    // Where tasks go. Writes a task record: `header` (its ordinal filled in) and a body of
    // body_size bytes written by `write`. Calls `admit(ordinal)` last, with the order of puts
    // held: it throws when the engine takes no more tasks, and then nothing is put. Waits for
    // room, holding nothing the backend's own threads need (a worker may have to be replaced
    // before there is room); throws ValueError or ProcessError once the pool terminates meanwhile.
    virtual void put_task(TaskHeader header, std::size_t body_size, BodyWriter write,
                          FunctionRef<void(std::uint64_t)> admit) = 0;
    // Closed and drained: let every worker finish once the tasks put so far are done. Waits for
    // room like put_task; throws ValueError or ProcessError when the pool terminates meanwhile.
    virtual void close_workers() = 0;

    // Where results come from: the next result, or nullopt when none is there (only when
    // !block). The last result of all is a Status::shutdown one, once join() stopped the workers
    // (or start() failed). Each begin_result is followed by end_result (taken) or cancel_result
    // (left for the next caller); callers take turns (the backend serializes them).
    virtual std::optional<ResultView> begin_result(bool block) = 0;
    virtual void end_result() = 0;
    virtual void cancel_result() = 0;
    virtual bool results_waiting() const noexcept = 0;  // a look without a lock; may be stale

    // Which workers exist.
    virtual std::size_t size() const noexcept = 0;  // workers started and not gone
    virtual std::vector<pid_t> worker_pids() const = 0;

    // The engine's phase changed, or a task was admitted while closed: look again.
    virtual void wake() noexcept = 0;
    // Waits until the backend has stopped: after close_workers(), once every worker finished;
    // after terminate, once every worker was stopped. Ends the result stream (Status::shutdown).
    virtual void join() = 0;
};

// A backend other than the local one (PoolOptions::backend): how many workers it has for these
// options (throwing mp::ValueError for options it cannot honour), and the backend itself.
class PoolBackendFactory {
public:
    virtual ~PoolBackendFactory() = default;
    virtual WorkerCounts plan(const PoolOptions& options) const = 0;
    virtual std::unique_ptr<PoolBackend> make(const PoolOptions& options, const WorkerCounts& counts) const = 0;
};

// The one place a pool's backend is chosen: PoolOptions::backend's, else LocalPoolBackend.
std::unique_ptr<PoolBackend> make_pool_backend(const PoolOptions& options, const WorkerCounts& counts);

}  // namespace polyproc::detail
