// A manager's Pool (SyncManager's "Pool", Python's PoolProxy): a Pool whose workers are children
// of the server, and the objects its methods leave in the server, an AsyncResult per
// apply_async/map_async and an IMapIterator per imap/imap_unordered (CPython's method_to_typeid).
//
// Its tasks are polyproc tasks, made by the client exactly as a local Pool makes them: the task
// runner as a code reference and each chunk's body (the function's bytes, then its encoded
// arguments or items), so that the server runs a client's typed function without knowing its
// types. Only polyproc clients can make such tasks; a Python peer's call (a pickled function)
// does not even read (the server refuses its class). A result travels back as the bytes a worker wrote, decoded by the client; a
// failure as its C++ type, so that get() throws what a local pool's get() throws.
//
// The workers are started with spawn: a forked worker would keep copies of every client's
// connection (the server could then never cut one) and would start from a process with a thread
// per client. Any authenticated client can run code in them, as any authenticated client of
// CPython's manager can by pickling.
#include <bit>
#include <cstring>
#include <deque>
#include <thread>

#include "manager_blocking.hpp"
#include "manager_server.hpp"
#include "names.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/pool.hpp"
#include "remote_exception.hpp"

namespace polyproc::detail::manager {

namespace {

// A failure as the client rethrows it (raise_pool_failure in manager_client.cpp): a worker that
// died, or ("raised", the codec's bytes of a RemoteException, the pid that raised it). A task's
// own exception arrives here as the worker wrote it (TaskResults::take_raised), so that the
// client, which may know types the server does not, makes it.
Object describe_failure(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const WorkerLostError& e) {
        return Object::tuple({"lost", e.pid(), e.exitcode(), Bytes(e.task())});
    } catch (const RemoteError& e) {
        return Object::tuple({"remote", Bytes(e.type_name()), Bytes(e.remote_message()), e.pid()});
    } catch (...) {  // the pool's own: a timeout, a terminated pool, a result that did not decode
        std::vector<std::byte> scratch;
        return Object::tuple({"raised", Bytes(encode_payload(capture_current_exception(), scratch)),
                              static_cast<std::int64_t>(::getpid())});
    }
}

// One submission's chunks as the pool's result thread settles them.
class TaskResults final : public JobBase {
public:
    explicit TaskResults(std::vector<std::int64_t> counts) : counts_(std::move(counts)), slots_(counts_.size()) {}

    void on_result(std::uint32_t chunk, std::span<const std::byte> payload) override {
        Object bytes(Bytes(std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size())));
        std::lock_guard lock(mu_);
        slots_.at(chunk).payload = std::move(bytes);
    }
    void on_error(std::uint32_t chunk, std::exception_ptr error) noexcept override {
        try {
            fail(chunk, describe_failure(error));
        } catch (...) {  // out of memory: the chunk settles without its failure described
        }
    }
    bool take_raised(std::uint32_t chunk, std::span<const std::byte> remote_exception, pid_t worker) noexcept override {
        try {
            fail(chunk, Object::tuple({"raised", Bytes(remote_exception), static_cast<std::int64_t>(worker)}));
            return true;
        } catch (...) {
            return false;  // the engine makes the exception and calls on_error
        }
    }
    void settle(std::uint32_t chunk) noexcept override {
        std::lock_guard lock(mu_);
        if (chunk < slots_.size()) slots_[chunk].settled = true;
        try {
            arrivals_.push_back(chunk);
        } catch (...) {
        }
        ++settled_;
        cv_.notify_all();
    }
    std::string describe(std::uint32_t chunk) const override {
        return slots_.size() == 1 ? std::string("a manager pool's task")
                                  : "chunk " + std::to_string(chunk) + " of a manager pool's task";
    }

    bool ready() const {
        std::lock_guard lock(mu_);
        return settled_ == slots_.size();
    }
    // Waits for every chunk: false at the deadline.
    bool wait_all(std::optional<Clock::time_point> deadline, const Caller& caller) {
        std::unique_lock lock(mu_);
        return wait_until(lock, cv_, deadline, caller, [&] { return settled_ == slots_.size(); });
    }
    // Once ready: ("ok", ((count, payload), ...)) in chunk order, or ("error", failure).
    Object outcome() const {
        std::lock_guard lock(mu_);
        if (!first_failure_.is_none()) return Object::tuple({"error", first_failure_});
        std::vector<Object> parts;
        parts.reserve(slots_.size());
        for (std::size_t i = 0; i < slots_.size(); ++i) parts.push_back(Object::tuple({counts_[i], slots_[i].payload}));
        return Object::tuple({"ok", Object::tuple(std::move(parts))});
    }
    bool successful() const {
        std::lock_guard lock(mu_);
        return first_failure_.is_none();
    }
    // An iterator's next chunk (in order, or as they arrived): ("ok", count, payload),
    // ("error", count, failure), ("stop",) after the last, or ("timeout",).
    Object next(bool ordered, std::optional<Clock::time_point> deadline, const Caller& caller) {
        std::unique_lock lock(mu_);
        // Several clients may share one iterator: each wakes to the last chunk being taken too.
        const auto available = [&] {
            return taken_ == slots_.size() || (ordered ? slots_[taken_].settled : !arrivals_.empty());
        };
        if (!wait_until(lock, cv_, deadline, caller, available)) return Object::tuple({"timeout"});
        if (taken_ == slots_.size()) return Object::tuple({"stop"});
        std::size_t chunk = taken_;
        if (!ordered) {
            chunk = arrivals_.front();
            arrivals_.pop_front();
        }
        ++taken_;
        Slot& slot = slots_[chunk];
        Object out = slot.failure.is_none() ? Object::tuple({"ok", counts_[chunk], std::move(slot.payload)})
                                            : Object::tuple({"error", counts_[chunk], slot.failure});
        slot.payload = Object();
        return out;
    }

private:
    void fail(std::uint32_t chunk, Object failure) {
        std::lock_guard lock(mu_);
        slots_.at(chunk).failure = failure;
        if (first_failure_.is_none()) first_failure_ = std::move(failure);  // Python keeps the first
    }

    struct Slot {
        Object payload, failure;
        bool settled = false;
    };
    const std::vector<std::int64_t> counts_;  // items per chunk, as the client made them (0: apply's)
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Slot> slots_;
    std::deque<std::uint32_t> arrivals_;  // settled chunks, oldest first (imap_unordered takes these)
    std::size_t settled_ = 0, taken_ = 0;
    Object first_failure_;
};

// Python's AsyncResult: get, wait, ready, successful.
class AsyncResultReferent final : public NativeReferent {
public:
    explicit AsyncResultReferent(std::shared_ptr<TaskResults> results) : results_(std::move(results)) {}

    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        if (m == "get") {
            if (!results_->wait_all(deadline_from(arg_or(args, kwds, 0, "timeout", Object()), Negative::event), caller))
                return Object::tuple({"timeout"});
            return results_->outcome();
        }
        if (m == "wait")
            return results_->wait_all(deadline_from(arg_or(args, kwds, 0, "timeout", Object()), Negative::event),
                                      caller);
        if (m == "ready") return results_->ready();
        if (m == "successful") {
            if (!results_->ready()) throw ValueError(repr() + " not ready");
            return results_->successful();
        }
        unknown("multiprocessing.pool.ApplyResult", m);
    }
    std::string repr() const override {
        return "<multiprocessing.pool.ApplyResult object at " + address_text(this) + ">";
    }

private:
    std::shared_ptr<TaskResults> results_;
};

// Python's IMapIterator (imap's and imap_unordered's result): next(timeout) a chunk at a time.
class IMapIteratorReferent final : public NativeReferent {
public:
    IMapIteratorReferent(std::shared_ptr<TaskResults> results, bool ordered)
        : results_(std::move(results)), ordered_(ordered) {}

    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        if (m == "next")
            return results_->next(ordered_, deadline_from(arg_or(args, kwds, 0, "timeout", Object()), Negative::event),
                                  caller);
        unknown("multiprocessing.pool.IMapIterator", m);
    }
    std::string repr() const override {
        return std::string("<multiprocessing.pool.") + (ordered_ ? "IMapIterator" : "IMapUnorderedIterator") +
               " object at " + address_text(this) + ">";
    }

private:
    std::shared_ptr<TaskResults> results_;
    const bool ordered_;
};

// Python's Pool, as the server holds it.
class PoolReferent final : public NativeReferent {
public:
    explicit PoolReferent(PoolOptions options) : core_(pool_create(std::move(options))) {}
    ~PoolReferent() override {
        pool_terminate(*core_);  // as leaving Python's `with`; waits for nothing a client holds
        if (joiner_.joinable()) joiner_.join();
    }

    Object call(const std::string& m, const Object&, const Object&, const Caller& caller) override {
        if (m == "close") {
            pool_close(*core_);
            return {};
        }
        if (m == "terminate") {
            pool_terminate(*core_);
            return {};
        }
        if (m == "join") return join(caller);
        if (m == "processes") return static_cast<std::int64_t>(pool_size(*core_));
        if (m == "apply" || m == "map" || m == "starmap" || m == "starmap_async")
            throw TypeError("a manager's Pool runs polyproc tasks (functions of the C++ program that started it); " +
                            m + " comes from a client that is not polyproc");
        unknown("multiprocessing.pool.Pool", m);
    }
    std::string repr() const override { return pool_repr(*core_); }
    void server_stopping() noexcept override { pool_terminate(*core_); }

    std::string_view result_type_id(const std::string& m) const override {
        if (m == "apply_async" || m == "map_async") return "AsyncResult";
        if (m == "imap" || m == "imap_unordered") return "IMapIterator";
        return {};
    }
    std::shared_ptr<Referent> call_for_referent(const std::string& m, const Object& args, const Object& kwds,
                                                const Registry&) override {
        if (kwds.size() != 0) throw TypeError(m + "() takes no keyword arguments from a polyproc client");
        auto results = submit(m, args);
        auto referent = std::make_shared<Referent>();
        referent->type_id = std::string(result_type_id(m));
        if (referent->type_id == "AsyncResult")
            referent->native = std::make_unique<AsyncResultReferent>(std::move(results));
        else
            referent->native = std::make_unique<IMapIteratorReferent>(std::move(results), m == "imap");
        return referent;
    }

private:
    // (runner, bodies, counts, program): a code reference to the task runner, each chunk's body,
    // the items in each chunk (empty for apply_async), and the client's program_fingerprint(): a
    // code reference means the same code only in a process that runs the same files.
    std::shared_ptr<TaskResults> submit(const std::string& m, const Object& args) {
        if (args.size() != 4 || args[0].type() != Object::Type::integer || args[1].type() != Object::Type::tuple ||
            args[2].type() != Object::Type::tuple || args[3].type() != Object::Type::integer)
            throw TypeError("a manager's Pool runs polyproc tasks (functions of the C++ program that started it); " +
                            m + "() was called with " + polyproc::repr(args).substr(0, 120));
        if (std::bit_cast<std::uint64_t>(args[3].as_int()) != program_fingerprint())
            throw ValueError(
                "a manager's Pool runs the tasks of the program that started the manager; this client "
                "runs other files (another program, or another build of it)");
        const auto runner = reinterpret_cast<TaskRunner>(code_address(std::bit_cast<CodeRef>(args[0].as_int())));
        const auto bodies = args[1].items_view();
        std::vector<std::int64_t> counts;
        for (const Object& count : args[2].items_view()) counts.push_back(count.as_int());
        if (counts.empty()) counts.assign(bodies.size(), 0);
        if (counts.size() != bodies.size() || (m == "apply_async" && bodies.size() != 1))
            throw TypeError(m + "() with " + std::to_string(bodies.size()) + " bodies and " +
                            std::to_string(counts.size()) + " counts");
        for (const Object& body : bodies)
            if (body.type() != Object::Type::bytes) throw TypeError(m + "() with a task body that is not bytes");
        pool_check_running(*core_);
        auto results = std::make_shared<TaskResults>(std::move(counts));
        for (std::size_t i = 0; i < bodies.size(); ++i) {
            const std::string_view body = bodies[i].as_bytes().view();
            auto write = [&](std::span<std::byte> out) { std::memcpy(out.data(), body.data(), body.size()); };
            pool_submit(*core_, results, static_cast<std::uint32_t>(i), runner, body.size(), BodyWriter(write));
        }
        return results;
    }

    // Python's join(): after close() or terminate(), until the workers have exited. The join
    // runs in a thread of its own, so that this call can watch its client while it waits.
    Object join(const Caller& caller) {
        std::unique_lock lock(join_mu_);
        if (!joiner_.joinable()) {
            pool_check_not_running();
            joiner_ = std::thread([this] {
                std::exception_ptr error;
                try {
                    pool_join(*core_);
                } catch (...) {
                    error = std::current_exception();
                }
                std::lock_guard done(join_mu_);
                joined_ = true;
                join_error_ = error;
                join_cv_.notify_all();
            });
        }
        wait_until(lock, join_cv_, std::nullopt, caller, [&] { return joined_; });
        if (join_error_) std::rethrow_exception(join_error_);
        return {};
    }
    void pool_check_not_running() {
        try {
            pool_check_running(*core_);
        } catch (const ValueError&) {
            return;  // closed or terminated: join may go on
        }
        throw ValueError("Pool is still running");  // Python's text
    }

    std::shared_ptr<PoolCore> core_;
    std::mutex join_mu_;
    std::condition_variable join_cv_;
    std::thread joiner_;
    bool joined_ = false;
    std::exception_ptr join_error_;
};

}  // namespace

std::unique_ptr<NativeReferent> make_pool_referent(const Object& args, const Object& kwds) {
    PoolOptions options;
    const Object processes = arg_or(args, kwds, 0, "processes", Object());
    if (!processes.is_none()) {
        if (processes.type() != Object::Type::integer) throw TypeError("processes must be an int or None");
        if (processes.as_int() < 1) throw ValueError("Number of processes must be at least 1");  // Python's
        options.processes = static_cast<int>(std::min<std::int64_t>(processes.as_int(), 4096));
    }
    if (!arg_or(args, kwds, 1, "initializer", Object()).is_none())
        throw TypeError("a manager's Pool takes no initializer (a callable does not travel to the server)");
    const Object maxtasks = arg_or(args, kwds, 3, "maxtasksperchild", Object());
    if (!maxtasks.is_none()) {
        if (maxtasks.type() != Object::Type::integer || maxtasks.as_int() < 1)
            throw ValueError("maxtasksperchild must be a positive int or None");  // Python's
        options.maxtasksperchild = static_cast<int>(std::min<std::int64_t>(maxtasks.as_int(), INT32_MAX));
    }
    options.start_method = "spawn";
    return std::make_unique<PoolReferent>(std::move(options));
}

}  // namespace polyproc::detail::manager
