// polyproc/process.hpp — Process, current_process, parent_process, active_children, cpu_count
// (Python's multiprocessing.process).
//
// A Process runs a callable (or an overridden run()) in a child process. With the fork start
// method the child is a copy of the parent, so any callable works, lambdas with captures included.
// Python's semantics throughout: start() once, join(timeout) returns nothing (check exitcode()),
// exitcode() is -N when the child was killed by signal N, misuse raises mp::ValueError with
// Python's message. A child whose target throws prints "Process <name>:" and the exception's type
// and message to stderr and exits with code 1.
//
// Lifetime, as in Python: dropping a Process handle does not stop its child and never blocks. A
// child is reaped by its own join()/is_alive()/exitcode(), or, once its handle is gone, by the next
// start() or active_children() of this process; at program exit daemonic children are terminated
// and the others joined, so nothing is left as a zombie. A daemonic child is also killed by the kernel
// when the thread that started it dies (PR_SET_PDEATHSIG), so it dies with its parent even when
// the parent is SIGKILLed.
//
// Process-safety: a Process handle belongs to the process that created it; only that process may
// start or join it (elsewhere: mp::ValueError with Python's message; exitcode() is empty). Like
// Python's Process objects, a handle is not synchronized: use it from one thread at a time.
// current_process(), parent_process() and active_children() are thread-safe.
//
//   mp::Process p([](int n) { std::cout << "child got " << n << "\n"; }, 42);
//   p.start();
//   p.join();
//   assert(p.exitcode() == 0);
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"

namespace polyproc {

namespace detail {

struct ProcessRecord;  // a child (or our parent) as seen from this process; defined in src/

// A move-only type-erased void() callable (std::move_only_function is C++23).
class UniqueFunction {
public:
    UniqueFunction() = default;
    template <class F>
    explicit UniqueFunction(F&& f) : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
    explicit operator bool() const noexcept { return impl_ != nullptr; }
    void operator()() { impl_->call(); }
    void reset() noexcept { impl_.reset(); }

private:
    struct Base {
        virtual ~Base() = default;
        virtual void call() = 0;
    };
    template <class F>
    struct Impl final : Base {
        explicit Impl(F&& f) : fn(std::move(f)) {}
        explicit Impl(const F& f) : fn(f) {}
        void call() override { fn(); }
        F fn;
    };
    std::unique_ptr<Base> impl_;
};

template <class F, class... Args>
inline constexpr bool is_process_target = std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...> ||
                                          std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>;

}  // namespace detail

// What Python's current_process(), parent_process() and active_children() return about a process.
class ProcessInfo {
public:
    pid_t pid() const noexcept { return pid_; }
    pid_t ident() const noexcept { return pid_; }
    const std::string& name() const noexcept { return name_; }
    bool daemon() const noexcept { return daemon_; }
    const std::vector<int>& identity() const noexcept { return identity_; }
    // The current process is always alive; a parent is alive until it exits; a child until reaped.
    bool is_alive() const;
    // Waits for the process to end (a child is reaped; a parent is watched through a pidfd).
    void join(Timeout timeout = {}) const;
    std::optional<int> exitcode() const;  // children only; empty while running
    void terminate() const;               // children only
    void kill() const;                    // children only

private:
    friend struct detail::ProcessRecord;
    friend class Process;
    friend ProcessInfo current_process();
    friend std::optional<ProcessInfo> parent_process();
    friend std::vector<ProcessInfo> active_children();
    pid_t pid_ = 0;
    std::string name_;
    bool daemon_ = false;
    std::vector<int> identity_;
    std::shared_ptr<detail::ProcessRecord> record_;  // empty for the current process
};

class Process {
public:
    // For subclasses that override run().
    Process();

    // Runs target(args...) in the child. Arguments are stored by value (fork copies them into the
    // child) and are passed as lvalues, or moved when the target takes them by value and cannot
    // take lvalues (move-only arguments such as a Connection). The parent drops its copies once
    // the child has started, as Python does.
    template <class F, class... Args>
        requires(!std::is_base_of_v<Process, std::decay_t<F>>)
    explicit Process(F&& target, Args&&... args) : Process() {
        static_assert(detail::is_process_target<F, Args...>,
                      "polyproc::Process: the target cannot be called with these arguments");
        target_ = detail::UniqueFunction(
            [f = std::forward<F>(target), ... a = std::forward<Args>(args)]() mutable {
                if constexpr (std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...>)
                    std::invoke(f, a...);
                else
                    std::invoke(std::move(f), std::move(a)...);
            });
    }

    Process(Process&&) noexcept;
    Process& operator=(Process&&) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    virtual ~Process();

    // The child's work: calls the target. Override it in a subclass instead of passing a target.
    virtual void run();

    void start();
    // Waits for the child to end, at most `timeout`; returns either way (check exitcode()).
    void join(Timeout timeout = {});
    bool is_alive() const;
    void terminate();  // SIGTERM
    void kill();       // SIGKILL
    // Releases the process's resources. mp::ValueError while the child still runs.
    void close();

    std::optional<int> exitcode() const;  // empty before start and while running; -N for signal N
    pid_t pid() const;                     // 0 before start (Python: None); getpid() inside run()
    pid_t ident() const { return pid(); }
    // A descriptor that becomes readable when the child ends (a pidfd); for mp::wait and poll(2).
    int sentinel() const;

    const std::string& name() const;
    void set_name(std::string name);
    bool daemon() const { return daemon_; }
    void set_daemon(bool daemonic);
    // Python's repr(): <Process name='Process-1' pid=7196 parent=7155 stopped exitcode=-SIGTERM>
    std::string repr() const;

private:
    void check_not_closed() const;
    void check_is_child(const char* what) const;
    [[noreturn]] void run_in_child(pid_t parent_pid, const std::string& parent_name);

    detail::UniqueFunction target_;
    mutable std::string name_;  // Python's default name needs the dynamic type: computed on first use
    std::vector<int> identity_;
    bool daemon_ = false;
    pid_t creator_pid_ = 0;
    pid_t running_as_ = 0;  // set in the child: this object *is* the current process there
    std::shared_ptr<detail::ProcessRecord> record_;
    bool closed_ = false;
};

ProcessInfo current_process();
std::optional<ProcessInfo> parent_process();  // empty in the main process
std::vector<ProcessInfo> active_children();   // started, still-running children; reaps finished ones
// CPUs this process may use: its CPU affinity, further limited by a cgroup (v1 or v2) CPU quota.
int cpu_count();

}  // namespace polyproc
