// LocalPoolBackend: a pool's workers as processes of this machine (fork, spawn or forkserver),
// its tasks and results on two shared-memory queues (the queue engine of queues.cpp). Its parts:
//   * pool_local.hpp (this file): the class, and WorkerTarget (what a worker's Process runs);
//   * pool_local.cpp: the queues (putting tasks and stops, taking results), start and join;
//   * pool_supervisor.cpp: the supervisor thread (workers' lives);
//   * pool_worker.cpp: the worker process's loop.
//
// One parent thread, the supervisor: it starts workers, watches their pidfds, kills tasks past
// their timeout, grows and shrinks an elastic pool, and reports a task whose worker died.
//
// Which task a dead worker was running: every put on the task queue gets the next ordinal while it
// holds the queue's producer lock, so the item with ordinal X has been taken off the queue exactly
// when the queue's count of taken items exceeds X. A worker writes the ordinal of the task it is
// taking into its slot *before* the queue records the take (inside begin_get/end_get), and clears
// it after its result is published. So when a worker dies with a task X in its slot:
//   * taken count <= X: it died before taking X; X is still queued and another worker runs it;
//   * otherwise X was running (or its result is already in the result queue, ahead of the
//     supervisor's notice, and the notice finds nothing left to fail).
// The taken count is read under the consumers' lock, whose robust-mutex repair settles a take
// that the dead worker left half done.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "pool_backend.hpp"
#include "pool_records.hpp"
#include "start_method.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/shared_region.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/process.hpp"
#include "polyproc/queues.hpp"

namespace polyproc::detail {

class LocalPoolBackend final : public PoolBackend {
public:
    LocalPoolBackend(const PoolOptions& options, const WorkerCounts& counts);
    ~LocalPoolBackend() override;

    void start(Owner& owner) override;
    void put_task(TaskHeader header, std::size_t body_size, BodyWriter write,
                  FunctionRef<void(std::uint64_t)> admit) override;
    void close_workers() override;
    std::optional<ResultView> begin_result(bool block) override;
    void end_result() override { results_.end_get(); }
    void cancel_result() override { results_.cancel_get(); }
    bool results_waiting() const noexcept override { return results_.qsize() != 0; }
    std::size_t size() const noexcept override { return static_cast<std::size_t>(std::max(0, shared_->live.load())); }
    std::vector<pid_t> worker_pids() const override {
        std::lock_guard lock(pids_mu_);
        return pids_;
    }
    void wake() noexcept override;
    void join() override;

private:
    struct Worker {
        Process process;
        std::uint64_t killed_for = 0;  // the task (ordinal + 1) whose timeout killed it
    };

    // Puts one record (a task, or a stop when !write). Waits for room only when `block`, and
    // without any lock the supervisor needs: it must be free to replace workers meanwhile (a
    // worker dying while another thread submits). false: no room (only when !block).
    bool put_on_task_queue(TaskHeader h, std::size_t body_size, const BodyWriter* write,
                           const FunctionRef<void(std::uint64_t)>* admit, bool block);
    bool put_stop(bool block);  // a stop record: ends the worker that takes it

    // Supervisor thread (pool_supervisor.cpp).
    void supervise();
    void supervise_loop();
    void stop_all_workers();
    void start_worker(std::size_t slot);
    void reap(std::size_t slot);
    void forget_worker(std::size_t slot);
    void kill_overdue();
    void post(const ResultHeader& h);
    void end_result_stream();  // the last result of all: Status::shutdown
    bool wants_more_workers() const;
    bool held_by_a_live_worker(std::uint64_t task) const noexcept {
        for (std::size_t i = 0; i < workers_.size(); ++i)
            if (workers_[i] && slots_[i].task.load(std::memory_order_acquire) == task) return true;
        return false;
    }
    // More tasks wait than workers wait for tasks (an elastic pool grows then).
    bool backlog() const noexcept {
        const std::size_t queued = tasks_.qsize();
        if (queued == 0) return false;
        std::size_t idle = 0;
        for (int i = 0; i < counts_.max; ++i) idle += slots_[i].waiting.load(std::memory_order_relaxed);
        return queued > idle;
    }

    // In a worker process (a fork child of the supervisor thread: the parent's other threads do
    // not exist there, and the parent-side state is never touched). pool_worker.cpp.
    void run_worker(std::size_t slot);
    friend class WorkerTarget;
    // Writes what a spawn or forkserver worker needs to map the pool (see WorkerTarget).
    CodeRef encode_worker(ChildWriter& w, std::size_t slot) const;

    // Python's names: ForkPoolWorker-1, SpawnPoolWorker-1, ForkServerPoolWorker-1.
    std::string worker_name_prefix() const {
        switch (method_) {
            case StartMethod::fork:
                return "ForkPoolWorker-";
            case StartMethod::spawn:
                return "SpawnPoolWorker-";
            case StartMethod::forkserver:
                break;
        }
        return "ForkServerPoolWorker-";
    }

    const PoolOptions options_;
    const StartMethod method_;  // how workers start
    const bool elastic_;
    const WorkerCounts counts_;
    const pid_t creator_;
    Owner* owner_ = nullptr;

    QueueCore tasks_{0, QueueCore::Kind::simple};
    QueueCore results_{0, QueueCore::Kind::simple};
    SharedRegion region_;
    PoolShared* shared_;
    WorkerSlot* slots_;

    std::uint64_t next_ordinal_ = 0;  // guarded by the task queue's producer lock (see put_on_task_queue)
    int stops_owed_ = 0;              // supervisor thread: stop records it could not put yet

    FileDescriptor wake_fd_;  // eventfd: wakes the supervisor
    std::atomic<bool> nudged_{false};
    std::vector<std::optional<Worker>> workers_;  // by slot; supervisor thread only
    std::uint64_t names_ = 0;
    int init_failures_ = 0;

    mutable std::mutex pids_mu_;
    std::vector<pid_t> pids_;

    std::mutex join_mu_;
    std::thread supervisor_;
    std::mutex started_mu_;
    std::condition_variable started_cv_;
    bool started_ = false;
    std::exception_ptr start_error_;
};

// What a pool's Process runs: the worker loop, in a fork child directly, in a spawn or
// forkserver child after mapping the pool's shared state.
class WorkerTarget final : public ProcessTarget {
public:
    WorkerTarget(LocalPoolBackend* pool, std::size_t slot) : pool_(pool), slot_(slot) {}
    void call() override { pool_->run_worker(slot_); }
    CodeRef encode_for_child(ChildWriter& w) const override { return pool_->encode_worker(w, slot_); }

private:
    LocalPoolBackend* pool_;
    std::size_t slot_;
};

}  // namespace polyproc::detail
