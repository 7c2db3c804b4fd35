// The Pool engine behind polyproc/pool.hpp: PoolCore, what every pool shares whatever runs its
// tasks. Its parts, one file each, as Python's pool.py is split into ideas:
//   * pool_core.hpp (this file): the class;
//   * pool_core.cpp: construction (the options checked), submission (admitting tasks, imap
//     feeders), close, join, terminate;
//   * pool_results.cpp: the result thread, and AsyncResult's waiting (which does the same work);
//   * pool.cpp: mp::Pool, the free functions pool.hpp declares, the progress bar.
// Where the tasks run is a backend (pool_backend.hpp says what one does; pool_local.hpp is the
// one with worker processes on this machine, and lists its own files); pool_records.hpp holds the
// task and result records they share.
//
// One parent thread of the engine's own: the result thread decodes results into their jobs and
// runs callbacks, in arrival order (a thread waiting in AsyncResult::get/wait does the same work
// while it waits: collect_one). Each task's job is found by its ordinal in a table of the tasks
// without a result yet.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "pool_backend.hpp"
#include "polyproc/detail/pool_task.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/pool.hpp"

namespace polyproc::detail {

class PoolCore final : private PoolBackend::Owner {
public:
    explicit PoolCore(PoolOptions options) : PoolCore(std::move(options), nullptr) {}
    // With a given backend (null: make_pool_backend chooses); the options still say how many workers.
    PoolCore(PoolOptions options, std::unique_ptr<PoolBackend> backend);
    ~PoolCore();

    void submit(const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner, std::size_t body_size,
                BodyWriter write, bool feeding);
    void check_running() const {
        std::lock_guard lock(mu_);
        if (state_ != Phase::run) throw_not_running();
    }
    // ValueError("Pool not running"), or ProcessError saying why when the pool broke by itself.
    [[noreturn]] void throw_not_running() const {  // under mu_
        if (!broken_.empty()) throw ProcessError(broken_);
        throw ValueError("Pool not running");
    }
    std::size_t size() const { return backend_->size(); }
    std::size_t imap_window() const {
        return options_.imap_window ? options_.imap_window : std::max<std::size_t>(64, 8 * std::size_t(counts_.max));
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
    std::vector<pid_t> worker_pids() const { return backend_->worker_pids(); }

    // Takes one finished result from the backend and settles it (callbacks, readiness). Returns
    // false when none was there (block: none came before shutdown). Any thread.
    bool collect_one(bool block);

private:
    using Phase = PoolBackend::Phase;
    struct Entry {
        std::shared_ptr<JobBase> job;
        std::uint32_t chunk = 0;
    };

    // PoolBackend::Owner: what the backend asks.
    Phase phase() const override {
        std::lock_guard lock(mu_);
        return state_;
    }
    bool workers_released() const override {
        std::lock_guard lock(mu_);
        return state_ == Phase::close && workers_released_;
    }
    void throw_if_terminated() const override {
        std::lock_guard lock(mu_);
        if (state_ == Phase::terminate) throw_not_running();
    }
    bool tasks_outstanding() const override { return outstanding_.load() > 0; }
    void break_pool(std::string why) noexcept override;

    void maybe_release_workers();  // once closed and no imap is still feeding
    void join_backend_and_results();

    // Result thread.
    void collect_results();
    void fail_leftovers() noexcept;

    PoolOptions options_;
    const WorkerCounts counts_;
    pid_t creator_;

    // state_, feeders_, workers_released_, broken_. Never held while waiting for room for a task, nor
    // while a worker starts. Lock order: the backend's order of puts, mu_, table_mu_.
    mutable std::mutex mu_;
    Phase state_ = Phase::run;
    // By address and weak pointer: never lock()ed under mu_ (the temporary owner could turn out to
    // be the last one, and the feeder's destructor takes mu_).
    struct FeederRef {
        const Feeder* address;
        std::weak_ptr<Feeder> weak;
    };
    std::vector<FeederRef> feeders_;
    bool workers_released_ = false;  // the backend was told to let its workers finish
    std::string broken_;      // why the pool stopped on its own; written under mu_

    std::mutex table_mu_;  // ordinal -> (job, chunk) of tasks without a result yet
    std::deque<Entry> table_;
    std::uint64_t table_base_ = 0;
    std::atomic<std::uint64_t> outstanding_{0};
    // Held from taking a result off the backend until it is settled: callbacks run one at a
    // time, in arrival order, whichever thread collects.
    std::mutex settle_mu_;
    std::atomic<bool> shut_down_{false};

    std::unique_ptr<PoolBackend> backend_;
    std::mutex join_mu_;
    std::thread result_thread_;
};

}  // namespace polyproc::detail
