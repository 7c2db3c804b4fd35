// The Pool engine. Tasks go to the workers through one shared task queue (the queue engine of
// queues.cpp), results come back through one result queue, in the same memory. Two parent threads:
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

#include "polyproc/pool.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>
#include <typeinfo>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "names.hpp"
#include "os.hpp"
#include "process_internal.hpp"
#include "remote_exception.hpp"
#include "polyproc/process.hpp"
#include "polyproc/queues.hpp"

namespace polyproc {
namespace detail {

UserCodeScope::UserCodeScope() noexcept { count_user_code_on_this_thread(1); }
UserCodeScope::~UserCodeScope() { count_user_code_on_this_thread(-1); }

void report_callback_exception(const char* what) noexcept {
    try {
        std::string msg = std::string("Exception in pool ") + what + ":\n";
        try {
            throw;
        } catch (const std::exception& e) {
            msg += demangle(typeid(e).name()) + ": " + e.what() + "\n";
        } catch (...) {
            msg += "unknown exception\n";
        }
        (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    } catch (...) {
    }
}

class PoolCore;
bool pool_collect_one(PoolCore& core);

// ---- ResultState ----------------------------------------------------------------------------------

bool ResultState::wait(Timeout timeout) const {
    const std::shared_ptr<PoolCore> pool = pool_.lock();
    // Ready, or collect what results are there (ours may be among them) and look again.
    auto done = [&] {
        if (ready()) return true;
        if (pool)
            while (pool_collect_one(*pool))
                if (ready()) return true;
        return ready();
    };
    if (done()) return true;
    if (timeout.non_blocking()) return false;
    return os::wait_while_zero(ready_, sleepers_, done, Deadline(timeout));
}

std::string result_repr(const ResultState* state) {
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", static_cast<const void*>(state));
    return std::string("<polyproc.pool.AsyncResult object at ") + addr + ">";
}

bool ResultState::successful() const {
    if (!ready()) throw ValueError(result_repr(this) + " not ready");
    return !error;
}

void ResultState::set_ready() noexcept {
    std::atomic_ref<std::uint32_t>(ready_).store(1);
    if (std::atomic_ref<std::uint32_t>(sleepers_).load() != 0) os::futex_wake(&ready_, INT32_MAX);
}

// ---- the pool ---------------------------------------------------------------------------------

namespace {

enum class TaskKind : std::uint32_t { run = 0, stop = 1 };
struct TaskHeader {
    std::uint64_t ordinal;
    std::uint64_t runner;  // code offset of the TaskRunner
    std::int64_t timeout_ns;
    TaskKind kind;
    std::uint32_t reserved;
};

enum class Status : std::uint32_t { ok, raised, lost, timed_out, shutdown };
struct ResultHeader {
    std::uint64_t ordinal;
    Status status;
    std::int32_t pid;
    std::int32_t exitcode;
    std::uint32_t reserved;
};

enum class SlotState : std::uint32_t { free, starting, ready, retired, finished, init_failed };

// One per worker position, in shared memory: what the worker is doing, for the supervisor.
struct WorkerSlot {
    std::atomic<std::uint64_t> task{0};        // ordinal + 1 of the task taken; 0 when none
    std::atomic<std::int64_t> deadline_ns{0};  // CLOCK_MONOTONIC; 0 = no timeout
    std::atomic<SlotState> state{SlotState::free};
    std::atomic<bool> waiting{false};  // in get(), waiting for a task (cleared by reap if it died there)
    char error[240]{};  // what the initializer threw
};

struct PoolShared {
    std::atomic<std::int32_t> live{0};  // workers started and not yet gone or retired
};

std::int64_t monotonic_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void put_record(QueueCore& q, std::span<const std::byte> a, std::span<const std::byte> b = {}) {
    std::byte* out = q.begin_put(a.size() + b.size(), true, {});
    std::memcpy(out, a.data(), a.size());
    if (!b.empty()) std::memcpy(out + a.size(), b.data(), b.size());
    q.end_put(true);
}

template <class H>
std::span<const std::byte> bytes_of(const H& h) {
    return std::as_bytes(std::span<const H, 1>(&h, 1));
}

}  // namespace

namespace {

// Validates the options (Python's messages where Python has the option) and says how many workers.
struct WorkerCounts {
    int min, max, start;
};

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

}  // namespace

// The pool's header in shared memory, then one WorkerSlot per possible worker.
static_assert(sizeof(PoolShared) <= 64);

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
    {
        std::lock_guard lock(mu_);
        admit();  // before waiting for room (admitted again once written)
    }
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

// ---- supervisor -----------------------------------------------------------------------------------

bool PoolCore::wants_more_workers() const {
    const int live = shared_->live.load();
    if (state_ == State::run) {
        if (live < min_workers_) return true;
        return elastic_ && live < max_workers_ && backlog();
    }
    // Closed: replace workers that die while tasks remain (each new one gets a stop record).
    return state_ == State::close && live < min_workers_ && outstanding_.load() > 0;
}

void PoolCore::start_worker(std::size_t slot) {
    WorkerSlot& s = slots_[slot];
    s.task.store(0);
    s.deadline_ns.store(0);
    s.error[0] = '\0';
    s.waiting.store(false);
    s.state.store(SlotState::starting);
    shared_->live.fetch_add(1);
    Process p(std::unique_ptr<ProcessTarget>(
        std::make_unique<WorkerTarget>(this, slot)));  // returning ends the worker process
    p.set_daemon(true);
    p.set_start_method(std::string(start_method_name(method_)));
    p.set_name(worker_name_prefix() + std::to_string(++names_));
    try {
        p.start();
    } catch (...) {
        shared_->live.fetch_sub(1);
        s.state.store(SlotState::free);
        throw;
    }
    workers_[slot].emplace(Worker{std::move(p), 0});
    {
        std::lock_guard lock(pids_mu_);
        pids_.push_back(workers_[slot]->process.pid());
    }
}

void PoolCore::post(const ResultHeader& h) { put_record(results_, bytes_of(h)); }

// A worker that is gone: off the live count (a retired one took itself off), worker_pids() and
// workers_.
void PoolCore::forget_worker(std::size_t slot) {
    if (slots_[slot].state.load() != SlotState::retired) shared_->live.fetch_sub(1);
    {
        std::lock_guard lock(pids_mu_);
        std::erase(pids_, workers_[slot]->process.pid());
    }
    workers_[slot].reset();
}

void PoolCore::reap(std::size_t slot) {
    Worker& w = *workers_[slot];
    WorkerSlot& s = slots_[slot];
    const pid_t pid = w.process.pid();
    const int exitcode = w.process.exitcode().value_or(0);
    const SlotState state = s.state.load();
    const std::uint64_t task = s.task.load();
    // The initializer failed: it threw, or the worker crashed in it (a SIGKILL comes from outside:
    // a worker killed while starting is not the initializer's fault).
    const bool init_failed = state == SlotState::init_failed ||
                             (state == SlotState::starting && options_.initializer && exitcode != -SIGKILL);
    if (init_failed) {
        ++init_failures_;
        const bool any_ready = std::any_of(workers_.begin(), workers_.end(), [&](const auto& other) {
            return other && &*other != &w &&
                   slots_[std::size_t(&other - &workers_[0])].state.load() == SlotState::ready;
        });
        if (init_failures_ >= 3 && !any_ready) {
            std::lock_guard lock(mu_);
            if (broken_.empty())
                broken_ = std::string("Pool workers keep failing in their initializer") +
                          (s.error[0] ? std::string(": ") + s.error
                                      : std::string(" (exit code ") + std::to_string(exitcode) + ")");
            state_ = State::terminate;  // no more tasks: none would ever run
        }
    } else {
        init_failures_ = 0;
    }
    const bool timed_out = w.killed_for == task;
    forget_worker(slot);
    // Reported after the worker is gone from worker_pids(): whoever sees the failure sees that too.
    // Not when another worker holds the task: the dead one died before its take was recorded and
    // the next one took it (a worker records the task in its slot before its take, and clears it
    // only after its result is published, ahead of any report of ours).
    if (task != 0 && tasks_.taken_count() > task - 1 && !held_by_a_live_worker(task)) {
        ResultHeader h{task - 1, timed_out ? Status::timed_out : Status::lost, pid, exitcode, 0};
        post(h);
    }
    s.task.store(0);
    s.waiting.store(false);
    s.state.store(SlotState::free);
}

void PoolCore::kill_overdue() {
    const std::int64_t now = monotonic_ns();
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        if (!workers_[i]) continue;
        WorkerSlot& s = slots_[i];
        const std::uint64_t task = s.task.load();
        const std::int64_t deadline = s.deadline_ns.load();
        if (task == 0 || deadline == 0 || now < deadline || workers_[i]->killed_for == task) continue;
        // It may finish and take the next task between this check and the signal: that task then
        // fails with WorkerLostError (a window of a few instructions against a task past its limit).
        if (s.task.load() != task) continue;
        workers_[i]->killed_for = task;
        workers_[i]->process.kill();
    }
}

void PoolCore::supervise() {
    bool announced = false;
    auto announce = [&](std::exception_ptr error) {
        std::lock_guard lock(started_mu_);
        started_ = true;
        start_error_ = error;
        started_cv_.notify_all();
        announced = true;
    };
    try {
        for (int i = 0; i < start_workers_; ++i) start_worker(std::size_t(i));
    } catch (...) {
        // Python: if starting worker k fails, workers 0..k-1 are terminated and joined.
        for (auto& w : workers_)
            if (w) {
                w->process.kill();
                w->process.join();
            }
        announce(std::current_exception());
        return;
    }
    announce(nullptr);

    try {
        supervise_loop();
    } catch (...) {
        // Nothing can be trusted any more: stop the pool, and say why in every pending result.
        try {
            throw;
        } catch (const std::exception& e) {
            std::lock_guard lock(mu_);
            broken_ = std::string("Pool supervisor failed: ") + e.what();
        } catch (...) {
            std::lock_guard lock(mu_);
            broken_ = "Pool supervisor failed";
        }
        std::lock_guard lock(mu_);
        state_ = State::terminate;
    }
    stop_all_workers();  // after close(): none are left; after terminate(): all of them
}

void PoolCore::supervise_loop() {
    for (;;) {
        State state;
        {
            std::lock_guard lock(mu_);
            state = state_;
        }
        if (state == State::terminate) break;  // terminate(), or broken (which sets terminate)

        // Start what is missing, without mu_: a start takes a while (a spawn much longer than a
        // fork), and submissions go on meanwhile.
        for (;;) {
            {
                std::lock_guard lock(mu_);
                if (!wants_more_workers()) break;
            }
            auto free_slot = std::find_if(workers_.begin(), workers_.end(), [](auto& w) { return !w.has_value(); });
            if (free_slot == workers_.end()) break;
            try {
                start_worker(std::size_t(free_slot - workers_.begin()));
            } catch (...) {
                report_callback_exception("supervisor (starting a worker)");
                break;
            }
            {
                // Each worker started after the stops were put needs a stop record of its own.
                std::lock_guard lock(mu_);
                if (state_ == State::close && stops_put_) ++stops_owed_;
            }
            if (elastic_) break;  // one at a time: the next loop looks again
        }
        // Never waits for room: with the task queue full, only the workers this thread keeps
        // alive can make some. What does not fit now is put on a later round.
        while (stops_owed_ > 0 && put_stop(false)) --stops_owed_;
        bool backlog_wait;
        {
            std::lock_guard lock(mu_);
            backlog_wait = elastic_ && state_ == State::run && shared_->live.load() < max_workers_ && backlog();
        }
        nudged_.store(false);

        const bool any_live = std::any_of(workers_.begin(), workers_.end(), [](auto& w) { return w.has_value(); });
        bool stops_put;
        {
            std::lock_guard lock(mu_);
            stops_put = stops_put_;
        }
        if (state == State::close && stops_put && !any_live) break;

        std::vector<pollfd> fds;
        std::vector<std::size_t> which;
        fds.push_back(pollfd{wake_fd_.get(), POLLIN, 0});
        for (std::size_t i = 0; i < workers_.size(); ++i)
            if (workers_[i]) {
                fds.push_back(pollfd{workers_[i]->process.sentinel(), POLLIN, 0});
                which.push_back(i);
            }
        int timeout_ms = -1;
        if (options_.task_timeout)
            timeout_ms = int(std::clamp<std::int64_t>((*options_.task_timeout).count() / 4'000'000, 1, 50));
        if (backlog_wait || stops_owed_ > 0) timeout_ms = timeout_ms < 0 ? 10 : std::min(timeout_ms, 10);
        os::poll_until(fds,
                       timeout_ms < 0 ? Deadline::never() : Deadline(Timeout(std::chrono::milliseconds(timeout_ms))));
        if (fds[0].revents & POLLIN) {
            std::uint64_t v;
            (void)!::read(wake_fd_.get(), &v, sizeof v);
        }
        for (std::size_t k = 1; k < fds.size(); ++k) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const std::size_t i = which[k - 1];
            workers_[i]->process.join();
            reap(i);
        }
        if (options_.task_timeout) kill_overdue();
    }
}

// Terminate (or broken): stop every worker now, as Python's terminate() does.
void PoolCore::stop_all_workers() {
    for (auto& w : workers_)
        if (w) w->process.terminate();
    const Deadline grace(std::chrono::seconds(2));
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        if (!workers_[i]) continue;
        workers_[i]->process.join(grace.remaining().value_or(std::chrono::nanoseconds(0)));
        if (!workers_[i]->process.exitcode()) {
            workers_[i]->process.kill();
            workers_[i]->process.join();
        }
        forget_worker(i);
    }
    ResultHeader h{0, Status::shutdown, 0, 0, 0};
    post(h);
}

// ---- result thread --------------------------------------------------------------------------------

namespace {
thread_local int settling = 0;  // > 0 while this thread runs callbacks: it must not collect
}  // namespace

bool PoolCore::collect_one(bool block) {
    if (settling) return false;
    if (!block && results_.qsize() == 0) return false;  // a look without the consumers' lock
    std::span<const std::byte> p;
    try {
        p = results_.begin_get(block, {});
    } catch (const Empty&) {
        return false;
    }
    ResultHeader h;
    std::memcpy(&h, p.data(), sizeof h);
    if (h.status == Status::shutdown) {
        if (!block) {
            results_.cancel_get();  // the result thread's to take
            return false;
        }
        results_.end_get();
        shut_down_.store(true);
        return false;
    }
    Entry e;
    {
        std::lock_guard lock(table_mu_);
        if (h.ordinal >= table_base_ && h.ordinal - table_base_ < table_.size()) {
            e = std::move(table_[h.ordinal - table_base_]);
            table_[h.ordinal - table_base_].job = nullptr;
        }
        while (!table_.empty() && !table_.front().job) {
            table_.pop_front();
            ++table_base_;
        }
    }
    if (e.job) {
        const auto payload = p.subspan(sizeof h);
        try {
            switch (h.status) {
                case Status::ok:
                    e.job->on_result(e.chunk, payload);
                    break;
                case Status::raised:
                    e.job->on_error(e.chunk, to_exception_ptr(decode_payload<RemoteException>(payload), h.pid));
                    break;
                case Status::lost:
                    e.job->on_error(
                        e.chunk, std::make_exception_ptr(WorkerLostError(h.pid, h.exitcode, e.job->describe(e.chunk))));
                    break;
                case Status::timed_out:
                    e.job->on_error(e.chunk, std::make_exception_ptr(TimeoutError(
                                                 e.job->describe(e.chunk) + " ran past its task_timeout; worker " +
                                                 std::to_string(h.pid) + " was killed")));
                    break;
                case Status::shutdown:  // handled above
                    break;
            }
        } catch (...) {
            e.job->on_error(e.chunk, std::current_exception());  // a result that does not decode
        }
    }
    // Settle under settle_mu_, taken before the next result can be taken: arrival order.
    std::unique_lock settle(settle_mu_);
    results_.end_get();
    if (e.job) {
        ++settling;
        e.job->settle(e.chunk);
        --settling;
        outstanding_.fetch_sub(1, std::memory_order_relaxed);
    }
    return true;
}

void PoolCore::collect_results() {
    while (!shut_down_.load()) collect_one(true);
    fail_leftovers();
}

// Whatever is left will never run: the pool was terminated (Python leaves such results pending
// forever; a waiting get() would hang).
void PoolCore::fail_leftovers() noexcept {
    std::deque<Entry> left;
    {
        std::lock_guard lock(table_mu_);
        left.swap(table_);
        table_base_ += left.size();
    }
    std::string why;
    {
        std::lock_guard lock(mu_);
        why = broken_.empty() ? std::string("Pool was terminated before the task finished") : broken_;
    }
    const auto error = std::make_exception_ptr(ProcessError(why));
    std::lock_guard settle(settle_mu_);
    for (auto& e : left) {
        if (!e.job) continue;
        e.job->on_error(e.chunk, error);
        e.job->settle(e.chunk);
    }
}

bool pool_collect_one(PoolCore& core) { return core.collect_one(false); }

// ---- worker ---------------------------------------------------------------------------------------

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

        ResultHeader r{h.ordinal, Status::ok, me, 0, 0};
        out.resize(sizeof r);
        try {
            reinterpret_cast<TaskRunner>(code_address(h.runner))(body, out);
        } catch (...) {
            r.status = Status::raised;
            out.resize(sizeof r);
            OutputArchive ar(out);
            ar(capture_current_exception());
        }
        std::memcpy(out.data(), &r, sizeof r);
        try {
            put_record(results_, out);
        } catch (...) {  // a result larger than the queue can hold
            r.status = Status::raised;
            out.resize(sizeof r);
            std::memcpy(out.data(), &r, sizeof r);
            OutputArchive ar(out);
            ar(capture_current_exception());
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

void PoolCore::run_worker(std::size_t slot) {
    worker_loop(WorkerEnv{tasks_, results_, *shared_, slots_[slot], options_.initializer,
                          elastic_ ? Timeout(options_.idle_timeout) : Timeout(), options_.maxtasksperchild,
                          min_workers_});
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

CodeRef PoolCore::encode_worker(ChildWriter& w, std::size_t slot) const {
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
    w.raw(static_cast<std::int32_t>(min_workers_));
    w.raw(static_cast<std::uint8_t>(static_cast<bool>(options_.initializer)));
    if (options_.initializer) options_.initializer.write(w);  // last: it is read when it runs
    return code_offset(reinterpret_cast<std::uintptr_t>(&run_worker_in_fresh_child));
}

// ---- the free functions pool.hpp declares ---------------------------------------------------------

std::shared_ptr<PoolCore> pool_create(PoolOptions options) { return std::make_shared<PoolCore>(std::move(options)); }
void pool_submit(PoolCore& core, const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner,
                 std::size_t body_size, BodyWriter write, bool feeding) {
    core.submit(job, chunk, runner, body_size, write, feeding);
}
void pool_check_running(const PoolCore& core) { core.check_running(); }
std::size_t pool_size(const PoolCore& core) { return core.size(); }
std::size_t pool_imap_window(const PoolCore& core) { return core.imap_window(); }
void pool_add_feeder(PoolCore& core, const std::shared_ptr<Feeder>& feeder) { core.add_feeder(feeder); }
void pool_remove_feeder(PoolCore& core, const Feeder* feeder) noexcept { core.remove_feeder(feeder); }
void pool_close(PoolCore& core) { core.close(); }
void pool_join(PoolCore& core) { core.join(); }
void pool_terminate(PoolCore& core) noexcept { core.terminate(); }
std::string pool_repr(const PoolCore& core) { return core.repr(); }
std::vector<pid_t> pool_worker_pids(const PoolCore& core) { return core.worker_pids(); }

}  // namespace detail

// ---- Pool -----------------------------------------------------------------------------------------

Pool::Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}
Pool::Pool(PoolOptions options) : core_(detail::pool_create(std::move(options))) {}

Pool& Pool::operator=(Pool&& other) noexcept {
    if (this != &other) {
        if (core_) detail::pool_terminate(*core_);
        core_ = std::move(other.core_);
    }
    return *this;
}

Pool::~Pool() {
    if (core_) detail::pool_terminate(*core_);
}

detail::PoolCore& Pool::core() const {
    if (!core_) throw ValueError("Pool not running");
    return *core_;
}

void Pool::close() { detail::pool_close(core()); }
void Pool::join() { detail::pool_join(core()); }
void Pool::terminate() { detail::pool_terminate(core()); }
std::size_t Pool::size() const { return detail::pool_size(core()); }
std::vector<pid_t> Pool::worker_pids() const { return detail::pool_worker_pids(core()); }
std::string Pool::repr() const { return detail::pool_repr(core()); }

// ---- progress -------------------------------------------------------------------------------------

namespace detail {

namespace {
std::string clock_text(double seconds) {
    if (!(seconds >= 0) || seconds > 359999) return "??:??";
    const long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
    return buf;
}
}  // namespace

std::string render_progress(std::size_t count, std::size_t total, std::chrono::duration<double> elapsed,
                            std::size_t width) {
    const double secs = elapsed.count();
    const double rate = secs > 0 ? double(count) / secs : 0.0;
    char rate_text[48];
    std::snprintf(rate_text, sizeof rate_text, "%.2fit/s", rate);
    if (total == 0) return std::to_string(count) + "it [" + clock_text(secs) + ", " + rate_text + "]";
    const double frac = std::min(1.0, double(count) / double(total));
    static const char* const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    const std::size_t cells8 = std::size_t(frac * double(width) * 8);
    std::string bar;
    std::size_t used = cells8 / 8;
    for (std::size_t i = 0; i < used; ++i) bar += "█";
    if (used < width && cells8 % 8) {
        bar += eighths[cells8 % 8];
        ++used;
    }
    bar.append(width - used, ' ');
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", int(frac * 100));
    const double eta = rate > 0 && count <= total ? double(total - count) / rate : -1;
    return std::string(pct) + "|" + bar + "| " + std::to_string(count) + "/" + std::to_string(total) + " [" +
           clock_text(secs) + "<" + (count >= total ? clock_text(0) : clock_text(eta)) + ", " + rate_text + "]";
}

ProgressBar::ProgressBar(std::size_t total)
    : total_(total), active_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_draw_() {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::tick() noexcept {
    ++count_;
    if (!active_ || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    try {
        const std::string line = "\r" + render_progress(count_, total_, now - start_);
        (void)!::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
    }
}

void ProgressBar::finish() noexcept {
    if (!active_ || finished_) return;
    finished_ = true;
    try {
        const std::string line =
            "\r" + render_progress(count_, total_, std::chrono::steady_clock::now() - start_) + "\n";
        (void)!::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
    }
}

}  // namespace detail
}  // namespace polyproc
