// The synchronization objects and queues a manager's server holds: Python's threading.Lock,
// RLock, Semaphore, BoundedSemaphore, Condition, Barrier and Event, and queue.Queue (which JoinableQueue also is), as
// SyncManager registers them. Each serves its methods under a mutex of its own; a blocking method
// waits on a condition variable in slices, watching its client's connection, so that a client
// that goes away (killed in the middle of acquire() or get()) frees its server thread.
//
// polyproc's addition: a lock, or semaphore units, held by a session whose connections have all
// closed (a dead client process) are given back, and the next acquirer is told with
// OwnerDiedError, as mp::Lock does (CPython's manager would keep them held forever).

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "manager_blocking.hpp"
#include "manager_server.hpp"
#include "os.hpp"

namespace polyproc::detail::manager {

namespace {

// The pid in a polyproc session key ("<pid>-<hex>"), for OwnerDiedError; 0 when there is none.
std::int64_t session_pid(const std::string& session) {
    try {
        return std::stoll(session.substr(0, session.find('-')));
    } catch (...) {
        return 0;
    }
}

[[noreturn]] void owner_died(std::int64_t pid) {
    throw Raised(RaisedError{"polyproc", "OwnerDiedError", Object::tuple({pid})});
}

// A Condition's waits not yet notified, oldest first, as tickets: notify(n) takes the n oldest
// off, and a waiter whose ticket is gone was notified. Used under the condition's own mutex.
class Waiters {
public:
    std::uint64_t enter() {
        tickets_.push_back(++next_);
        return next_;
    }
    void leave(std::uint64_t ticket) { std::erase(tickets_, ticket); }
    // Waits for `ticket` to be notified: false at the deadline; PeerGone when the caller's client
    // hangs up. Either way the ticket is gone afterwards.
    bool wait(std::unique_lock<std::mutex>& lock, std::uint64_t ticket, std::optional<Clock::time_point> deadline,
              const Caller& caller) {
        const auto notified = [&] { return std::find(tickets_.begin(), tickets_.end(), ticket) == tickets_.end(); };
        bool woken = false;
        try {
            woken = wait_until(lock, cv_, deadline, caller, notified);
        } catch (...) {
            leave(ticket);
            throw;
        }
        if (!woken) leave(ticket);
        return woken;
    }
    // notify(n) or notify_all() (`m`), with the call's arguments.
    void notify(const std::string& m, const Object& args, const Object& kwds) {
        std::int64_t n =
            m == "notify_all" ? static_cast<std::int64_t>(tickets_.size()) : arg_or(args, kwds, 0, "n", 1).as_int();
        while (n-- > 0 && !tickets_.empty()) tickets_.pop_front();
        cv_.notify_all();
    }
    std::size_t size() const { return tickets_.size(); }

private:
    std::deque<std::uint64_t> tickets_;
    std::uint64_t next_ = 0;
    std::condition_variable cv_;
};

// Lock, RLock, Semaphore and BoundedSemaphore: a count of free units, and who holds them.
class Acquirer final : public NativeReferent {
public:
    enum class Kind { lock, rlock, semaphore, bounded };
    Acquirer(Kind kind, std::int64_t value) : kind_(kind), free_(value), initial_(value) {
        if (value < 0) throw ValueError("semaphore initial value must be >= 0");
    }

    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        if (m == "acquire") {
            const bool blocking = arg_or(args, kwds, 0, "blocking", true).truthy();
            const Object timeout = arg_or(args, kwds, 1, "timeout", Object());
            if (!blocking && !timeout.is_none() && timeout.as_float() != -1)
                throw ValueError("can't specify timeout for non-blocking acquire");
            return acquire(blocking, deadline_from(timeout, Negative::lock), caller);
        }
        if (m == "release") {
            release(caller);
            return {};
        }
        if (m == "__enter__") return acquire(true, std::nullopt, caller);
        if (m == "__exit__") {
            release(caller);
            return {};
        }
        // What threading.Condition asks of its lock (CPython's RLock has these; for a Lock,
        // Condition does the same with acquire and release).
        if (m == "_is_owned") return is_owned(caller);
        if (m == "_release_save") return release_save(caller);
        if (m == "_acquire_restore") {
            acquire_restore(arg_or(args, kwds, 0, "state", 1).as_int(), caller);
            return {};
        }
        unknown(type_name(), m);
    }

    bool is_owned(const Caller& caller) const {
        std::lock_guard lock(mu_);
        if (kind_ == Kind::rlock) return owner_ == caller.channel && depth_ > 0;
        return free_ == 0;  // Condition's test for a Lock: held by someone
    }
    // Releases the lock however deep this caller holds it; the depth, to restore.
    std::int64_t release_save(const Caller& caller) {
        std::int64_t depth = 1;
        {
            std::lock_guard lock(mu_);
            if (kind_ == Kind::rlock) {
                if (owner_ != caller.channel || depth_ == 0) throw RuntimeError("cannot release un-acquired lock");
                depth = depth_;
                depth_ = 1;
            }
        }
        release(caller);
        return depth;
    }
    void acquire_restore(std::int64_t depth, const Caller& caller) {
        const auto restore = [&] {
            std::lock_guard lock(mu_);
            if (kind_ == Kind::rlock) depth_ = std::max<std::int64_t>(depth, 1);
        };
        try {
            acquire(true, std::nullopt, caller);
        } catch (const Raised&) {  // OwnerDiedError: taken all the same, at the depth it had
            restore();
            throw;
        }
        restore();
    }
    bool is_lock() const { return kind_ == Kind::lock || kind_ == Kind::rlock; }

    std::string repr() const override {
        std::lock_guard lock(mu_);
        switch (kind_) {
            case Kind::lock:
                return std::string("<") + (free_ ? "unlocked" : "locked") + " _thread.lock object>";
            case Kind::rlock:
                return std::string("<") + (free_ ? "unlocked" : "locked") +
                       " _thread.RLock object owner=" + std::to_string(owner_) + " count=" + std::to_string(depth_) +
                       ">";
            default:
                return std::string("<threading.") + (kind_ == Kind::bounded ? "BoundedSemaphore" : "Semaphore") +
                       " at 0x0: value=" + std::to_string(free_) + ">";
        }
    }

    void session_ended(const std::string& session) override {
        std::lock_guard lock(mu_);
        const auto it = held_.find(session);
        if (it == held_.end()) return;
        free_ += it->second;
        if (kind_ == Kind::rlock) owner_ = 0, depth_ = 0;
        held_.erase(it);
        died_pid_ = session_pid(session);
        cv_.notify_all();
    }

private:
    const char* type_name() const {
        switch (kind_) {
            case Kind::lock:
                return "_thread.lock";
            case Kind::rlock:
                return "_thread.RLock";
            case Kind::semaphore:
                return "threading.Semaphore";
            case Kind::bounded:
                return "threading.BoundedSemaphore";
        }
        return "?";
    }

    Object acquire(bool blocking, std::optional<Clock::time_point> deadline, const Caller& caller) {
        std::unique_lock lock(mu_);
        if (kind_ == Kind::rlock && owner_ == caller.channel && depth_ > 0) {
            ++depth_;
            return true;
        }
        if (!blocking && free_ == 0) return false;
        if (!wait_until(lock, cv_, deadline, caller, [&] { return free_ > 0; })) return false;
        --free_;
        if (kind_ == Kind::rlock) owner_ = caller.channel, depth_ = 1;
        if (!caller.session.empty()) ++held_[caller.session];
        // The news goes to the first polyproc acquirer (a Python peer could not unpickle it).
        if (died_pid_ && !caller.session.empty()) {
            const std::int64_t pid = std::exchange(died_pid_, 0);
            owner_died(pid);  // the caller holds it now: it repairs, then releases
        }
        return true;
    }

    void release(const Caller& caller) {
        std::lock_guard lock(mu_);
        switch (kind_) {
            case Kind::lock:
                if (free_ > 0) throw RuntimeError("release unlocked lock");
                break;
            case Kind::rlock:
                if (owner_ != caller.channel || depth_ == 0) throw RuntimeError("cannot release un-acquired lock");
                if (--depth_ > 0) return;
                owner_ = 0;
                break;
            case Kind::bounded:
                if (free_ >= initial_) throw ValueError("Semaphore released too many times");
                break;
            case Kind::semaphore:
                break;
        }
        ++free_;
        // Units are counted against the session that releases them, if it holds any (a Lock may
        // be released by another process than the one that acquired it, as in Python).
        if (auto it = held_.find(caller.session); it != held_.end()) {
            if (--it->second == 0) held_.erase(it);
        } else if (!held_.empty()) {
            auto other = held_.begin();
            if (--other->second == 0) held_.erase(other);
        }
        cv_.notify_one();
    }

    const Kind kind_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::int64_t free_;
    const std::int64_t initial_;
    std::uint64_t owner_ = 0;  // RLock: the channel that holds it
    std::int64_t depth_ = 0;
    std::unordered_map<std::string, std::int64_t> held_;  // session -> units it holds
    std::int64_t died_pid_ = 0;                            // a dead holder's, for the next acquirer
};

// threading.Condition with its own RLock (Condition(lock) is ConditionOnLock, below). wait()
// releases the lock however deep it is held, waits for a notify, takes the lock back and restores
// the depth.
class Condition final : public NativeReferent {
public:
    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        std::unique_lock lock(mu_);
        if (m == "acquire" || m == "__enter__") {
            const bool blocking = m == "__enter__" || arg_or(args, kwds, 0, "blocking", true).truthy();
            const Object timeout = m == "__enter__" ? Object() : arg_or(args, kwds, 1, "timeout", Object());
            if (owner_ == caller.channel && depth_ > 0) {
                ++depth_;
                return true;
            }
            const auto free = [&] { return depth_ == 0; };
            if (!free() &&
                (!blocking || !wait_until(lock, lock_free_, deadline_from(timeout, Negative::lock), caller, free)))
                return false;
            take(caller, 1);
            return true;
        }
        if (m == "release" || m == "__exit__") {
            if (owner_ != caller.channel || depth_ == 0) throw RuntimeError("cannot release un-acquired lock");
            if (--depth_ == 0) give_back();
            return {};
        }
        if (m == "wait") {
            if (owner_ != caller.channel || depth_ == 0) throw RuntimeError("cannot wait on un-acquired lock");
            const auto deadline = deadline_from(arg_or(args, kwds, 0, "timeout", Object()), Negative::event);
            const std::int64_t depth = depth_;
            const std::uint64_t ticket = waiters_.enter();
            depth_ = 0;
            give_back();
            const bool woken = waiters_.wait(lock, ticket, deadline, caller);
            // The lock back, however long it takes (Python's wait() always returns holding it).
            wait_until(lock, lock_free_, std::nullopt, caller, [&] { return depth_ == 0; });
            take(caller, depth);
            return woken;
        }
        if (m == "notify" || m == "notify_all") {
            if (owner_ != caller.channel || depth_ == 0) throw RuntimeError("cannot notify on un-acquired lock");
            waiters_.notify(m, args, kwds);
            return {};
        }
        unknown("threading.Condition", m);
    }

    std::string repr() const override {
        std::lock_guard lock(mu_);
        return "<Condition(<" + std::string(depth_ ? "locked" : "unlocked") +
               " _thread.RLock object owner=" + std::to_string(owner_) + " count=" + std::to_string(depth_) + ">, " +
               std::to_string(waiters_.size()) + ")>";
    }

    // A dead holder's lock is freed (its waits ended with its connections).
    void session_ended(const std::string& session) override {
        std::lock_guard lock(mu_);
        if (depth_ > 0 && holder_session_ == session) {
            depth_ = 0;
            give_back();
        }
    }

private:
    void take(const Caller& caller, std::int64_t depth) {
        owner_ = caller.channel;
        holder_session_ = caller.session;
        depth_ = depth;
    }
    void give_back() {
        owner_ = 0;
        holder_session_.clear();
        lock_free_.notify_one();
    }

    mutable std::mutex mu_;
    std::condition_variable lock_free_;
    std::uint64_t owner_ = 0;
    std::string holder_session_;
    std::int64_t depth_ = 0;
    Waiters waiters_;
};

// threading.Barrier(parties, action=None, timeout=None) without an action (a callable cannot
// travel to the server); BrokenBarrierError as threading's.
class Barrier final : public NativeReferent {
public:
    Barrier(std::int64_t parties, std::optional<double> timeout) : parties_(parties), timeout_(timeout) {
        if (parties < 1) throw ValueError("parties must be > 0");
    }
    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        std::unique_lock lock(mu_);
        if (m == "wait") {
            Object timeout = arg_or(args, kwds, 0, "timeout", Object());
            if (timeout.is_none() && timeout_) timeout = *timeout_;
            const auto deadline = deadline_from(timeout, Negative::event);
            if (broken_) broken();
            const std::uint64_t generation = generation_;
            const std::int64_t index = count_++;
            if (count_ == parties_) {
                count_ = 0;
                ++generation_;
                all_.notify_all();
                return index;
            }
            bool passed = false;
            try {
                passed = wait_until(lock, all_, deadline, caller,
                                    [&] { return generation_ != generation || broken_generation_ == generation; });
            } catch (...) {
                break_barrier();  // a party that left breaks it, as a timed-out one does
                throw;
            }
            if (!passed) break_barrier();
            if (broken_generation_ == generation) broken();
            return index;
        }
        if (m == "abort") {
            break_barrier();
            return {};
        }
        if (m == "reset") {
            // The parties waiting now get BrokenBarrierError, as in Python; the barrier is whole again.
            if (count_ > 0) broken_generation_ = generation_;
            broken_ = false;
            count_ = 0;
            ++generation_;
            all_.notify_all();
            return {};
        }
        if (m == "__getattribute__" && args.size() == 1 && args[0].type() == Object::Type::str) {
            const std::string& name = args[0].as_str();
            if (name == "parties") return parties_;
            if (name == "n_waiting") return count_;
            if (name == "broken") return broken_;
            throw AttributeError("'Barrier' object has no attribute '" + name + "'");
        }
        unknown("threading.Barrier", m);
    }
    std::string repr() const override {
        std::lock_guard lock(mu_);
        if (broken_) return "<threading.Barrier at 0x0: broken>";
        return "<threading.Barrier at 0x0: waiters=" + std::to_string(count_) + "/" + std::to_string(parties_) + ">";
    }

private:
    [[noreturn]] static void broken() { throw Raised(RaisedError{"threading", "BrokenBarrierError", Object::tuple()}); }
    void break_barrier() {
        broken_ = true;
        broken_generation_ = generation_;
        count_ = 0;
        all_.notify_all();
    }

    const std::int64_t parties_;
    const std::optional<double> timeout_;
    mutable std::mutex mu_;
    std::condition_variable all_;
    std::int64_t count_ = 0;
    std::uint64_t generation_ = 0;
    std::uint64_t broken_generation_ = ~std::uint64_t{0};  // the round whose waiters must raise
    bool broken_ = false;
};

class Event final : public NativeReferent {
public:
    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        std::unique_lock lock(mu_);
        if (m == "is_set") return flag_;
        if (m == "set") {
            flag_ = true;
            cv_.notify_all();
            return {};
        }
        if (m == "clear") {
            flag_ = false;
            return {};
        }
        if (m == "wait")
            return wait_until(lock, cv_, deadline_from(arg_or(args, kwds, 0, "timeout", Object()), Negative::event),
                              caller, [&] { return flag_; });
        unknown("threading.Event", m);
    }
    std::string repr() const override {
        std::lock_guard lock(mu_);
        return std::string("<threading.Event at 0x0: ") + (flag_ ? "set" : "unset") + ">";
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool flag_ = false;
};

// queue.Queue: put/get with block and timeout, task_done/join.
class Queue final : public NativeReferent {
public:
    explicit Queue(std::int64_t maxsize) : maxsize_(maxsize) {}

    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        std::unique_lock lock(mu_);
        if (m == "put" || m == "put_nowait") {
            if (args.size() < 1) throw TypeError("put() missing 1 required positional argument: 'item'");
            const bool block = m == "put" && arg_or(args, kwds, 1, "block", true).truthy();
            const auto deadline =
                m == "put" ? deadline_from(arg_or(args, kwds, 2, "timeout", Object()), Negative::queue) : std::nullopt;
            const auto room = [&] { return maxsize_ <= 0 || static_cast<std::int64_t>(items_.size()) < maxsize_; };
            if (!room() && (!block || !wait_until(lock, not_full_, deadline, caller, room)))
                throw Raised(RaisedError{"queue", "Full", Object::tuple()});
            items_.push_back(args[0]);
            ++unfinished_;
            not_empty_.notify_one();
            return {};
        }
        if (m == "get" || m == "get_nowait") {
            const bool block = m == "get" && arg_or(args, kwds, 0, "block", true).truthy();
            const auto deadline =
                m == "get" ? deadline_from(arg_or(args, kwds, 1, "timeout", Object()), Negative::queue) : std::nullopt;
            const auto any = [&] { return !items_.empty(); };
            if (!any() && (!block || !wait_until(lock, not_empty_, deadline, caller, any)))
                throw Raised(RaisedError{"_queue", "Empty", Object::tuple()});
            Object item = std::move(items_.front());
            items_.pop_front();
            not_full_.notify_one();
            return item;
        }
        if (m == "qsize") return static_cast<std::int64_t>(items_.size());
        if (m == "empty") return items_.empty();
        if (m == "full") return maxsize_ > 0 && static_cast<std::int64_t>(items_.size()) >= maxsize_;
        if (m == "task_done") {
            if (unfinished_ <= 0) throw ValueError("task_done() called too many times");
            if (--unfinished_ == 0) all_done_.notify_all();
            return {};
        }
        if (m == "join") {
            wait_until(lock, all_done_, std::nullopt, caller, [&] { return unfinished_ == 0; });
            return {};
        }
        unknown("queue.Queue", m);
    }
    std::string repr() const override { return "<queue.Queue object at 0x0>"; }

private:
    const std::int64_t maxsize_;
    std::mutex mu_;
    std::condition_variable not_empty_, not_full_, all_done_;
    std::deque<Object> items_;
    std::int64_t unfinished_ = 0;
};

// A constructor's int argument, positional or by keyword (Semaphore(value=3), Queue(maxsize=3)).
std::int64_t int_arg(const Object& args, const Object& kwds, const char* name, std::int64_t fallback) {
    const Object v = arg_or(args, kwds, 0, name, fallback);
    if (v.type() != Object::Type::integer && v.type() != Object::Type::boolean)
        throw TypeError(std::string("'") + v.type_name() + "' object cannot be interpreted as an integer (" + name +
                        ")");
    return v.as_int();
}

}  // namespace

namespace {

// threading.Condition(lock) with a manager's Lock or RLock: acquire and release are the lock's
// own, and wait() follows CPython's: _release_save, wait for a notify, _acquire_restore.
class ConditionOnLock final : public NativeReferent {
public:
    ConditionOnLock(std::shared_ptr<Referent> lock, Object held)
        : lock_referent_(std::move(lock)),
          held_(std::move(held)),
          lock_(dynamic_cast<Acquirer&>(*lock_referent_->native)) {}

    Object call(const std::string& m, const Object& args, const Object& kwds, const Caller& caller) override {
        if (m == "acquire" || m == "__enter__" || m == "release" || m == "__exit__")
            return lock_.call(m, args, kwds, caller);
        if (m == "wait") {
            if (!lock_.is_owned(caller)) throw RuntimeError("cannot wait on un-acquired lock");
            const auto deadline = deadline_from(arg_or(args, kwds, 0, "timeout", Object()), Negative::event);
            std::uint64_t ticket;
            {
                std::lock_guard lock(mu_);
                ticket = waiters_.enter();
            }
            std::int64_t saved = 0;
            try {
                saved = lock_.release_save(caller);  // a plain Lock released meanwhile by someone else
            } catch (...) {
                std::lock_guard lock(mu_);
                waiters_.leave(ticket);
                throw;
            }
            bool woken = false;
            {
                std::unique_lock lock(mu_);
                woken = waiters_.wait(lock, ticket, deadline, caller);  // PeerGone: nobody to give the lock back to
            }
            lock_.acquire_restore(saved, caller);  // not under mu_: a notifier holds the lock and wants mu_
            return woken;
        }
        if (m == "notify" || m == "notify_all") {
            if (!lock_.is_owned(caller)) throw RuntimeError("cannot notify on un-acquired lock");
            std::lock_guard lock(mu_);
            waiters_.notify(m, args, kwds);
            return {};
        }
        unknown("threading.Condition", m);
    }

    std::string repr() const override {
        std::lock_guard lock(mu_);
        return "<Condition(" + lock_.repr() + ", " + std::to_string(waiters_.size()) + ")>";
    }

private:
    std::shared_ptr<Referent> lock_referent_;  // the lock itself, while this lives
    Object held_;  // and the server's reference to it
    Acquirer& lock_;
    mutable std::mutex mu_;
    Waiters waiters_;
};

}  // namespace

std::unique_ptr<NativeReferent> make_condition_on(std::shared_ptr<Referent> lock, Object held) {
    const auto* acquirer = lock && lock->native ? dynamic_cast<const Acquirer*>(lock->native.get()) : nullptr;
    if (!acquirer || !acquirer->is_lock())
        throw TypeError("Condition(lock) wants a Lock or RLock of the same manager, not a '" +
                        (lock ? lock->type_id : std::string("proxy to another manager's object")) + "'");
    return std::make_unique<ConditionOnLock>(std::move(lock), std::move(held));
}

std::unique_ptr<NativeReferent> make_native_referent(const std::string& type_id, const Object& args,
                                                     const Object& kwds) {
    if (type_id == "Lock") return std::make_unique<Acquirer>(Acquirer::Kind::lock, 1);
    if (type_id == "RLock") return std::make_unique<Acquirer>(Acquirer::Kind::rlock, 1);
    if (type_id == "Semaphore")
        return std::make_unique<Acquirer>(Acquirer::Kind::semaphore, int_arg(args, kwds, "value", 1));
    if (type_id == "BoundedSemaphore")
        return std::make_unique<Acquirer>(Acquirer::Kind::bounded, int_arg(args, kwds, "value", 1));
    if (type_id == "Event") return std::make_unique<Event>();
    if (type_id == "Condition") {
        if (args.size() > 0 || kwds.size() > 0)  // Server::create makes Condition(lock) (make_condition_on)
            throw TypeError("Condition(lock) wants a manager's Lock or RLock (a proxy)");
        return std::make_unique<Condition>();
    }
    if (type_id == "Barrier") {
        const std::int64_t parties = int_arg(args, kwds, "parties", 0);
        const Object timeout = arg_or(args, kwds, 2, "timeout", Object());
        if (!arg_or(args, kwds, 1, "action", Object()).is_none())
            throw TypeError("a manager's Barrier cannot run an action (a callable does not travel to the server)");
        return std::make_unique<Barrier>(parties, timeout.is_none() ? std::nullopt : std::optional(timeout.as_float()));
    }
    if (type_id == "Queue" || type_id == "JoinableQueue")
        return std::make_unique<Queue>(int_arg(args, kwds, "maxsize", 0));
    if (type_id == "Pool") return make_pool_referent(args, kwds);
    return nullptr;
}

}  // namespace polyproc::detail::manager
