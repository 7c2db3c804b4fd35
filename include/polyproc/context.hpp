// polyproc/context.hpp — start methods and contexts (Python's multiprocessing.context), and
// mp::init, the bootstrap every program calls first in main().
//
// Three ways to start a child, as in Python:
//   * "fork" (the default): the child is a copy of the parent. Anything works as a target,
//     lambdas capturing anything included; but forking a parent that runs other threads may copy
//     a lock some thread held (the child then hangs on it): polyproc prints a one-time warning
//     when that happens, as CPython 3.12 does.
//   * "spawn": the child is a fresh run of the same executable; mp::init(argc, argv) at the top of
//     main recognises it and runs the target instead of main. Nothing is inherited but what is
//     passed: the target must be a function or a captureless lambda, and its arguments travel
//     through the codec (mp::Serializable values) or are handles (Queue, Lock, Value, Array,
//     SharedMemory, Connection, ...) whose shared memory and descriptors travel with them. A target
//     that cannot travel is a start-time mp::ValueError saying what to pass instead.
//   * "forkserver": a server process, started once from a fresh run of the executable (so with a
//     single thread and nothing the parent did since), forks the children. Same rules as spawn,
//     faster starts.
//
// The start method of a child is fixed when it starts: a Process, a Pool made by a context's
// factory uses that context's method; otherwise the global one (set_start_method, or the
// environment variable POLYPROC_START_METHOD, or fork).
//
// Process-safety: the functions here are thread-safe. Contexts are plain values.
//
//   int main(int argc, char** argv) {
//       mp::init(argc, argv);                       // first line of main
//       auto ctx = mp::get_context("spawn");
//       mp::Queue<int> q = ctx.Queue<int>();
//       mp::Process p = ctx.Process([](mp::Queue<int> q) { q.put(42); }, q);
//       p.start();
//       std::cout << q.get() << "\n";
//       p.join();
//   }
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "polyproc/connection.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/process.hpp"
#include "polyproc/queues.hpp"
#include "polyproc/shared_memory.hpp"
#include "polyproc/sharedctypes.hpp"
#include "polyproc/synchronize.hpp"

namespace polyproc {

// mp::init(argc, argv), the first line of main(), is declared in process.hpp.

// Python: ['fork', 'spawn', 'forkserver'] (forkserver only where descriptor passing works).
std::vector<std::string> get_all_start_methods();
// The global start method; fixes the default ("fork", or $POLYPROC_START_METHOD) if none was set,
// so a later set_start_method() without force fails, as in Python.
std::string get_start_method();
// Python's get_start_method(allow_none=True): empty while none was set or fixed.
std::optional<std::string> get_start_method(bool allow_none);
// mp::ValueError("cannot find context for 'x'") for an unknown method; RuntimeError("context has
// already been set") when one was set or fixed and force is false. An empty method with force
// unsets it.
void set_start_method(std::optional<std::string> method, bool force = false);

// A start method bound to the whole API, as Python's context objects.
class Context {
public:
    // The context's method; for the default context, the global method at the time of the call.
    std::string get_start_method() const;
    Context get_context(std::optional<std::string> method = {}) const;
    // mp::ValueError("cannot set start method of concrete context") on a concrete context; on the
    // default context, the global set_start_method.
    void set_start_method(std::optional<std::string> method, bool force = false) const;

    template <class... A>
    polyproc::Process Process(A&&... args) const {
        polyproc::Process p(std::forward<A>(args)...);
        p.set_start_method(method_);
        return p;
    }
    polyproc::Pool Pool(int processes = 0) const {
        PoolOptions options;
        options.processes = processes;
        return Pool(std::move(options));
    }
    polyproc::Pool Pool(PoolOptions options) const {
        if (options.start_method.empty() && method_) options.start_method = *method_;
        return polyproc::Pool(std::move(options));
    }
    template <class T>
    polyproc::Queue<T> Queue(std::size_t maxsize = 0) const {
        return polyproc::Queue<T>(maxsize);
    }
    template <class T>
    polyproc::JoinableQueue<T> JoinableQueue(std::size_t maxsize = 0) const {
        return polyproc::JoinableQueue<T>(maxsize);
    }
    template <class T>
    polyproc::SimpleQueue<T> SimpleQueue() const {
        return polyproc::SimpleQueue<T>();
    }
    std::pair<Connection, Connection> Pipe(bool duplex = true) const { return polyproc::Pipe(duplex); }
    polyproc::Lock Lock() const { return {}; }
    polyproc::RLock RLock() const { return {}; }
    polyproc::Semaphore Semaphore(int value = 1) const { return polyproc::Semaphore(value); }
    polyproc::BoundedSemaphore BoundedSemaphore(int value = 1) const { return polyproc::BoundedSemaphore(value); }
    polyproc::Condition Condition() const { return {}; }
    polyproc::Condition Condition(polyproc::Lock lock) const { return polyproc::Condition(std::move(lock)); }
    polyproc::Condition Condition(polyproc::RLock lock) const { return polyproc::Condition(std::move(lock)); }
    polyproc::Event Event() const { return {}; }
    polyproc::Barrier Barrier(int parties, std::function<void()> action = {}, Timeout timeout = {}) const {
        return polyproc::Barrier(parties, std::move(action), timeout);
    }
    template <class T>
    polyproc::Value<T> Value(const T& initial = T{}) const {
        return polyproc::Value<T>(initial);
    }
    template <class T>
    polyproc::RawValue<T> RawValue(const T& initial = T{}) const {
        return polyproc::RawValue<T>(initial);
    }
    template <class T>
    polyproc::Array<T> Array(std::size_t size) const {
        return polyproc::Array<T>(size);
    }
    template <class T>
    polyproc::RawArray<T> RawArray(std::size_t size) const {
        return polyproc::RawArray<T>(size);
    }

private:
    friend Context get_context(std::optional<std::string> method);
    std::optional<std::string> method_;  // empty: the default context (follows the global method)
};

// Python's get_context(method=None): the default context, or a concrete one. mp::ValueError
// ("cannot find context for 'x'") for an unknown method.
Context get_context(std::optional<std::string> method = {});

}  // namespace polyproc
