// polyproc/detail/pool_jobs.hpp — the machinery behind polyproc/pool.hpp: how a submitted call
// becomes jobs and tasks (ApplyJob, MapJob, IMapJob), the result states AsyncResult waits on, the
// callback adapters, the imap streams that feed a pool on demand, and the functions through which
// all of them reach the engine (PoolCore, src/pool_core.hpp). Internal: pool.hpp includes it after
// PoolOptions and Callbacks, which it uses, and it is not meant to be included on its own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "polyproc/detail/futex_sleepers.hpp"
#include "polyproc/detail/pool_task.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc {

namespace detail {

template <class T>
struct is_callbacks : std::false_type {};
template <class C, class E>
struct is_callbacks<Callbacks<C, E>> : std::true_type {};

// A non-owning reference to a callable (std::function_ref is C++26).
template <class Sig>
class FunctionRef;
template <class Ret, class... A>
class FunctionRef<Ret(A...)> {
public:
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>)
    FunctionRef(F& f) noexcept  // NOLINT: implicit on purpose
        : object_(&f), call_([](void* o, A... a) -> Ret { return (*static_cast<F*>(o))(std::forward<A>(a)...); }) {}
    Ret operator()(A... a) const { return call_(object_, std::forward<A>(a)...); }

private:
    void* object_;
    Ret (*call_)(void*, A...);
};

// Prints "Exception in pool <what>:" and the current exception to stderr (the callback's
// exception has nowhere else to go: Python prints it too).
void report_callback_exception(const char* what) noexcept;
// Marks the pool's result thread as running user code while a callback runs (a fork from a
// callback gets the multi-threaded-fork warning like a fork from any thread of the user's).
struct UserCodeScope {
    UserCodeScope() noexcept;
    ~UserCodeScope();
    UserCodeScope(const UserCodeScope&) = delete;
    UserCodeScope& operator=(const UserCodeScope&) = delete;
};

class PoolCore;  // src/pool_core.hpp
class ResultState;
std::string result_repr(const ResultState* state);  // "<polyproc.pool.AsyncResult object at 0x...>"

// One result (an apply, a whole map) as waited on by AsyncResult: ready flag and the task's
// exception. A waiting thread does not just sleep: it takes finished results off the pool's
// result queue itself (the result thread's work, in the same order, one at a time), so that a
// get() right after a task finishes costs one wake-up instead of two.
class ResultState {
public:
    virtual ~ResultState() = default;
    bool ready() const noexcept { return std::atomic_ref<std::uint32_t>(ready_).load(std::memory_order_acquire) != 0; }
    bool wait(Timeout timeout) const;  // true once ready
    bool successful() const;  // mp::ValueError "... not ready" before ready
    void set_ready() noexcept;
    void set_pool(const std::shared_ptr<PoolCore>& core) { pool_ = core; }

    std::exception_ptr error;

private:
    std::weak_ptr<PoolCore> pool_;
    // A plain word reached through std::atomic_ref: a futex word, as os::futex_wait_until takes it.
    mutable std::uint32_t ready_ = 0;
    mutable FutexSleepers sleepers_;
};

template <class T>
class ResultOf : public ResultState {
public:
    virtual std::add_lvalue_reference_t<T> value() = 0;  // once ready without error
};

// What the pool's result thread calls for each finished task of a job. on_result/on_error run
// while the result is read out of shared memory (decode only); settle runs after, once per task:
// callbacks and readiness.
class JobBase {
public:
    virtual ~JobBase() = default;
    virtual void on_result(std::uint32_t chunk, std::span<const std::byte> payload) = 0;
    virtual void on_error(std::uint32_t chunk, std::exception_ptr error) noexcept = 0;
    // A task raised: `remote_exception` is the worker's description of it, as it wrote it. A job
    // that passes failures on to another process (a manager's pool) takes it as it is and says
    // true; otherwise the engine makes the exception here and calls on_error.
    virtual bool take_raised(std::uint32_t chunk, std::span<const std::byte> remote_exception, pid_t worker) noexcept {
        (void)chunk, (void)remote_exception, (void)worker;
        return false;
    }
    virtual void settle(std::uint32_t chunk) noexcept = 0;
    virtual std::string describe(std::uint32_t chunk) const = 0;
};

// An imap whose input is not all submitted yet; join() after close() makes it submit the rest.
class Feeder {
public:
    virtual ~Feeder() = default;
    virtual void feed_all() = 0;
};

using BodyWriter = FunctionRef<void(std::span<std::byte>)>;
std::shared_ptr<PoolCore> pool_create(PoolOptions options);
// Puts task `chunk` of `job` (a body of body_size bytes written by `write`) on the task queue.
// mp::ValueError("Pool not running") unless the pool runs, or is closed and `feeding` is set.
void pool_submit(PoolCore& core, const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner,
                 std::size_t body_size, BodyWriter write, bool feeding = false);
void pool_check_running(const PoolCore& core);

// Puts one chunk of a map or imap: the items [first, first + n), for f.
template <class F, class T, bool Star, class It>
void submit_chunk(PoolCore& core, const std::shared_ptr<JobBase>& job, std::uint32_t index, const F& f, It first,
                  std::size_t n, bool feeding = false) {
    const std::size_t size = function_bytes<F> + chunk_body_size_after_function(first, n);
    auto write = [&](std::span<std::byte> out) { write_chunk_body(f, first, n, out); };
    pool_submit(core, job, index, &run_chunk<F, T, Star>, size, BodyWriter(write), feeding);
}
std::size_t pool_size(const PoolCore& core);  // workers now
std::size_t pool_imap_window(const PoolCore& core);
void pool_add_feeder(PoolCore& core, const std::shared_ptr<Feeder>& feeder);
void pool_remove_feeder(PoolCore& core, const Feeder* feeder) noexcept;
void pool_close(PoolCore& core);
void pool_join(PoolCore& core);
void pool_terminate(PoolCore& core) noexcept;
std::string pool_repr(const PoolCore& core);
std::vector<pid_t> pool_worker_pids(const PoolCore& core);

template <class C, class Arg>
std::function<void(const Arg&)> make_callback(C&& c) {
    if constexpr (std::is_same_v<std::decay_t<C>, NoCallback>)
        return {};
    else {
        static_assert(std::is_invocable_v<C&, const Arg&>,
                      "polyproc::Pool: the callback cannot be called with the task's result type");
        return [c = std::forward<C>(c)](const Arg& v) mutable { c(v); };
    }
}
template <class C>
std::function<void()> make_void_callback(C&& c) {
    if constexpr (std::is_same_v<std::decay_t<C>, NoCallback>)
        return {};
    else {
        static_assert(std::is_invocable_v<C&>, "polyproc::Pool: the callback of a void task takes no arguments");
        return [c = std::forward<C>(c)]() mutable { c(); };
    }
}
template <class E>
std::function<void(std::exception_ptr)> make_error_callback(E&& e) {
    if constexpr (std::is_same_v<std::decay_t<E>, NoCallback>)
        return {};
    else if constexpr (std::is_invocable_v<E&, std::exception_ptr>)
        return [e = std::forward<E>(e)](std::exception_ptr p) mutable { e(p); };
    else {
        static_assert(std::is_invocable_v<E&, const std::exception&>,
                      "polyproc::Pool: error_callback must take const std::exception& or std::exception_ptr");
        return [e = std::forward<E>(e)](std::exception_ptr p) mutable {
            try {
                std::rethrow_exception(p);
            } catch (const std::exception& ex) {
                e(ex);
            } catch (...) {
                e(ProcessError("unknown exception"));
            }
        };
    }
}

// Runs the callback for a finished job, then marks it ready (Python: callback before ready()).
template <class Invoke>
void settle_with_callbacks(ResultState& state, const std::function<void(std::exception_ptr)>& on_error,
                           Invoke&& on_success) noexcept {
    try {
        UserCodeScope user_code;
        if (state.error) {
            if (on_error) on_error(state.error);
        } else {
            on_success();
        }
    } catch (...) {
        report_callback_exception(state.error ? "error_callback" : "callback");
    }
    state.set_ready();
}

template <class T>
struct success_function {
    using type = std::function<void(const T&)>;
};
template <>
struct success_function<void> {
    using type = std::function<void()>;
};

// apply_async's job: one task, one value.
template <class R>
class ApplyJob final : public JobBase, public ResultOf<R> {
public:
    using Success = typename success_function<R>::type;
    ApplyJob(Success on_success, std::function<void(std::exception_ptr)> on_error)
        : on_success_(std::move(on_success)), on_error_(std::move(on_error)) {}

    void on_result(std::uint32_t, std::span<const std::byte> payload) override {
        if constexpr (!std::is_void_v<R>) value_ = decode_payload<R>(payload);
    }
    void on_error(std::uint32_t, std::exception_ptr e) noexcept override { this->error = e; }
    void settle(std::uint32_t) noexcept override {
        settle_with_callbacks(*this, on_error_, [&] {
            if (on_success_) {
                if constexpr (std::is_void_v<R>)
                    on_success_();
                else
                    on_success_(*value_);
            }
        });
    }
    std::string describe(std::uint32_t) const override { return "an apply_async task"; }
    std::add_lvalue_reference_t<R> value() override {
        if constexpr (!std::is_void_v<R>) return *value_;
    }

private:
    Success on_success_;
    std::function<void(std::exception_ptr)> on_error_;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value_{};
};

// map_async's job: `total` items in chunks of `chunksize`, results in input order.
template <class R>
class MapJob final : public JobBase, public ResultOf<std::conditional_t<std::is_void_v<R>, void, std::vector<R>>> {
public:
    using Value = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
    using Success = typename success_function<Value>::type;
    MapJob(std::size_t total, std::size_t chunksize, Success on_success,
           std::function<void(std::exception_ptr)> on_error)
        : total_(total),
          chunksize_(chunksize),
          chunks_left_(chunksize ? (total + chunksize - 1) / chunksize : 0),
          on_success_(std::move(on_success)),
          on_error_(std::move(on_error)) {
        if constexpr (!std::is_void_v<R>) results_.resize(total);
    }

    void on_result(std::uint32_t chunk, std::span<const std::byte> payload) override {
        if constexpr (!std::is_void_v<R>) {
            const std::size_t start = std::size_t(chunk) * chunksize_;
            read_chunk_result<R>(payload, std::min(chunksize_, total_ - start),
                                 [&](std::size_t i, R&& v) { results_[start + i] = std::move(v); });
        }
    }
    void on_error(std::uint32_t, std::exception_ptr e) noexcept override {
        if (!this->error) this->error = e;  // Python keeps the first failure
    }
    void settle(std::uint32_t) noexcept override {
        if (--chunks_left_ == 0) finish();
    }
    // Marks the job done: callbacks, then ready. Also for an empty input, which has no tasks.
    void finish() noexcept {
        settle_with_callbacks(*this, on_error_, [&] {
            if (on_success_) {
                if constexpr (std::is_void_v<R>)
                    on_success_();
                else
                    on_success_(results_);
            }
        });
    }
    std::string describe(std::uint32_t chunk) const override {
        const std::size_t start = std::size_t(chunk) * chunksize_;
        const std::size_t end = std::min(start + chunksize_, total_);
        return end - start == 1 ? "map item " + std::to_string(start)
                                : "map items " + std::to_string(start) + ".." + std::to_string(end - 1);
    }
    std::add_lvalue_reference_t<Value> value() override {
        if constexpr (!std::is_void_v<R>) return results_;
    }

private:
    std::size_t total_, chunksize_;
    std::size_t chunks_left_;  // touched by the result thread only
    Success on_success_;
    std::function<void(std::exception_ptr)> on_error_;
    std::conditional_t<std::is_void_v<R>, bool, std::vector<R>> results_{};
};

// imap's job: chunks' results as they arrive, for the iterator to take.
template <class R>
class IMapJob final : public JobBase {
public:
    struct Entry {
        std::vector<R> items;
        std::exception_ptr error;
    };
    explicit IMapJob(bool ordered) : ordered_(ordered) {}

    void expect(std::uint32_t chunk, std::size_t first, std::size_t n) {
        std::lock_guard lock(mu_);
        spans_[chunk] = {first, n};
    }
    void on_result(std::uint32_t chunk, std::span<const std::byte> payload) override {
        const std::size_t n = span_of(chunk).second;
        Entry e;
        e.items.reserve(n);
        read_chunk_result<R>(payload, n, [&](std::size_t, R&& v) { e.items.push_back(std::move(v)); });
        deliver(chunk, std::move(e));
    }
    void on_error(std::uint32_t chunk, std::exception_ptr error) noexcept override {
        try {
            deliver(chunk, Entry{{}, error});
        } catch (...) {
        }
    }
    void settle(std::uint32_t) noexcept override {}
    std::string describe(std::uint32_t chunk) const override {
        auto [first, n] = span_of(chunk);
        return n == 1 ? "imap item " + std::to_string(first)
                      : "imap items " + std::to_string(first) + ".." + std::to_string(first + n - 1);
    }
    // The next chunk's entry (ordered: chunk `chunk`; unordered: the oldest arrival). False on timeout.
    bool take(std::uint32_t chunk, const Deadline& deadline, Entry& out) {
        std::unique_lock lock(mu_);
        for (;;) {
            if (ordered_) {
                if (auto it = arrived_.find(chunk); it != arrived_.end()) {
                    out = std::move(it->second);
                    arrived_.erase(it);
                    spans_.erase(chunk);
                    return true;
                }
            } else if (!arrival_order_.empty()) {
                out = std::move(arrival_order_.front());
                arrival_order_.pop_front();
                return true;
            }
            ++waiting_;
            if (deadline.is_never())
                cv_.wait(lock);
            else if (cv_.wait_until(lock, *deadline.at()) == std::cv_status::timeout && deadline.expired()) {
                --waiting_;
                return false;
            }
            --waiting_;
        }
    }

private:
    std::pair<std::size_t, std::size_t> span_of(std::uint32_t chunk) const {
        std::lock_guard lock(mu_);
        auto it = spans_.find(chunk);
        return it == spans_.end() ? std::pair<std::size_t, std::size_t>{0, 0} : it->second;
    }
    void deliver(std::uint32_t chunk, Entry&& e) {
        std::lock_guard lock(mu_);
        if (ordered_)
            arrived_.emplace(chunk, std::move(e));
        else {
            arrival_order_.push_back(std::move(e));
            spans_.erase(chunk);
        }
        if (waiting_) cv_.notify_one();
    }

    const bool ordered_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    int waiting_ = 0;
    std::map<std::uint32_t, std::pair<std::size_t, std::size_t>> spans_;  // chunk -> first item, count
    std::map<std::uint32_t, Entry> arrived_;
    std::deque<Entry> arrival_order_;
};

// The iterator's side of an imap: pulls input chunk by chunk, keeps at most `window` chunks in
// flight, hands out results. Type-erased over the input range.
template <class R>
class IMapStream : public Feeder {
public:
    virtual std::optional<R> next(Timeout timeout) = 0;
};

template <class F, class View, class R>
class RangeIMapStream final : public IMapStream<R>, public std::enable_shared_from_this<RangeIMapStream<F, View, R>> {
    using T = std::ranges::range_value_t<View>;

public:
    RangeIMapStream(std::shared_ptr<PoolCore> core, F f, View view, std::size_t chunksize, bool ordered)
        : core_(std::move(core)),
          f_(f),
          view_(std::move(view)),
          it_(std::ranges::begin(view_)),
          chunksize_(chunksize),
          window_(pool_imap_window(*core_)),
          job_(std::make_shared<IMapJob<R>>(ordered)) {}

    ~RangeIMapStream() override {
        if (registered_) pool_remove_feeder(*core_, this);
    }

    // Submits the first window; registers for join() when input is left.
    void start() {
        top_up(false);
        std::lock_guard lock(feed_mu_);
        if (!exhausted_) {
            registered_ = true;
            pool_add_feeder(*core_, this->shared_from_this());
        }
    }

    void feed_all() override { top_up(true); }

    std::optional<R> next(Timeout timeout) override {
        if (pos_ < items_.size()) return std::move(items_[pos_++]);
        const Deadline deadline(timeout);
        for (;;) {
            top_up(false);
            std::uint32_t submitted;
            bool exhausted;
            {
                std::lock_guard lock(feed_mu_);
                submitted = submitted_;
                exhausted = exhausted_;
            }
            if (consumed_ == submitted && exhausted) {
                if (input_error_) std::rethrow_exception(std::exchange(input_error_, nullptr));
                return std::nullopt;
            }
            typename IMapJob<R>::Entry e;
            if (!job_->take(consumed_, timeout.non_blocking() ? Deadline(std::chrono::nanoseconds(0)) : deadline, e))
                throw TimeoutError();
            ++consumed_;
            if (e.error) std::rethrow_exception(e.error);
            items_ = std::move(e.items);
            pos_ = 0;
            if (pos_ < items_.size()) return std::move(items_[pos_++]);
        }
    }

private:
    // Pulls and submits chunks while fewer than window_ are in flight (all of them when `all`).
    void top_up(bool all) {
        bool done_now = false;
        {
            std::lock_guard lock(feed_mu_);
            while (!exhausted_ && (all || submitted_ - consumed_ < window_)) {
                std::vector<T> chunk;
                try {
                    for (; chunk.size() < chunksize_ && it_ != std::ranges::end(view_); ++it_) chunk.push_back(*it_);
                } catch (...) {
                    input_error_ = std::current_exception();  // surfaces after the chunks before it
                    exhausted_ = true;
                    break;
                }
                if (chunk.empty()) {
                    exhausted_ = true;
                    break;
                }
                const std::uint32_t index = submitted_;
                job_->expect(index, first_item_, chunk.size());
                try {
                    submit_chunk<F, T, false>(*core_, job_, index, f_, chunk.begin(), chunk.size(), registered_);
                } catch (...) {
                    if (all) throw;
                    // The pool stopped: what was submitted still comes out (results, or the
                    // pool's failure), then this.
                    input_error_ = std::current_exception();
                    exhausted_ = true;
                    break;
                }
                first_item_ += chunk.size();
                ++submitted_;
            }
            done_now = exhausted_ && registered_;
            if (done_now) registered_ = false;
        }
        if (done_now) pool_remove_feeder(*core_, this);
    }

    std::shared_ptr<PoolCore> core_;
    F f_;
    View view_;
    std::ranges::iterator_t<View> it_;
    const std::size_t chunksize_;
    const std::size_t window_;
    std::shared_ptr<IMapJob<R>> job_;

    std::mutex feed_mu_;  // the input side: the iterator's thread and join()
    std::uint32_t submitted_ = 0;
    bool exhausted_ = false;
    bool registered_ = false;
    std::size_t first_item_ = 0;
    std::exception_ptr input_error_;  // written under feed_mu_, read by the iterator's thread

    std::uint32_t consumed_ = 0;  // the iterator's thread only
    std::vector<R> items_;
    std::size_t pos_ = 0;
};

}  // namespace detail

}  // namespace polyproc
