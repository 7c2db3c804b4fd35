// The worker process's side of the pool: the loop that takes tasks, runs them and puts their
// results, in a fork child, or in a spawn or forkserver child once it has mapped the pool.
#include "pool_local.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstddef>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "faulthandler.hpp"
#include "pool_records.hpp"
#include "process_internal.hpp"
#include "remote_exception.hpp"
#include "start_method.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/pool_task.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/queues.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail {

// ---- worker ---------------------------------------------------------------------------------------

void result_of_exception(const TaskHeader& task, pid_t worker, std::vector<std::byte>& out) {
    const ResultHeader r{task.ordinal, Status::raised, worker, 0, 0};
    out.resize(sizeof r);
    std::memcpy(out.data(), &r, sizeof r);
    OutputArchive ar(out);
    ar(capture_current_exception());
}

void execute_task(const TaskHeader& task, std::span<const std::byte> body, pid_t worker, std::vector<std::byte>& out) {
    const ResultHeader r{task.ordinal, Status::ok, worker, 0, 0};
    out.resize(sizeof r);
    try {
        reinterpret_cast<TaskRunner>(code_address(task.runner))(body, out);
    } catch (...) {
        result_of_exception(task, worker, out);
        return;
    }
    std::memcpy(out.data(), &r, sizeof r);
}

// What a worker works with: the pool's shared state, mapped in this process (a fork child's copy
// of the pool's, or a spawn or forkserver child's own mapping).
struct WorkerEnv {
    QueueCore& tasks;
    QueueCore& results;
    PoolShared& shared;
    WorkerSlot& slot;
    const PoolInitializer& initializer;
    Timeout idle;  // an elastic pool's idle_timeout; empty otherwise
    int maxtasksperchild;
    int min_workers;
};

// An idle worker of an elastic pool leaves if the pool keeps its minimum without it.
bool try_retire(const WorkerEnv& env) noexcept {
    std::int32_t n = env.shared.live.load();
    while (n > env.min_workers)
        if (env.shared.live.compare_exchange_weak(n, n - 1)) return true;
    return false;
}

void worker_loop(const WorkerEnv& env) {
    WorkerSlot& s = env.slot;
    faulthandler::set_crash_note(s.crashed_in, sizeof s.crashed_in);  // for the supervisor's report
    // Ctrl-C reaches the whole foreground process group: what it means is the program's to decide
    // (a handler, or the default death, which takes the workers with it: they are daemonic).
    mute_sigint_in_pool_worker();
    QueueCore& tasks_ = env.tasks;
    QueueCore& results_ = env.results;
    if (env.initializer) {
        try {
            env.initializer();
        } catch (const std::exception& e) {
            std::strncpy(s.error, e.what(), sizeof s.error - 1);
            s.state.store(SlotState::init_failed);
            throw;
        } catch (...) {
            s.state.store(SlotState::init_failed);
            throw;
        }
    }
    s.state.store(SlotState::ready);
    const pid_t me = ::getpid();
    std::vector<std::byte> body, out;
    std::uint64_t done = 0;
    const Timeout idle = env.idle;
    for (;;) {
        s.waiting.store(true, std::memory_order_relaxed);
        std::span<const std::byte> p;
        try {
            p = tasks_.begin_get(true, idle);
        } catch (const Empty&) {
            s.waiting.store(false, std::memory_order_relaxed);
            if (try_retire(env)) {
                s.state.store(SlotState::retired);
                return;
            }
            continue;
        }
        s.waiting.store(false, std::memory_order_relaxed);
        TaskHeader h;
        std::memcpy(&h, p.data(), sizeof h);
        if (h.kind == TaskKind::stop) {
            tasks_.end_get();
            s.state.store(SlotState::finished);
            return;
        }
        body.assign(p.begin() + sizeof h, p.end());
        s.deadline_ns.store(h.timeout_ns ? monotonic_ns() + h.timeout_ns : 0, std::memory_order_relaxed);
        s.task.store(h.ordinal + 1, std::memory_order_release);  // before the take is recorded
        tasks_.end_get();

        const std::int64_t started = monotonic_ns();
        execute_task(h, body, me, out);
        const std::uint32_t run_us =
            std::uint32_t(std::min<std::int64_t>((monotonic_ns() - started) / 1000, UINT32_MAX));
        std::memcpy(out.data() + offsetof(ResultHeader, run_us), &run_us, sizeof run_us);
        try {
            put_record(results_, out);
        } catch (...) {  // a result larger than the queue can hold
            result_of_exception(h, me, out);
            put_record(results_, out);
        }
        s.task.store(0, std::memory_order_release);
        s.deadline_ns.store(0, std::memory_order_relaxed);
        if (env.maxtasksperchild && ++done >= std::uint64_t(env.maxtasksperchild)) {
            s.state.store(SlotState::finished);
            return;
        }
    }
}

void LocalPoolBackend::run_worker(std::size_t slot) {
    worker_loop(WorkerEnv{tasks_, results_, *shared_, slots_[slot], options_.initializer,
                          elastic_ ? Timeout(options_.idle_timeout) : Timeout(), options_.maxtasksperchild,
                          counts_.min});
}

// A worker in a spawn or forkserver child: maps what the pool shares and runs the same loop.
void run_worker_in_fresh_child(ChildReader& r) {
    QueueCore tasks(r.region(), QueueCore::Kind::simple);
    QueueCore results(r.region(), QueueCore::Kind::simple);
    const auto region = r.region();
    const auto slot = r.raw<std::uint64_t>();
    const auto idle_ns = r.raw<std::int64_t>();
    const auto maxtasksperchild = r.raw<std::int32_t>();
    const auto min_workers = r.raw<std::int32_t>();
    const bool has_initializer = r.raw<std::uint8_t>() != 0;
    if (region->size() < 64 || slot >= (region->size() - 64) / sizeof(WorkerSlot))
        throw DecodeError("polyproc::Pool: a worker's shared region is too small for its slot");
    auto* shared = static_cast<PoolShared*>(region->data());
    auto* slots = reinterpret_cast<WorkerSlot*>(static_cast<std::byte*>(region->data()) + 64);
    const PoolInitializer initializer = has_initializer ? PoolInitializer::read(r) : PoolInitializer();
    worker_loop(WorkerEnv{tasks, results, *shared, slots[slot], initializer,
                          idle_ns >= 0 ? Timeout(std::chrono::nanoseconds(idle_ns)) : Timeout(), maxtasksperchild,
                          min_workers});
}

CodeRef LocalPoolBackend::encode_worker(ChildWriter& w, std::size_t slot) const {
    if (options_.initializer && !options_.initializer.travels())
        throw ValueError("polyproc::Pool: the initializer cannot be sent to a " +
                         std::string(start_method_name(method_)) +
                         " worker: use a function or a lambda without captures, with arguments that are sendable "
                         "(mp::Serializable) or polyproc handles, or the fork start method");
    w.region(tasks_.region());
    w.region(results_.region());
    w.region(region_);
    w.raw(static_cast<std::uint64_t>(slot));
    w.raw(static_cast<std::int64_t>(
        elastic_ ? std::chrono::duration_cast<std::chrono::nanoseconds>(options_.idle_timeout).count() : -1));
    w.raw(static_cast<std::int32_t>(options_.maxtasksperchild));
    w.raw(static_cast<std::int32_t>(counts_.min));
    w.raw(static_cast<std::uint8_t>(static_cast<bool>(options_.initializer)));
    if (options_.initializer) options_.initializer.write(w);  // last: it is read when it runs
    return code_offset(reinterpret_cast<std::uintptr_t>(&run_worker_in_fresh_child));
}

}  // namespace polyproc::detail
