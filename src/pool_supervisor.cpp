// The supervisor thread: starts workers and replaces the dead, reports the task a dead worker held,
// kills tasks past their timeout, grows and shrinks an elastic pool, stops the workers at the end.
#include "pool_local.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <poll.h>
#include <unistd.h>

#include "os.hpp"
#include "pool_records.hpp"
#include "start_method.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/process.hpp"

namespace polyproc::detail {

// ---- supervisor -----------------------------------------------------------------------------------

bool LocalPoolBackend::wants_more_workers() const {
    const int live = shared_->live.load();
    switch (owner_->phase()) {
        case Phase::run:
            if (live < counts_.min) return true;
            return elastic_ && live < counts_.max && backlog();
        case Phase::close:
            // Replace workers that die while tasks remain (each new one gets a stop record).
            return live < counts_.min && owner_->tasks_outstanding();
        case Phase::terminate:
            break;
    }
    return false;
}

void LocalPoolBackend::start_worker(std::size_t slot) {
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

// A worker that is gone: off the live count (a retired one took itself off), worker_pids() and
// workers_.
void LocalPoolBackend::forget_worker(std::size_t slot) {
    if (slots_[slot].state.load() != SlotState::retired) shared_->live.fetch_sub(1);
    {
        std::lock_guard lock(pids_mu_);
        std::erase(pids_, workers_[slot]->process.pid());
    }
    workers_[slot].reset();
}

void LocalPoolBackend::reap(std::size_t slot) {
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
        if (init_failures_ >= 3 && !any_ready)
            owner_->break_pool(std::string("Pool workers keep failing in their initializer") +
                               (s.error[0] ? std::string(": ") + s.error
                                           : std::string(" (exit code ") + std::to_string(exitcode) + ")"));
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
        // A lost record's text follows the task's description in the WorkerLostError.
        const std::string crashed_in =
            !timed_out && s.crashed_in[0]
                ? ", crashed in " + std::string(s.crashed_in, ::strnlen(s.crashed_in, sizeof s.crashed_in))
                : "";
        put_record(results_, bytes_of(h), std::as_bytes(std::span(crashed_in.data(), crashed_in.size())));
    }
    s.crashed_in[0] = '\0';
    s.task.store(0);
    s.waiting.store(false);
    s.state.store(SlotState::free);
}

void LocalPoolBackend::kill_overdue() {
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

void LocalPoolBackend::supervise() {
    bool announced = false;
    auto announce = [&](std::exception_ptr error) {
        std::lock_guard lock(started_mu_);
        started_ = true;
        start_error_ = error;
        started_cv_.notify_all();
        announced = true;
    };
    try {
        for (int i = 0; i < counts_.start; ++i) start_worker(std::size_t(i));
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
            owner_->break_pool(std::string("Pool supervisor failed: ") + e.what());
        } catch (...) {
            owner_->break_pool("Pool supervisor failed");
        }
    }
    stop_all_workers();  // after close(): none are left; after terminate(): all of them
}

void LocalPoolBackend::supervise_loop() {
    for (;;) {
        const Phase phase = owner_->phase();
        if (phase == Phase::terminate) break;  // terminate(), or broken (which sets terminate)

        // Start what is missing, holding no lock of the engine's: a start takes a while (a spawn much longer than a
        // fork), and submissions go on meanwhile.
        for (;;) {
            if (!wants_more_workers()) break;
            auto free_slot = std::find_if(workers_.begin(), workers_.end(), [](auto& w) { return !w.has_value(); });
            if (free_slot == workers_.end()) break;
            try {
                start_worker(std::size_t(free_slot - workers_.begin()));
            } catch (...) {
                report_callback_exception("supervisor (starting a worker)");
                break;
            }
            // Each worker started after the stops were put needs a stop record of its own.
            if (owner_->workers_released()) ++stops_owed_;
            if (elastic_) break;  // one at a time: the next loop looks again
        }
        // Never waits for room: with the task queue full, only the workers this thread keeps
        // alive can make some. What does not fit now is put on a later round.
        while (stops_owed_ > 0 && put_stop(false)) --stops_owed_;
        const bool backlog_wait =
            elastic_ && owner_->phase() == Phase::run && shared_->live.load() < counts_.max && backlog();
        nudged_.store(false);

        const bool any_live = std::any_of(workers_.begin(), workers_.end(), [](auto& w) { return w.has_value(); });
        if (phase == Phase::close && owner_->workers_released() && !any_live) break;

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
void LocalPoolBackend::stop_all_workers() {
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
    end_result_stream();
}

}  // namespace polyproc::detail
