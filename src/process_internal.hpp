// Process internals shared by the three start methods (process.cpp: fork and the registry;
// spawn.cpp: spawn, forkserver and the child's bootstrap in mp::init).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "start_method.hpp"
#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/timeout.hpp"

namespace polyproc::detail {

// A child of this process, or this process's parent. The pidfd is readable once the process has
// ended; for children, waitid(P_PIDFD) reaps without any risk of pid reuse. A forkserver child is
// the server's child, not ours: its exit code arrives on `status` (8 bytes, Python's format), and
// the pidfd only serves to signal it.
struct ProcessRecord {
    pid_t pid = 0;
    FileDescriptor pidfd;
    FileDescriptor status;  // forkserver children: readable once the server has reaped it
    bool is_parent = false;
    std::mutex mu;
    std::optional<int> exitcode;  // children: set once reaped

    // Non-blocking: reaps the child if it has ended.
    std::optional<int> poll();
    bool ended_now() { return is_parent ? (!pidfd || os::poll_readable_now(pidfd.get())) : poll().has_value(); }
    // Waits until the process ends or the deadline passes; true when it has ended.
    bool wait(Deadline deadline);
    void signal(int sig);
    // What becomes readable when the process ends: the status pipe or the pidfd.
    int sentinel() const noexcept { return status ? status.get() : pidfd.get(); }
};

// Who a child is, as its parent tells it.
struct ChildIdentity {
    std::string name;
    std::vector<int> identity;
    bool daemon = false;
    pid_t parent_pid = 0;
    std::string parent_name;
    std::string authkey;
};

// Makes this (new) process the child described: current_process(), parent_process(); the
// parent's children, inherited by a fork, are set aside (not ours).
void become_child(const ChildIdentity& who);
// A forkserver child's parent is the server: opens its real parent's pidfd now, while it is
// certainly alive (it is waiting for us to start), for parent_process().
void open_parent_record_now();
// Runs the child's work and exits the process: an exception is printed as Python prints it
// ("Process <name>:" and the exception) and makes the exit code 1; then the exit handlers (join
// children, terminate daemonic ones) and _exit.
[[noreturn]] void run_child_and_exit(const std::function<void()>& work);

// A pool worker does not act on Ctrl-C (the program decides): SIGINT gets a handler that does
// nothing (SA_RESTART), which a program a task execs does not inherit (exec resets handlers).
void mute_sigint_in_pool_worker() noexcept;
// In a new child: SIGINT back to its default if its parent was a muted pool worker.
void restore_sigint_after_pool_worker() noexcept;
// For a daemonic child: SIGKILL when `parent` dies (PR_SET_PDEATHSIG), or at once if it died
// before that took effect. Async-signal-safe (runs in fork children).
void die_with_parent(pid_t parent) noexcept;
// A record for a child we just started (fork or spawn), with its pidfd; a child we cannot track
// is killed and reaped before the error propagates.
std::shared_ptr<ProcessRecord> track_child(pid_t pid);
// Adds a started child to this process's registry (active_children, exit handler).
void register_child(std::shared_ptr<ProcessRecord> record, const std::string& name, const std::string& authkey,
                    bool daemon, const std::vector<int>& identity);
void flush_stdio() noexcept;
// In a fork child, first thing: what the inherited stdio buffers still hold was written by another
// of the parent's threads after the forking thread flushed them (flush_stdio, just before fork()).
// The parent prints it; printing it here too (at the child's exit) would show it twice.
void discard_inherited_stdio() noexcept;
void register_exit_function();

// spawn.cpp: starts a spawn or forkserver child that will run `entry` with what `payload` holds
// (no entry: a child with nothing to do).
std::shared_ptr<ProcessRecord> start_fresh_child(StartMethod method, const ChildIdentity& who,
                                                 std::optional<CodeRef> entry, const ChildWriter& payload);
// Ends this process's forkserver, if it started one, and waits (briefly) until it is gone, so that
// a program leaves no process behind it (spawn.cpp; called by the exit handler).
void stop_forkserver() noexcept;
// Warns once (stderr) when the fork start method forks a process running threads other than
// polyproc's own helpers.
void warn_if_forking_threads();
}  // namespace polyproc::detail
