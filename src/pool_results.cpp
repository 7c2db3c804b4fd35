// Results: the result thread takes them from the backend and settles their jobs (callbacks,
// readiness) in arrival order; a thread waiting in AsyncResult::get/wait does the same work.
#include "pool_core.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <typeinfo>
#include <utility>

#include <unistd.h>

#include "fork_safety.hpp"
#include "names.hpp"
#include "os.hpp"
#include "pool_records.hpp"
#include "remote_exception.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail {

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

bool pool_collect_one(PoolCore& core);

namespace {
std::string text_of(std::span<const std::byte> payload) {
    return std::string(reinterpret_cast<const char*>(payload.data()), payload.size());
}
}  // namespace

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
    return os::futex_wait_until(ready_, sleepers_, done, Deadline(timeout), os::WaitStyle{.sleep_while = 0});
}

std::string result_repr(const ResultState* state) {
    return "<polyproc.pool.AsyncResult object at " + address_text(state) + ">";
}

bool ResultState::successful() const {
    if (!ready()) throw ValueError(result_repr(this) + " not ready");
    return !error;
}

void ResultState::set_ready() noexcept {
    std::atomic_ref<std::uint32_t>(ready_).store(1);
    os::futex_wake_sleepers(ready_, sleepers_, INT32_MAX, os::Wake::word_changed);
}

// ---- result thread --------------------------------------------------------------------------------

namespace {
thread_local int settling = 0;  // > 0 while this thread runs callbacks: it must not collect
}  // namespace

bool PoolCore::collect_one(bool block) {
    if (settling) return false;
    if (!block && !backend_->results_waiting()) return false;  // a look without a lock
    const std::optional<ResultView> result = backend_->begin_result(block);
    if (!result) return false;
    const ResultHeader& h = result->header;
    if (h.status == Status::shutdown) {
        if (!block) {
            backend_->cancel_result();  // the result thread's to take
            return false;
        }
        backend_->end_result();
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
        const auto payload = result->payload;
        try {
            switch (h.status) {
                case Status::ok:
                    e.job->on_result(e.chunk, payload);
                    break;
                case Status::raised:
                    if (!e.job->take_raised(e.chunk, payload, h.pid))
                        e.job->on_error(e.chunk, to_exception_ptr(decode_payload<RemoteException>(payload), h.pid));
                    break;
                case Status::lost:
                    e.job->on_error(e.chunk, std::make_exception_ptr(WorkerLostError(
                                                 h.pid, h.exitcode, e.job->describe(e.chunk) + text_of(payload))));
                    break;
                case Status::gone:
                    e.job->on_error(e.chunk, std::make_exception_ptr(
                                                 WorkerLostError(h.pid, e.job->describe(e.chunk), text_of(payload))));
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
    backend_->end_result();
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

}  // namespace polyproc::detail
