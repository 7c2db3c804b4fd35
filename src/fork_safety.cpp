// Fork hooks and helper threads. See fork_safety.hpp.
#include "fork_safety.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "polyproc/detail/thread_identity.hpp"

namespace polyproc::detail {

namespace {

struct Hooks {
    ForkHook prepare, parent, child;
};
constexpr int kMaxHooks = 32;
// Written once per slot (claimed by `used`, then published by `ready`); read by the handlers
// inside fork(), which must not lock or allocate.
std::array<Hooks, kMaxHooks> hooks;
std::array<std::atomic<bool>, kMaxHooks> ready;
std::atomic<int> used{0};

void run_prepare() noexcept {
    for (int i = kMaxHooks - 1; i >= 0; --i)
        if (ready[std::size_t(i)].load(std::memory_order_acquire) && hooks[std::size_t(i)].prepare)
            hooks[std::size_t(i)].prepare();
}
void run_parent() noexcept {
    for (int i = 0; i < kMaxHooks; ++i)
        if (ready[std::size_t(i)].load(std::memory_order_acquire) && hooks[std::size_t(i)].parent)
            hooks[std::size_t(i)].parent();
}
void run_child() noexcept {
    refresh_thread_identity();  // first: the hooks may ask who they are
    for (int i = 0; i < kMaxHooks; ++i)
        if (ready[std::size_t(i)].load(std::memory_order_acquire) && hooks[std::size_t(i)].child)
            hooks[std::size_t(i)].child();
}

// One pthread_atfork registration for the whole library, made before the first hook is.
void install_once() noexcept {
    static const bool installed = (::pthread_atfork(run_prepare, run_parent, run_child) == 0);
    if (!installed) {
        std::fputs("polyproc: pthread_atfork failed\n", stderr);
        std::abort();
    }
}

// ---- helper threads ----
std::atomic<int> helper_threads{0};
thread_local bool on_helper_thread = false;
thread_local int user_code_depth = 0;

// A fork child has none of its parent's threads, and its only thread is no helper.
void forget_helpers_in_child() noexcept {
    helper_threads.store(0);
    on_helper_thread = false;
    user_code_depth = 0;
}
const bool helpers_registered = (register_after_fork(forget_helpers_in_child), true);

// ---- kept for the process's life: id + 1 in a slot, 0 for an empty one ----
constexpr int kKeptSlots = 16;
std::array<std::array<std::atomic<int>, kKeptSlots>, 3> kept_ids;

void forget_kept_in_child() noexcept {
    for (auto& kind : kept_ids)
        for (auto& slot : kind) slot.store(0, std::memory_order_relaxed);
}
const bool kept_registered = (register_after_fork(forget_kept_in_child), true);

}  // namespace

// ---- who am I: pid and tid, cached per thread (thread_identity.hpp) --------------------------

constinit thread_local ThreadIdentity this_thread_identity [[gnu::tls_model("initial-exec")]];

void refresh_thread_identity() noexcept {
    this_thread_identity.pid = ::getpid();
    this_thread_identity.tid = static_cast<pid_t>(::syscall(SYS_gettid));
}

void register_fork_hooks(ForkHook prepare, ForkHook parent, ForkHook child) noexcept {
    install_once();
    const int slot = used.fetch_add(1);
    if (slot >= kMaxHooks) {
        std::fputs("polyproc: too many fork hooks (raise kMaxHooks in src/fork_safety.cpp)\n", stderr);
        std::abort();
    }
    hooks[std::size_t(slot)] = Hooks{prepare, parent, child};
    ready[std::size_t(slot)].store(true, std::memory_order_release);
}

int helper_threads_running() noexcept { return helper_threads.load(std::memory_order_relaxed); }

long threads_in_this_process() noexcept {
    // /proc/self/stat field 20 is the number of threads; the name (field 2) may hold spaces, so
    // count from the closing parenthesis.
    char buf[1024];
    const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');
    if (!p) return 0;
    long threads = 0;
    for (int field = 2; *p; ++p)
        if (*p == ' ' && ++field == 20) {
            threads = std::strtol(p + 1, nullptr, 10);
            break;
        }
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer's runtime starts a background thread of its own at the first
    // pthread_create: not the program's.
    if (threads > 1) --threads;
#endif
    return threads;
}
bool helper_running_user_code() noexcept { return on_helper_thread && user_code_depth > 0; }
void count_user_code_on_this_thread(int delta) noexcept { user_code_depth += delta; }
void count_helper_thread(int delta) noexcept { helper_threads.fetch_add(delta, std::memory_order_relaxed); }
void mark_this_thread_as_helper() noexcept { on_helper_thread = true; }

void keep(Kept what, int id) noexcept {
    for (auto& slot : kept_ids[std::size_t(what)]) {
        int empty = 0;
        if (slot.compare_exchange_strong(empty, id + 1)) return;
    }
}

void unkeep(Kept what, int id) noexcept {
    for (auto& slot : kept_ids[std::size_t(what)]) {
        int noted = id + 1;
        if (slot.compare_exchange_strong(noted, 0)) return;
    }
}

std::vector<int> kept(Kept what) {
    std::vector<int> ids;
    for (const auto& slot : kept_ids[std::size_t(what)])
        if (const int noted = slot.load(); noted != 0) ids.push_back(noted - 1);
    return ids;
}

}  // namespace polyproc::detail
