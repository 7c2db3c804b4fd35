// polyproc/pool.hpp — Pool, AsyncResult, IMapIterator, Callbacks, PoolOptions, progress
// (Python's multiprocessing.pool), with what Python's pool lacks:
//   * a worker that dies mid-task (SIGKILL, segfault, abort(), exit()) fails exactly that task with
//     mp::WorkerLostError and is replaced; every other task completes (Python's result hangs forever);
//   * PoolOptions::task_timeout: a task running longer is killed with its worker, which is
//     replaced; the task fails with mp::TimeoutError;
//   * imap/imap_unordered pull their input on demand and keep a bounded number of chunks in
//     flight, so an endless input range runs in bounded memory;
//   * an elastic pool (PoolOptions::min_processes/max_processes): it grows while tasks wait and
//     shrinks after idle_timeout;
//   * mp::progress(range, total): a progress bar with rate and ETA on stderr when it is a terminal.
//
// Functions: a plain function, a captureless lambda, or a lambda whose captures are trivially
// copyable (their bytes are sent with each task). Anything else is a compile-time error that says
// to pass the state as arguments. Arguments and results are any mp::Serializable type. A task that
// throws a standard exception (std::runtime_error, std::out_of_range, ..., polyproc's own errors)
// or a type registered with mp::register_exception<E>() rethrows the same type from get(); any
// other exception becomes mp::RemoteError (type name, message, worker pid).
//
// Python's semantics otherwise: workers are daemonic processes named ForkPoolWorker-N; callbacks
// run in the parent, one at a time, in the order results arrive, before ready() turns true: on the
// pool's result thread, or in a thread waiting in get()/wait(), which collects results itself. A
// callback must not wait for another result of the same pool, nor close/join/terminate it; map
// raises the first failure after all chunks ran; imap raises a failure at its position and goes
// on. The destructor terminates the pool, like leaving Python's `with` block; unlike Python,
// results still pending then fail with mp::ProcessError instead of never completing.
//
// Process-safety: a Pool belongs to the process that created it; its methods may be called from
// any thread of that process. An AsyncResult or IMapIterator is used from one thread at a time.
//
//   mp::Pool pool(4);
//   std::vector<int> squares = pool.map([](int x) { return x * x; }, std::vector{1, 2, 3});
//   auto r = pool.apply_async(mp::Callbacks{.callback = [](int v) { std::cout << v << "\n"; }},
//                             [](int a, int b) { return a + b; }, 2, 3);
//   r.get(std::chrono::seconds(1));
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
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

#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/pool_task.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/process.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc {

// Python's initializer= and initargs=: what each worker runs before its first task,
//   .initializer = f                      or   .initializer = mp::PoolInitializer(f, queue, 42)
// Any callable under fork; under spawn and forkserver a function or a lambda without captures,
// with arguments that can reach a fresh child as a Process's do (sendable values and polyproc
// handles: a Queue, a Lock, a Value...); anything else is an mp::ValueError when the pool starts.
namespace detail {
template <class T>
inline constexpr bool is_std_function = false;
template <class S>
inline constexpr bool is_std_function<std::function<S>> = true;
}  // namespace detail

class PoolInitializer {
public:
    PoolInitializer() = default;
    template <class F, class... Args>
        requires(!std::is_same_v<std::decay_t<F>, PoolInitializer> && detail::is_process_target<F, Args...>)
    PoolInitializer(F&& f, Args&&... args)  // NOLINT: converts from a callable, as std::function does
        : travels_(detail::is_sendable_function<std::decay_t<F>, detail::Captures::none> &&
                   (detail::is_inheritable<detail::sent_as_t<std::decay_t<Args>, detail::StdRef::unwrap>> && ...)) {
        // A null function pointer or an empty std::function is no initializer, as before.
        if constexpr (std::is_pointer_v<std::remove_cvref_t<F>> || detail::is_std_function<std::remove_cvref_t<F>>)
            if (!f) return;
        target_ = std::make_shared<detail::TargetWithArgs<std::decay_t<F>, std::decay_t<Args>...>>(
            std::forward<F>(f), std::forward<Args>(args)...);
    }
    explicit operator bool() const noexcept { return static_cast<bool>(target_); }
    // Runs in a worker, once: copies of a PoolInitializer share one target, and the call may move
    // the arguments into f. That is safe because only workers call it, each in its own process.
    void operator()() const { target_->call(); }

    // For the pool's workers in spawn and forkserver children: the entry comes first (the reader
    // must know it before the function and arguments it reads).
    bool travels() const noexcept { return travels_; }
    void write(detail::ChildWriter& w) const {
        const std::size_t at = w.bytes().size();
        w.raw(detail::CodeRef{});
        w.raw_at(at, target_->encode_for_child(w));
    }
    static PoolInitializer read(detail::ChildReader& r) {
        auto entry = reinterpret_cast<detail::ChildEntry>(detail::code_address(r.raw<detail::CodeRef>()));
        return PoolInitializer([entry, &r] { entry(r); });
    }

private:
    std::shared_ptr<detail::ProcessTarget> target_;
    bool travels_ = false;
};

namespace detail {
class PoolBackendFactory;  // where a pool's workers run when not on this machine (src/pool_backend.hpp)
}  // namespace detail

struct PoolOptions {
    int processes = 0;  // 0 = cpu_count(); in an elastic pool, how many to start with (0 = min_processes)
    PoolInitializer initializer;  // run once in each worker before its first task (with initargs)
    int maxtasksperchild = 0;           // 0 = no limit (Python's None)
    // Beyond Python:
    Timeout task_timeout;  // a task running longer is killed with its worker: mp::TimeoutError
    int min_processes = 1;  // elastic pool (max_processes > 0): never fewer workers than this
    int max_processes = 0;  // elastic pool when > 0: grows up to this many while tasks wait
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(5)};  // an idle elastic worker retires
    std::size_t imap_window = 0;  // chunks an imap keeps in flight; 0 = max(64, 8 × workers)
    // How workers start: "fork", "spawn" or "forkserver"; empty = the global start method (a
    // context's Pool() factory sets its own). Under spawn and forkserver the initializer must be a
    // function or a captureless lambda (PoolInitializer), and tasks' lambdas may capture values
    // but no pointers or references (they would point into another process).
    std::string start_method;
    // Where the workers are: empty = processes of this machine; mp::mpi::world() = the worker
    // ranks of an MPI job (polyproc/mpi.hpp, the polyproc::mpi library).
    std::shared_ptr<const detail::PoolBackendFactory> backend;
};

// What an *_async call does when its result arrives (Python's callback/error_callback keywords):
//   pool.apply_async(mp::Callbacks{.callback = [](int r) {...}, .error_callback = [](const std::exception& e) {...}}, f, x);
// error_callback may also take std::exception_ptr.
struct NoCallback {};
template <class C = NoCallback, class E = NoCallback>
struct Callbacks {
    C callback{};
    E error_callback{};
};

}  // namespace polyproc

// The machinery behind the API below: jobs, result states, callback adapters, imap streams.
#include "polyproc/detail/pool_jobs.hpp"  // IWYU pragma: export

namespace polyproc {

// Python's AsyncResult (ApplyResult, MapResult).
template <class T>
class AsyncResult {
public:
    // The value, or the task's exception; mp::TimeoutError when not ready within `timeout`.
    T get(Timeout timeout = {}) const {
        if (!state_->wait(timeout)) throw TimeoutError();
        if (state_->error) std::rethrow_exception(state_->error);
        if constexpr (!std::is_void_v<T>) return state_->value();
    }
    void wait(Timeout timeout = {}) const { state_->wait(timeout); }
    bool ready() const noexcept { return state_->ready(); }
    // mp::ValueError("<AsyncResult object at 0x...> not ready") before ready(), as Python.
    bool successful() const { return state_->successful(); }
    std::string repr() const;  // <polyproc.pool.AsyncResult object at 0x...>, as Python's repr()

private:
    friend class Pool;
    explicit AsyncResult(std::shared_ptr<detail::ResultOf<T>> state) : state_(std::move(state)) {}
    // For Pool::map: the value moved out instead of copied.
    T take() {
        get();
        if constexpr (!std::is_void_v<T>) return std::move(state_->value());
    }
    std::shared_ptr<detail::ResultOf<T>> state_;
};

template <class T>
std::string AsyncResult<T>::repr() const {
    return detail::result_repr(state_.get());
}

// What imap/imap_unordered return: an input range of results (range-for works), plus Python's
// next(timeout). A task's failure is thrown by the next() (or the range-for step) that reaches it;
// with next(), iteration may go on after it, as in Python.
template <class R>
class IMapIterator {
public:
    // The next result; empty at the end; mp::TimeoutError when none comes within `timeout`.
    std::optional<R> next(Timeout timeout = {}) { return stream_->next(timeout); }

    class iterator {
    public:
        using value_type = R;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        R& operator*() const { return *owner_->current_; }
        R* operator->() const { return &*owner_->current_; }
        iterator& operator++() {
            owner_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const { return !owner_->current_; }

    private:
        friend class IMapIterator;
        explicit iterator(IMapIterator* owner) : owner_(owner) {}
        IMapIterator* owner_ = nullptr;
    };
    iterator begin() {
        if (!started_) advance();
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    friend class Pool;
    explicit IMapIterator(std::shared_ptr<detail::IMapStream<R>> stream) : stream_(std::move(stream)) {}
    void advance() {
        started_ = true;
        current_.reset();
        current_ = stream_->next({});
    }
    std::shared_ptr<detail::IMapStream<R>> stream_;
    std::optional<R> current_;
    bool started_ = false;
};

class Pool {
public:
    explicit Pool(int processes = 0);
    explicit Pool(PoolOptions options);
    // Internal: a pool over an engine made elsewhere (one with another backend: src/pool_backend.hpp).
    explicit Pool(std::shared_ptr<detail::PoolCore> core) noexcept : core_(std::move(core)) {}
    Pool(Pool&&) noexcept = default;
    Pool& operator=(Pool&&) noexcept;
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    ~Pool();  // terminate(), like leaving Python's `with` block

    // apply(f, args...) = apply_async(f, args...).get()
    template <class F, class... A>
        requires(!detail::is_callbacks<std::decay_t<F>>::value)
    auto apply(F f, A&&... args) {
        return apply_async(f, std::forward<A>(args)...).get();
    }

    template <class F, class... A>
        requires(!detail::is_callbacks<std::decay_t<F>>::value)
    auto apply_async(F f, A&&... args) {
        return apply_async(Callbacks<>{}, f, std::forward<A>(args)...);
    }
    template <class C, class E, class F, class... A>
    auto apply_async(Callbacks<C, E> callbacks, F f, A&&... arguments) {
        using Args = std::tuple<detail::sent_as_t<A>...>;
        detail::check_apply_task<F, Args>();
        using R = detail::apply_result_t<F, detail::sent_as_t<A>...>;
        detail::check_task_result<R>();
        typename detail::ApplyJob<R>::Success success;
        if constexpr (std::is_void_v<R>)
            success = detail::make_void_callback(std::move(callbacks.callback));
        else
            success = detail::make_callback<C, R>(std::move(callbacks.callback));
        auto job = std::make_shared<detail::ApplyJob<R>>(
            std::move(success), detail::make_error_callback(std::move(callbacks.error_callback)));
        job->set_pool(core_);
        const Args args(std::forward<A>(arguments)...);
        auto write = [&](std::span<std::byte> out) { detail::write_apply_body(f, args, out); };
        detail::pool_submit(core(), job, 0, &detail::run_apply<F, detail::sent_as_t<A>...>,
                            detail::apply_body_size<F>(args), detail::BodyWriter(write));
        return AsyncResult<R>(std::shared_ptr<detail::ResultOf<R>>(job, static_cast<detail::ResultOf<R>*>(job.get())));
    }

    // Results in input order; the first failure is thrown after every chunk ran. chunksize 0 =
    // Python's default: ceil(len / (4 × workers)).
    template <class F, class Range>
    auto map(F f, Range&& items, std::size_t chunksize = 0) {
        return map_async(Callbacks<>{}, f, std::forward<Range>(items), chunksize).take();
    }
    template <class F, class Range>
        requires(!detail::is_callbacks<std::decay_t<F>>::value)
    auto map_async(F f, Range&& items, std::size_t chunksize = 0) {
        return map_async(Callbacks<>{}, f, std::forward<Range>(items), chunksize);
    }
    template <class C, class E, class F, class Range>
    auto map_async(Callbacks<C, E> callbacks, F f, Range&& items, std::size_t chunksize = 0) {
        return map_impl<false>(std::move(callbacks), f, std::forward<Range>(items), chunksize);
    }

    // Like map, with each item a tuple (or pair) of arguments.
    template <class F, class Range>
    auto starmap(F f, Range&& items, std::size_t chunksize = 0) {
        return starmap_async(Callbacks<>{}, f, std::forward<Range>(items), chunksize).take();
    }
    template <class F, class Range>
        requires(!detail::is_callbacks<std::decay_t<F>>::value)
    auto starmap_async(F f, Range&& items, std::size_t chunksize = 0) {
        return starmap_async(Callbacks<>{}, f, std::forward<Range>(items), chunksize);
    }
    template <class C, class E, class F, class Range>
    auto starmap_async(Callbacks<C, E> callbacks, F f, Range&& items, std::size_t chunksize = 0) {
        return map_impl<true>(std::move(callbacks), f, std::forward<Range>(items), chunksize);
    }

    // Lazy: input is pulled as results are consumed, with a bounded number of chunks in flight.
    // mp::ValueError("Chunksize must be 1+, not 0") for chunksize 0.
    template <class F, class Range>
    auto imap(F f, Range&& items, std::size_t chunksize = 1) {
        return imap_impl(f, std::forward<Range>(items), chunksize, true);
    }
    template <class F, class Range>
    auto imap_unordered(F f, Range&& items, std::size_t chunksize = 1) {
        return imap_impl(f, std::forward<Range>(items), chunksize, false);
    }

    void close();  // no more tasks; workers exit once the queued ones are done
    void join();  // after close() or terminate(): waits for the workers; ValueError while running
    void terminate();  // stops the workers now; pending results fail with mp::ProcessError

    std::size_t size() const;  // workers now (changes in an elastic pool)
    std::vector<pid_t> worker_pids() const;  // the workers now, for tests and diagnostics
    std::string repr() const;  // <polyproc.Pool state=RUN pool_size=2>

private:
    detail::PoolCore& core() const;

    template <bool Star, class C, class E, class F, class Range>
    auto map_impl(Callbacks<C, E> callbacks, F f, Range&& items, std::size_t chunksize) {
        POLYPROC_CHECK_SENDABLE_FUNCTION(F);
        detail::pool_check_running(core());
        // Python materialises iterables without a length; so do we, for the default chunk size.
        if constexpr (std::ranges::sized_range<Range> && std::ranges::forward_range<Range>) {
            return map_sized<Star>(std::move(callbacks), f, items, chunksize);
        } else {
            std::vector<std::ranges::range_value_t<Range>> all;
            for (auto&& x : items) all.push_back(std::forward<decltype(x)>(x));
            return map_sized<Star>(std::move(callbacks), f, all, chunksize);
        }
    }

    template <bool Star, class C, class E, class F, class Range>
    auto map_sized(Callbacks<C, E> callbacks, F f, Range& items, std::size_t chunksize) {
        using T = std::ranges::range_value_t<Range>;
        detail::check_map_items<Star, F, T>();
        using R = detail::item_result_t<F, T, Star>;
        detail::check_task_result<R>();
        using Job = detail::MapJob<R>;
        using Value = typename Job::Value;
        const std::size_t total = std::ranges::size(items);
        if (chunksize == 0) chunksize = detail::default_chunksize(total, size());
        typename Job::Success success;
        if constexpr (std::is_void_v<R>)
            success = detail::make_void_callback(std::move(callbacks.callback));
        else
            success = detail::make_callback<C, Value>(std::move(callbacks.callback));
        auto job = std::make_shared<Job>(total, std::max<std::size_t>(chunksize, 1), std::move(success),
                                         detail::make_error_callback(std::move(callbacks.error_callback)));
        job->set_pool(core_);
        auto result = AsyncResult<Value>(
            std::shared_ptr<detail::ResultOf<Value>>(job, static_cast<detail::ResultOf<Value>*>(job.get())));
        if (total == 0) {
            job->finish();
            return result;
        }
        auto it = std::ranges::begin(items);
        for (std::size_t chunk = 0, start = 0; start < total; ++chunk, start += chunksize) {
            const std::size_t n = std::min(chunksize, total - start);
            detail::submit_chunk<F, T, Star>(core(), job, static_cast<std::uint32_t>(chunk), f, it, n);
            std::ranges::advance(it, static_cast<std::ranges::range_difference_t<Range>>(n));
        }
        return result;
    }

    template <class F, class Range>
    auto imap_impl(F f, Range&& items, std::size_t chunksize, bool ordered) {
        POLYPROC_CHECK_SENDABLE_FUNCTION(F);
        if (chunksize < 1) throw ValueError("Chunksize must be 1+, not " + std::to_string(chunksize));
        detail::pool_check_running(core());
        using View = std::views::all_t<Range>;
        using T = std::ranges::range_value_t<View>;
        POLYPROC_CHECK_SERIALIZABLE(T);
        static_assert(std::is_invocable_v<F&, T&>, "polyproc::Pool::imap: the function cannot be called with an item");
        using R = detail::item_result_t<F, T, false>;
        static_assert(!std::is_void_v<R>, "polyproc::Pool::imap: the function must return a value (use map for void)");
        detail::check_task_result<R>();
        auto stream = std::make_shared<detail::RangeIMapStream<F, View, R>>(
            core_, f, std::views::all(std::forward<Range>(items)), chunksize, ordered);
        stream->start();
        return IMapIterator<R>(std::move(stream));
    }

    std::shared_ptr<detail::PoolCore> core_;
};

// ---- progress -----------------------------------------------------------------------------------

}  // namespace polyproc

#include "polyproc/detail/progress_bar.hpp"  // IWYU pragma: export

namespace polyproc {

template <class Range>
class ProgressView {
public:
    ProgressView(Range&& range, std::size_t total) : range_(std::forward<Range>(range)), total_(total) {}

    class iterator {
    public:
        using value_type = std::ranges::range_value_t<std::remove_reference_t<Range>>;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        decltype(auto) operator*() const { return *it_; }
        iterator& operator++() {
            ++it_;
            bar_->tick();
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const {
            const bool done = it_ == end_;
            if (done) bar_->finish();
            return done;
        }

    private:
        friend class ProgressView;
        using It = std::ranges::iterator_t<std::remove_reference_t<Range>>;
        using End = std::ranges::sentinel_t<std::remove_reference_t<Range>>;
        iterator(It it, End end, detail::ProgressBar* bar) : it_(std::move(it)), end_(std::move(end)), bar_(bar) {}
        It it_{};
        End end_{};
        detail::ProgressBar* bar_ = nullptr;
    };

    iterator begin() {
        bar_ = std::make_unique<detail::ProgressBar>(total_);
        return iterator(std::ranges::begin(range_), std::ranges::end(range_), bar_.get());
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    Range range_;  // a reference for an lvalue range, the range itself for an rvalue
    std::size_t total_;
    std::unique_ptr<detail::ProgressBar> bar_;
};

// Wraps a range (a Pool's imap, a vector...) so that iterating it draws a progress bar on stderr,
// tqdm-style, when stderr is a terminal. total 0: unknown (count and rate only).
//   for (int r : mp::progress(pool.imap(f, xs), xs.size())) ...
template <class Range>
ProgressView<Range> progress(Range&& range, std::size_t total = 0) {
    return ProgressView<Range>(std::forward<Range>(range), total);
}

}  // namespace polyproc
