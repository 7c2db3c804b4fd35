// PoolCore's life and the way in: construction, submission (task and stop records, imap
// feeders), close, join, terminate. The pool's parts and their files: pool_core.hpp.
#include "pool_core.hpp"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "pool_records.hpp"
#include "start_method.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/process.hpp"

namespace polyproc::detail {

// ---- the pool ---------------------------------------------------------------------------------

WorkerCounts plan_workers(const PoolOptions& o) {
    if (o.processes < 0) throw ValueError("Number of processes must be at least 1");
    if (o.maxtasksperchild < 0) throw ValueError("maxtasksperchild must be a positive int or None");
    if (o.task_timeout && *o.task_timeout <= std::chrono::nanoseconds(0))
        throw ValueError("task_timeout must be positive");
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

PoolCore::PoolCore(PoolOptions options)
    : options_(std::move(options)),
      method_(options_.start_method.empty() ? global_start_method() : parse_start_method(options_.start_method)),
      elastic_(options_.max_processes > 0),
      counts_(plan_workers(options_)),
      creator_(::getpid()),
      region_(64 + sizeof(WorkerSlot) * std::size_t(max_workers_)) {
    shared_ = ::new (region_.data()) PoolShared();
    auto* slot_mem = static_cast<std::byte*>(region_.data()) + 64;
    slots_ = reinterpret_cast<WorkerSlot*>(slot_mem);
    for (int i = 0; i < max_workers_; ++i) ::new (&slots_[i]) WorkerSlot();
    workers_.resize(std::size_t(max_workers_));
    wake_fd_ = FileDescriptor(os::check("eventfd", [] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));

    // Workers are forked by the supervisor thread (replacements must be, and a daemonic child dies
    // with the thread that forked it); the constructor waits until the first ones are started.
    // The result thread starts first, so that its start-up overlaps the forks.
    result_thread_ = helper_thread([this] { collect_results(); });
    try {
        supervisor_ = helper_thread([this] { supervise(); });
    } catch (...) {
        post(ResultHeader{0, Status::shutdown, 0, 0, 0});
        result_thread_.join();
        throw;
    }
    {
        std::unique_lock lock(started_mu_);
        started_cv_.wait(lock, [&] { return started_; });
    }
    if (start_error_) {
        supervisor_.join();
        post(ResultHeader{0, Status::shutdown, 0, 0, 0});
        result_thread_.join();
        std::rethrow_exception(start_error_);
    }
}

PoolCore::~PoolCore() {
    if (::getpid() != creator_) {
        // A forked copy: the threads and workers are the parent's, and do not exist here. Forget
        // the thread handles (destroying a joinable std::thread would abort).
        new (&supervisor_) std::thread();
        new (&result_thread_) std::thread();
        return;
    }
    terminate();
}

void PoolCore::nudge() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
}

template <class Admit>
bool PoolCore::put_task(TaskHeader h, std::size_t body_size, const BodyWriter* write, Entry entry, bool block,
                        Admit admit) {
    std::byte* out = nullptr;
    // A full queue (its whole reservation, half of RAM) drains as workers take tasks. Wait in
    // slices: a pool terminated meanwhile has no workers left to drain it. Without `block`, the
    // producer lock too is only tried for a moment (another thread may hold it while it encodes
    // a large task).
    const Timeout patience = block ? Timeout(std::chrono::milliseconds(100)) : Timeout(std::chrono::milliseconds(1));
    if (block) {
        try {
            // The common case, room at once: no deadline, so no clock read (two per task were
            // 12% of a chunksize-1 map).
            out = tasks_.begin_put(sizeof(TaskHeader) + body_size, false, {});
        } catch (const Full&) {
        }
    }
    while (!out) {
        try {
            out = tasks_.begin_put(sizeof(TaskHeader) + body_size, true, patience);
        } catch (const Full&) {
            if (!block) return false;
            std::lock_guard lock(mu_);
            if (state_ == State::terminate) throw_not_running();
        }
    }
    // The producer lock is held from here to end_put: the ordinal is this put's.
    bool nudge_supervisor = false;
    try {
        h.ordinal = next_ordinal_;
        std::memcpy(out, &h, sizeof h);
        if (write) (*write)(std::span<std::byte>(out + sizeof h, body_size));
        // Admitted last, so that a task that could not be written never had an entry. Counted as
        // outstanding at once: a closed pool keeps (or starts) a worker for it.
        std::lock_guard lock(mu_);
        admit();  // throws when the pool takes no more
        if (h.kind == TaskKind::run) {
            outstanding_.fetch_add(1, std::memory_order_relaxed);
            nudge_supervisor = state_ != State::run;  // it may have no worker left to run this
        }
        std::lock_guard table_lock(table_mu_);
        table_.push_back(std::move(entry));
    } catch (...) {
        tasks_.end_put(false);
        throw;
    }
    ++next_ordinal_;
    tasks_.end_put(true);
    if (nudge_supervisor) nudge();
    return true;
}

void PoolCore::submit(const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner,
                      std::size_t body_size, BodyWriter write, bool feeding) {
    auto admit = [&] {
        if (!(state_ == State::run || (feeding && state_ == State::close && !stops_put_))) throw_not_running();
    };
    TaskHeader h{0, code_offset(reinterpret_cast<std::uintptr_t>(runner)),
                 options_.task_timeout ? (*options_.task_timeout).count() : 0, TaskKind::run, 0};
    put_task(h, body_size, &write, Entry{job, chunk}, true, admit);
    if (elastic_ && shared_->live.load(std::memory_order_relaxed) < max_workers_ && backlog() &&
        !nudged_.exchange(true))
        nudge();
}

// No result comes back for a stop record: its (empty) table entry is passed over when the entries
// before it are settled.
bool PoolCore::put_stop(bool block) {
    TaskHeader h{0, 0, 0, TaskKind::stop, 0};
    return put_task(h, 0, nullptr, Entry{}, block, [] {});
}

void PoolCore::maybe_put_stops() {
    {
        std::lock_guard lock(mu_);
        std::erase_if(feeders_, [](const FeederRef& r) { return r.weak.expired(); });
        if (state_ != State::close || stops_put_ || !feeders_.empty()) return;
        stops_put_ = true;  // from now on, put_task admits no task: the stops below are the last
    }
    try {
        for (int i = 0; i < max_workers_; ++i) put_stop(true);  // enough for every worker there can be
    } catch (const ValueError&) {
        // terminate() came while the stops waited for room: no worker needs them any more.
    } catch (const ProcessError&) {
        // The same, for a pool that broke by itself.
    }
    nudge();
}

void PoolCore::remove_feeder(const Feeder* f) noexcept {
    {
        std::lock_guard lock(mu_);
        std::erase_if(feeders_, [f](const FeederRef& r) { return r.address == f || r.weak.expired(); });
    }
    try {
        maybe_put_stops();
    } catch (...) {
    }
}

void PoolCore::close() {
    {
        std::lock_guard lock(mu_);
        if (state_ == State::run) state_ = State::close;
    }
    maybe_put_stops();
}

void PoolCore::join() {
    std::vector<std::shared_ptr<Feeder>> feeding;
    {
        std::lock_guard lock(mu_);
        if (state_ == State::run) throw ValueError("Pool is still running");
        for (auto& r : feeders_)
            if (auto p = r.weak.lock()) feeding.push_back(std::move(p));  // released after mu_
    }
    for (auto& f : feeding) f->feed_all();  // join() finishes what was asked, as Python's does
    maybe_put_stops();
    std::lock_guard lock(join_mu_);
    if (supervisor_.joinable()) supervisor_.join();
    if (result_thread_.joinable() && result_thread_.get_id() != std::this_thread::get_id()) result_thread_.join();
}

void PoolCore::terminate() noexcept {
    if (::getpid() != creator_) return;  // a forked copy (see ~PoolCore)
    {
        std::lock_guard lock(mu_);
        state_ = State::terminate;
    }
    nudge();
    std::lock_guard lock(join_mu_);
    if (supervisor_.joinable()) supervisor_.join();
    if (result_thread_.joinable() && result_thread_.get_id() != std::this_thread::get_id()) result_thread_.join();
}

std::string PoolCore::repr() const {
    std::lock_guard lock(mu_);
    const char* s = state_ == State::run ? "RUN" : state_ == State::close ? "CLOSE" : "TERMINATE";
    return std::string("<polyproc.Pool state=") + s + " pool_size=" + std::to_string(size()) + ">";
}

}  // namespace polyproc::detail
