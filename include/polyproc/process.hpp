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

#include <cstdint>
#include <concepts>
#include <functional>
#include <tuple>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"

namespace polyproc {

// Call first in main(). In a spawn child or the forkserver it runs the child's work (or the
// server) and exits the process instead of returning; elsewhere it records argv and returns.
// (The spawn and forkserver start methods run the program again: this is where the child takes
// over.)
void init(int argc, char** argv);

namespace detail {
enum class StartMethod : std::uint8_t;  // src/start_method.hpp

struct ProcessRecord;  // a child (or our parent) as seen from this process; defined in src/

// What a Process runs. call() runs it in a fork child. encode_for_child() writes it for a spawn or
// forkserver child and returns the entry the child calls, or throws mp::ValueError saying why it
// cannot travel (a lambda with captures, an argument that is neither sendable nor a handle).
class ProcessTarget {
public:
    virtual ~ProcessTarget() = default;
    virtual void call() = 0;
    virtual CodeRef encode_for_child(ChildWriter& w) const = 0;
};

// An argument travels to a fresh child as sent_as_t<Arg, StdRef::unwrap>: std::ref(x) as x itself
// (the child gets its own handle, a duplicate of the parent's, which the parent keeps, as Python's
// pickling does), and a C string as a std::string (the child's target gets its c_str()).

template <class Arg, class Wire>
decltype(auto) as_call_argument(Wire& w) {
    if constexpr (is_c_string<Arg>)
        return static_cast<Arg>(w.data());
    else
        return (w);
}

template <class... Args, class F, class Wire, std::size_t... I>
void call_in_spawned_child(F& f, Wire& args, std::index_sequence<I...>) {
    if constexpr (std::is_invocable_v<F&, decltype(as_call_argument<Args>(std::get<I>(args)))...>)
        std::invoke(f, as_call_argument<Args>(std::get<I>(args))...);
    else
        std::invoke(std::move(f), std::move(std::get<I>(args))...);
}

template <class F, class... Args>
void run_in_spawned_child(ChildReader& r) {
    F f = read_function<F>(r);
    std::tuple<sent_as_t<Args, StdRef::unwrap>...> args{
        read_argument<sent_as_t<Args, StdRef::unwrap>>(r)...};  // braces: read in order
    call_in_spawned_child<Args...>(f, args, std::index_sequence_for<Args...>{});
}

template <class F, class... Args>
class TargetWithArgs final : public ProcessTarget {
public:
    template <class G, class... A>
    explicit TargetWithArgs(G&& f, A&&... a) : f_(std::forward<G>(f)), args_(std::forward<A>(a)...) {}
    void call() override { (void)call_with(f_, args_); }
    CodeRef encode_for_child(ChildWriter& w) const override {
        if constexpr (!is_sendable_function<F, Captures::none>) {
            throw ValueError("polyproc: this Process target (" + std::string(type_name<F>()) +
                             ") cannot be sent to a spawn or forkserver child: only a function or a lambda "
                             "without captures can. Pass what the lambda captures as arguments of the Process "
                             "instead, or use the fork start method.");
        } else if constexpr (!(is_inheritable<sent_as_t<Args, StdRef::unwrap>> && ...)) {
            std::string bad;
            ((is_inheritable<sent_as_t<Args, StdRef::unwrap>>
                  ? void()
                  : void(bad += (bad.empty() ? "" : ", ") + std::string(type_name<Args>()))),
             ...);
            throw ValueError("polyproc: a Process argument of type " + bad +
                             " cannot be sent to a spawn or forkserver child: arguments must be sendable "
                             "(mp::Serializable) or polyproc handles (Queue, Lock, Value, Connection, ...). Use "
                             "the fork start method for anything else.");
        } else {
            write_function(w, f_);
            std::apply([&](const auto&... a) { (write_argument<sent_as_t<Args, StdRef::unwrap>>(w, a), ...); }, args_);
            return code_offset(reinterpret_cast<std::uintptr_t>(&run_in_spawned_child<F, Args...>));
        }
    }

private:
    F f_;
    std::tuple<Args...> args_;
};

template <class F, class... Args>
inline constexpr bool is_process_target = CanCallWith<std::decay_t<F>, std::tuple<std::decay_t<Args>...>>;

}  // namespace detail

// What Python's current_process(), parent_process() and active_children() return about a process.
class ProcessInfo {
public:
    pid_t pid() const noexcept { return pid_; }
    pid_t ident() const noexcept { return pid_; }
    const std::string& name() const noexcept { return name_; }
    bool daemon() const noexcept { return daemon_; }
    const std::vector<int>& identity() const noexcept { return identity_; }
    // Python's authkey: the key of the current process (32 random bytes in the main process,
    // inherited by every child), or the one a child was started with. Empty for a parent.
    const std::string& authkey() const noexcept { return authkey_; }
    // Python's `current_process().authkey = key`: children created afterwards inherit it.
    // mp::ValueError for any other process, and for an empty key.
    void set_authkey(std::string key);
    // Python's `current_process().daemon = flag`: a daemonic process may start no children.
    // mp::ValueError for any other process.
    void set_daemon(bool daemonic);
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
    std::string authkey_;
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
        requires(!std::is_base_of_v<Process, std::decay_t<F>> &&
                 !std::is_same_v<std::decay_t<F>, std::unique_ptr<detail::ProcessTarget>>)
    explicit Process(F&& target, Args&&... args) : Process() {
        static_assert(detail::is_process_target<F, Args...>,
                      "polyproc::Process: the target cannot be called with these arguments");
        target_ = std::make_unique<detail::TargetWithArgs<std::decay_t<F>, std::decay_t<Args>...>>(
            std::forward<F>(target), std::forward<Args>(args)...);
    }
    // For polyproc's own components (a pool's workers): a target of a custom kind.
    explicit Process(std::unique_ptr<detail::ProcessTarget> target) : Process() { target_ = std::move(target); }

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
    // Python's authkey: a copy of the creating process's at construction; the child's
    // current_process().authkey() once started. Set it before start() to give the child another.
    const std::string& authkey() const noexcept { return authkey_; }
    void set_authkey(std::string key);  // mp::ValueError for an empty key
    // Python's repr(): <Process name='Process-1' pid=7196 parent=7155 stopped exitcode=-SIGTERM>
    std::string repr() const;

    // The start method this process will use ("fork", "spawn", "forkserver"); empty: the global
    // one at start(). A context's Process() factory sets it. mp::ValueError once started.
    void set_start_method(std::optional<std::string> method);
    const std::optional<std::string>& start_method() const noexcept { return start_method_; }

private:
    void check_not_closed() const;
    void check_is_child(const char* what) const;
    [[noreturn]] void run_in_child(pid_t parent_pid, const std::string& parent_name);
    std::shared_ptr<detail::ProcessRecord> start_by_fork(const std::string& parent_name);
    std::shared_ptr<detail::ProcessRecord> start_fresh(detail::StartMethod method, const std::string& parent_name);

    std::unique_ptr<detail::ProcessTarget> target_;
    std::optional<std::string> start_method_;
    mutable std::string name_;  // Python's default name needs the dynamic type: computed on first use
    std::vector<int> identity_;
    bool daemon_ = false;
    std::string authkey_;
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
