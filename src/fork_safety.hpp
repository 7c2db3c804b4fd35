// What a fork() does to the library's own state, in one place (Python's util.register_after_fork),
// the library's helper threads, counted in one place, and what it keeps for the process's life.
//
// A fork child has one thread: the one that forked. Every lock another thread held at that moment
// stays locked in the child forever, and every helper thread is gone. So each module that keeps a
// process-wide lock or a helper registers here what a fork child must do about it (make the lock
// anew, forget the helper), and, for the few that must not be forked in the middle of a change,
// what to hold across the fork. The handlers run inside fork(), in the child before fork()
// returns there: only async-signal-safe work, no allocation (placement-new of a std::mutex is).
//
// Helper threads (a pool's supervisor and result threads, the descriptor sharer) never hold a
// lock a forked child needs, so forking while they run is safe; the fork-with-threads warning
// (process.cpp) counts only the user's threads.
#pragma once

#include <thread>
#include <utility>
#include <vector>

namespace polyproc::detail {

using ForkHook = void (*)() noexcept;

// `child` runs in every later fork child, first thing. `prepare` runs in the parent just before
// the fork (in the reverse order of registration, as pthread_atfork's), `parent` just after it.
// Any may be null. Safe to call from any thread, at any time; at most 32 registrations.
void register_fork_hooks(ForkHook prepare, ForkHook parent, ForkHook child) noexcept;
inline void register_after_fork(ForkHook child) noexcept { register_fork_hooks(nullptr, nullptr, child); }

// ---- helper threads ----

// How many of polyproc's helper threads run in this process now.
int helper_threads_running() noexcept;
// How many threads this process has now (/proc/self/stat), not counting ThreadSanitizer's own
// background thread; 0 when it cannot be read.
long threads_in_this_process() noexcept;
// Whether the calling thread is a helper that runs user code now (a pool callback on the result
// thread): then a fork from it is as unsafe as from any thread of the user's.
bool helper_running_user_code() noexcept;
// A helper thread running user code counts as a thread of the user's while it does. On a user's
// thread (a callback run by a thread waiting in get()) it changes nothing.
void count_user_code_on_this_thread(int delta) noexcept;

void count_helper_thread(int delta) noexcept;
void mark_this_thread_as_helper() noexcept;

// A std::thread for one of polyproc's helpers, counted as such while it runs.
template <class F>
std::thread helper_thread(F f) {
    count_helper_thread(1);
    try {
        return std::thread([f = std::move(f)]() mutable {
            struct Done {
                ~Done() { count_helper_thread(-1); }
            } done;
            mark_this_thread_as_helper();
            f();
        });
    } catch (...) {
        count_helper_thread(-1);
        throw;
    }
}

// ---- what the library keeps for the rest of the process's life ----
// Once started, the forkserver (a child and its control socket), the resource tracker (a child and
// its pipe), the resource sharer (a thread and its socket) and the current shared-memory arena (a
// memfd) live until the process exits, by design. They are noted here so that a leak check (the
// test suite's, tests/leak_check.cpp) can tell them from leaks; nothing else reads this. A fork
// child starts with none noted: it keeps nothing of its parent's.
enum class Kept : int { fd, child, thread };
void keep(Kept what, int id) noexcept;    // at most 16 of each at a time; more are not noted
void unkeep(Kept what, int id) noexcept;  // one that is not noted: nothing
std::vector<int> kept(Kept what);

}  // namespace polyproc::detail
