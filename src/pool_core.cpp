// PoolCore's life and the way in: construction, submission (admitting tasks, imap feeders), close,
// join, terminate. The pool's parts and their files: pool_core.hpp.
#include "pool_core.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include "fork_safety.hpp"
#include "pool_backend.hpp"
#include "pool_records.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/process.hpp"

namespace polyproc::detail {

// ---- the pool ---------------------------------------------------------------------------------

WorkerCounts plan_workers(const PoolOptions& o) {
    if (o.processes < 0) throw ValueError("Number of processes must be at least 1");
    if (o.maxtasksperchild < 0) throw ValueError("maxtasksperchild must be a positive int or None");
    if (o.task_timeout && *o.task_timeout <= std::chrono::nanoseconds(0))
        throw ValueError("task_timeout must be positive");
    if (o.backend) return o.backend->plan(o);
    if (o.max_processes <= 0) {
        const int n = o.processes ? o.processes : cpu_count();
        return {n, n, n};
    }
    if (o.min_processes < 1) throw ValueError("min_processes must be at least 1");
    if (o.min_processes > o.max_processes) throw ValueError("min_processes must not exceed max_processes");
    const int start = o.processes ? o.processes : o.min_processes;
    if (start < o.min_processes || start > o.max_processes)
        throw ValueError("processes must lie between min_processes and max_processes");
    if (o.idle_timeout <= std::chrono::milliseconds(0)) throw ValueError("idle_timeout must be positive");
    return {o.min_processes, o.max_processes, start};
}

PoolCore::PoolCore(PoolOptions options, std::unique_ptr<PoolBackend> backend)
    : options_(std::move(options)),
      counts_(plan_workers(options_)),
      creator_(::getpid()),
      backend_(backend ? std::move(backend) : make_pool_backend(options_, counts_)) {
    // The result thread starts first, so that its start-up overlaps the workers' starts.
    result_thread_ = helper_thread([this] { collect_results(); });
    try {
        backend_->start(*this);
    } catch (...) {
        result_thread_.join();  // a failed start ends the result stream
        throw;
    }
}

PoolCore::~PoolCore() {
    if (::getpid() != creator_) {
        // A forked copy: the threads and workers are the parent's, and do not exist here. Forget
        // the thread handle (destroying a joinable std::thread would abort).
        new (&result_thread_) std::thread();
        return;
    }
    terminate();
}

void PoolCore::submit(const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner,
                      std::size_t body_size, BodyWriter write, bool feeding) {
    bool closed = false;
    // Called by the backend with its order of puts held, once the task is written: a task that
    // could not be written never had an entry, and entries go into the table in ordinal order.
    auto admit = [&](std::uint64_t ordinal) {
        std::lock_guard lock(mu_);
        if (!(state_ == Phase::run || (feeding && state_ == Phase::close && !workers_released_))) throw_not_running();
        // Counted as outstanding at once: a closed pool keeps (or starts) a worker for it.
        outstanding_.fetch_add(1, std::memory_order_relaxed);
        closed = state_ != Phase::run;
        std::lock_guard table_lock(table_mu_);
        while (table_base_ + table_.size() < ordinal) table_.emplace_back();  // the backend's own records
        table_.push_back(Entry{job, chunk});
    };
    TaskHeader h{0, code_offset(reinterpret_cast<std::uintptr_t>(runner)),
                 options_.task_timeout ? (*options_.task_timeout).count() : 0, TaskKind::run, 0};
    backend_->put_task(h, body_size, write, FunctionRef<void(std::uint64_t)>(admit));
    if (closed) backend_->wake();  // it may have no worker left to run this
}

void PoolCore::break_pool(std::string why) noexcept {
    std::lock_guard lock(mu_);
    if (broken_.empty()) broken_ = std::move(why);
    state_ = Phase::terminate;  // no more tasks: none would ever run
}

void PoolCore::maybe_release_workers() {
    {
        std::lock_guard lock(mu_);
        std::erase_if(feeders_, [](const FeederRef& r) { return r.weak.expired(); });
        if (state_ != Phase::close || workers_released_ || !feeders_.empty()) return;
        workers_released_ = true;  // from now on, submit admits no task: what the backend puts next is last
    }
    try {
        backend_->close_workers();
    } catch (const ValueError&) {
        // terminate() came while the backend waited for room: no worker needs releasing any more.
    } catch (const ProcessError&) {
        // The same, for a pool that broke by itself.
    }
    backend_->wake();
}

void PoolCore::remove_feeder(const Feeder* f) noexcept {
    {
        std::lock_guard lock(mu_);
        std::erase_if(feeders_, [f](const FeederRef& r) { return r.address == f || r.weak.expired(); });
    }
    try {
        maybe_release_workers();
    } catch (...) {
    }
}

void PoolCore::close() {
    {
        std::lock_guard lock(mu_);
        if (state_ == Phase::run) state_ = Phase::close;
    }
    maybe_release_workers();
}

void PoolCore::join() {
    std::vector<std::shared_ptr<Feeder>> feeding;
    {
        std::lock_guard lock(mu_);
        if (state_ == Phase::run) throw ValueError("Pool is still running");
        for (auto& r : feeders_)
            if (auto p = r.weak.lock()) feeding.push_back(std::move(p));  // released after mu_
    }
    for (auto& f : feeding) f->feed_all();  // join() finishes what was asked, as Python's does
    maybe_release_workers();
    join_backend_and_results();
}

void PoolCore::terminate() noexcept {
    if (::getpid() != creator_) return;  // a forked copy (see ~PoolCore)
    {
        std::lock_guard lock(mu_);
        state_ = Phase::terminate;
    }
    backend_->wake();
    join_backend_and_results();
}

// Once the backend has stopped it ends the result stream, and the result thread ends with it (a
// callback that closes or terminates the pool runs on that thread: it does not join itself).
void PoolCore::join_backend_and_results() {
    std::lock_guard lock(join_mu_);
    backend_->join();
    if (result_thread_.joinable() && result_thread_.get_id() != std::this_thread::get_id()) result_thread_.join();
}

std::string PoolCore::repr() const {
    std::lock_guard lock(mu_);
    const char* s = state_ == Phase::run ? "RUN" : state_ == Phase::close ? "CLOSE" : "TERMINATE";
    return std::string("<polyproc.Pool state=") + s + " pool_size=" + std::to_string(size()) + ">";
}

}  // namespace polyproc::detail
