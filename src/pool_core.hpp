// The Pool engine behind polyproc/pool.hpp: PoolCore, one class with its parts in one file each,
// as Python's pool.py is split into ideas:
//   * pool_core.hpp (this file): the class, and WorkerTarget (what a worker's Process runs);
//   * pool_core.cpp: construction (the options checked), submission (task and stop records, imap
//     feeders), close, join, terminate;
//   * pool_supervisor.cpp: the supervisor thread;
//   * pool_results.cpp: the result thread, and AsyncResult's waiting (which does the same work);
//   * pool_worker.cpp: the worker process's loop;
//   * pool_records.hpp: the task and result records, and the per-worker slots in shared memory;
//   * pool.cpp: mp::Pool, the free functions pool.hpp declares, the progress bar.
//
// Tasks go to the workers through one shared task queue (the queue engine of queues.cpp), results
// come back through one result queue, in the same memory. Two parent threads:
//   * the supervisor starts workers, watches their pidfds, kills tasks past their timeout, grows
//     and shrinks an elastic pool, and reports a task whose worker died;
//   * the result thread decodes results into their jobs and runs callbacks, in arrival order (a
//     thread waiting in AsyncResult::get/wait does the same work while it waits: collect_one).
//
// Which task a dead worker was running: every put on the task queue gets the next ordinal while it
// holds the queue's producer lock, so the item with ordinal X has been taken off the queue exactly when the
// queue's count of taken items exceeds X. A worker writes the ordinal of the task it is taking into
// its slot *before* the queue records the take (inside begin_get/end_get), and clears it after its
// result is published. So when a worker dies with a task X in its slot:
//   * taken count <= X: it died before taking X; X is still queued and another worker runs it;
//   * otherwise X was running (or its result is already in the result queue, ahead of the
//     supervisor's notice, and the notice finds nothing left to fail).
// The taken count is read under the consumers' lock, whose robust-mutex repair settles a take
// that the dead worker left half done.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "pool_records.hpp"
#include "start_method.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/pool_task.hpp"
#include "polyproc/detail/shared_region.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/process.hpp"
#include "polyproc/queues.hpp"

namespace polyproc::detail {

// Validates the options (Python's messages where Python has the option) and says how many workers.
struct WorkerCounts {
    int min, max, start;
};
WorkerCounts plan_workers(const PoolOptions& o);  // pool_core.cpp

class PoolCore {
public:
    explicit PoolCore(PoolOptions options);
    ~PoolCore();

    void submit(const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner, std::size_t body_size,
                BodyWriter write, bool feeding);
    void check_running() const {
        std::lock_guard lock(mu_);
        if (state_ != State::run) throw_not_running();
    }
    // ValueError("Pool not running"), or ProcessError saying why when the pool broke by itself.
    [[noreturn]] void throw_not_running() const {
        if (!broken_.empty()) throw ProcessError(broken_);
        throw ValueError("Pool not running");
    }
    std::size_t size() const { return static_cast<std::size_t>(std::max(0, shared_->live.load())); }
    std::size_t imap_window() const {
        return options_.imap_window ? options_.imap_window : std::max<std::size_t>(64, 8 * std::size_t(max_workers_));
    }
    void add_feeder(const std::shared_ptr<Feeder>& f) {
        std::lock_guard lock(mu_);
        feeders_.push_back({f.get(), f});
    }
    void remove_feeder(const Feeder* f) noexcept;
    void close();
    void join();
    void terminate() noexcept;
    std::string repr() const;
    std::vector<pid_t> worker_pids() const {
        std::lock_guard lock(pids_mu_);
        return pids_;
    }

private:
    enum class State { run, close, terminate };
    struct Entry {
        std::shared_ptr<JobBase> job;
        std::uint32_t chunk = 0;
    };
    struct Worker {
        Process process;
        std::uint64_t killed_for = 0;  // the task (ordinal + 1) whose timeout killed it
    };

    // Puts a task record: header (its ordinal filled in) and body, with its table entry. The
    // ordinal and the entry come under the queue's producer lock, in put order; `admit` (under mu_,
    // with that lock held) says whether the pool still takes it, so no task slips in behind the
    // stop records or after terminate(). Waits for room only when `block`, and without any pool
    // lock: the supervisor must be free to replace workers meanwhile (a worker dying while another
    // thread submits). false: no room (only when !block).
    template <class Admit>
    bool put_task(TaskHeader h, std::size_t body_size, const BodyWriter* write, Entry entry, bool block, Admit admit);
    bool put_stop(bool block);  // a stop record: ends the worker that takes it
    void maybe_put_stops();     // once closed and no imap is still feeding
    void nudge() noexcept;

    // Supervisor thread.
    void supervise();
    void supervise_loop();
    void stop_all_workers();
    void start_worker(std::size_t slot);
    void reap(std::size_t slot);
    void forget_worker(std::size_t slot);
    void kill_overdue();
    void post(const ResultHeader& h);
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
        for (int i = 0; i < max_workers_; ++i) idle += slots_[i].waiting.load(std::memory_order_relaxed);
        return queued > idle;
    }

public:
    // Takes one finished result off the result queue and settles it (callbacks, readiness).
    // Returns false when none was there (block: none came before shutdown). Any thread.
    bool collect_one(bool block);

private:
    // Result thread.
    void collect_results();
    void fail_leftovers() noexcept;

    // In a worker process (a fork child of the supervisor thread: the parent's other threads do
    // not exist there, and the parent-side state is never touched).
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

    PoolOptions options_;
    StartMethod method_;  // how workers start
    bool elastic_;
    const WorkerCounts counts_;
    const int& min_workers_ = counts_.min;
    const int& max_workers_ = counts_.max;
    const int& start_workers_ = counts_.start;
    pid_t creator_;

    QueueCore tasks_{0, QueueCore::Kind::simple};
    QueueCore results_{0, QueueCore::Kind::simple};
    SharedRegion region_;
    PoolShared* shared_;
    WorkerSlot* slots_;

    // state_, feeders_, stops_put_, broken_. Never held while waiting for room in a queue, nor
    // while a worker starts. Lock order: the task queue's producer lock, mu_, table_mu_.
    mutable std::mutex mu_;
    State state_ = State::run;
    // By address and weak pointer: never lock()ed under mu_ (the temporary owner could turn out to
    // be the last one, and the feeder's destructor takes mu_).
    struct FeederRef {
        const Feeder* address;
        std::weak_ptr<Feeder> weak;
    };
    std::vector<FeederRef> feeders_;
    bool stops_put_ = false;

    std::uint64_t next_ordinal_ = 0;  // guarded by the task queue's producer lock (see put_task)
    int stops_owed_ = 0;              // supervisor thread: stop records it could not put yet

    std::mutex table_mu_;  // ordinal -> (job, chunk) of tasks without a result yet
    std::deque<Entry> table_;
    std::uint64_t table_base_ = 0;
    std::atomic<std::uint64_t> outstanding_{0};
    // Held from taking a result off the queue until it is settled: callbacks run one at a time,
    // in arrival order, whichever thread collects.
    std::mutex settle_mu_;
    std::atomic<bool> shut_down_{false};

    FileDescriptor wake_fd_;  // eventfd: wakes the supervisor
    std::atomic<bool> nudged_{false};
    std::vector<std::optional<Worker>> workers_;  // by slot; supervisor thread only
    std::uint64_t names_ = 0;
    int init_failures_ = 0;
    std::string broken_;  // why the pool stopped on its own; written by the supervisor under mu_

    mutable std::mutex pids_mu_;
    std::vector<pid_t> pids_;

    std::mutex join_mu_;
    std::thread supervisor_, result_thread_;
    std::mutex started_mu_;
    std::condition_variable started_cv_;
    bool started_ = false;
    std::exception_ptr start_error_;
};

// What a pool's Process runs: the worker loop, in a fork child directly, in a spawn or
// forkserver child after mapping the pool's shared state.
class WorkerTarget final : public ProcessTarget {
public:
    WorkerTarget(PoolCore* core, std::size_t slot) : core_(core), slot_(slot) {}
    void call() override { core_->run_worker(slot_); }
    CodeRef encode_for_child(ChildWriter& w) const override { return core_->encode_worker(w, slot_); }

private:
    PoolCore* core_;
    std::size_t slot_;
};

}  // namespace polyproc::detail
