// src/os.hpp — the thin OS layer. Every syscall polyproc makes goes through here once:
// EINTR is retried in one place, every failure becomes std::system_error naming the call,
// every descriptor is opened close-on-exec and returned as a FileDescriptor.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>
#include <string>
#include <system_error>
#include <utility>

#include <poll.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/futex_sleepers.hpp"
#include "polyproc/detail/timeout.hpp"

namespace polyproc::os {

[[noreturn]] void throw_errno(const char* call, int err = errno);
[[noreturn]] void throw_error(std::errc code, const std::string& what);

// Calls f() until it does not fail with EINTR.
template <class F>
auto retry_eintr(F&& f) {
    for (;;) {
        auto r = f();
        if (!(r == -1 && errno == EINTR)) return r;
    }
}

// Like retry_eintr, but throws std::system_error(call) on any other failure.
template <class F>
auto check(const char* call, F&& f) {
    auto r = retry_eintr(std::forward<F>(f));
    if (r == -1) throw_errno(call);
    return r;
}

std::pair<FileDescriptor, FileDescriptor> pipe();         // {read end, write end}
std::pair<FileDescriptor, FileDescriptor> socketpair();   // AF_UNIX, SOCK_STREAM
FileDescriptor open(const char* path, int flags, mode_t mode = 0);
FileDescriptor dup_cloexec(int fd);        // fcntl(F_DUPFD_CLOEXEC): a new descriptor for the same file
FileDescriptor pidfd_open(pid_t pid);  // throws; ESRCH when the process is gone
int pidfd_send_signal(int pidfd, int sig);  // 0, or -1 with errno (ESRCH ignored by callers)

bool is_socket(int fd);
// A TCP connection whose peer's host vanished (no FIN, no RST) is found dead: keepalive probes
// after `idle` seconds without traffic, `count` of them `interval` seconds apart, and the
// connection given up `user_timeout` seconds after data went unacknowledged or the probes began
// (TCP_USER_TIMEOUT, which then overrides the probes' count). Nothing for a socket that is not
// TCP; an option the kernel lacks is left out.
void set_tcp_keepalive(int fd, int idle, int interval, int count, int user_timeout) noexcept;
// TCP_NODELAY: small messages go out at once (Nagle's algorithm with delayed ACKs holds a second
// small message back up to 40 ms). Best effort, as set_tcp_keepalive; nothing for other sockets.
void set_tcp_nodelay(int fd) noexcept;
// This host's IPv4 addresses (getifaddrs), dotted; loopback ones last. Empty when none can be read.
std::vector<std::string> ipv4_addresses();
// Descriptors over an AF_UNIX socket (SCM_RIGHTS), the one place that builds and parses such
// messages. A message is one data byte, the count (Python's reduction.sendfds), carrying up to
// 250 descriptors. recv_fds returns what one message carried (close-on-exec); empty at end of
// file; std::system_error (protocol_error) when descriptors were lost in transit.
void send_fds(int sock, std::span<const int> fds);
std::vector<FileDescriptor> recv_fds(int sock);
// One message as it came, for callers with their own errors (Connection::recv_handle): the count
// byte, the descriptors (at most `max`; any beyond are closed and `truncated` is set), and whether
// the peer closed instead (end of file, no descriptors).
struct FdMessage {
    unsigned char count = 0;
    std::vector<FileDescriptor> fds;
    std::size_t received = 0;  // descriptors that came, kept or not
    bool truncated = false;
    bool end_of_file = false;
};
FdMessage recv_fd_message(int sock, std::size_t max);
bool is_valid_fd(int fd);

// The one poll loop: waits until one of `fds` has an event or the deadline passes; EINTR goes on
// with the time left (no full restart). Returns how many have events (0: timed out).
int poll_until(std::span<pollfd> fds, const detail::Deadline& deadline, const char* call = "poll");
// Waits until fd is readable (data, EOF or error). false on timeout.
bool wait_readable(int fd, detail::Deadline deadline);
bool poll_readable_now(int fd);
// Whether the peer of socket fd has hung up (POLLRDHUP, HUP or an error), without waiting; false
// for fd -1. For a thread that waits on something else but must not outlive its client.
bool peer_hung_up(int fd) noexcept;

// Reads exactly buf.size() bytes. Returns the count read before EOF (== size on success).
size_t read_full(int fd, std::span<std::byte> buf);
// Writes every byte of every iovec (continuing partial writes). For sockets MSG_NOSIGNAL keeps
// a closed peer from raising SIGPIPE; the caller gets EPIPE as std::system_error.
void write_all(int fd, bool socket, std::span<iovec> parts, const char* call);

void ignore_sigpipe_once();
void yield_cpu() noexcept;  // sched_yield(2)

}  // namespace polyproc::os

// ---- futex and shared anonymous memory (synchronization primitives) -------------------------
namespace polyproc::os {

// Sleeps while *word == expected (a shared, not private, futex: the word may live in memory shared
// between processes). Returns false when the deadline passed; true on a wake-up, a value change
// or a signal (callers re-check their condition in a loop).
bool futex_wait(const std::uint32_t* word, std::uint32_t expected, detail::Deadline deadline);
// A deadline that is not "never", as an absolute CLOCK_MONOTONIC time (FUTEX_WAIT_BITSET,
// pthread_mutex_clocklock). No clock is read: the deadline already holds the time.
timespec monotonic_timespec(const detail::Deadline& deadline);
int futex_wake(const std::uint32_t* word, int count);  // how many it woke

// An asymmetric memory barrier, for Dekker-style "publish, then check for sleepers" on a hot path
// (Linux membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED). The frequent side does its store, then
// light_barrier() (a compiler barrier only) and its load; the rare side (about to sleep) does its
// store, heavy_barrier() and its load, which forces a full barrier on every CPU running a
// registered process. Then either the frequent side's load sees the rare side's store or the other
// way round, without a locked instruction per message. Every process on the frequent side must
// call register_light_side() first, once per process (fork children too). Without membarrier both
// barriers are full fences.
void register_light_side() noexcept;
// A full fence. ThreadSanitizer (GCC) refuses atomic_thread_fence; a locked RMW is one on x86.
inline void full_fence() noexcept {
#if defined(__SANITIZE_THREAD__)
    static std::atomic<int> word;
    word.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}
inline void light_barrier() noexcept {
    extern bool membarrier_works;
    if (membarrier_works) [[likely]]
        std::atomic_signal_fence(std::memory_order_seq_cst);
    else
        full_fence();
}
void heavy_barrier() noexcept;

void unmap(void* p, std::size_t size) noexcept;
// madvise(MADV_REMOVE): frees the pages of a shared range (they read as zeros afterwards).
void discard_pages(void* p, std::size_t size);
std::size_t page_size() noexcept;
std::size_t physical_memory() noexcept;  // bytes of RAM, for sizing reservations

// One step of a busy wait: tells the CPU that this thread spins (x86's pause, ~20 ns here).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// A pause budget that learns from the waits it serves (a manager's mailbox): about four times
// what the last wait took, from 16 to 128 pauses. A waiter whose peer runs on the same CPU (and
// cannot answer while it pauses) so gives the CPU up soon, and one whose peer runs elsewhere
// catches the answer without a syscall. A wait that outlasts the budget shrinks it; every 64
// waits it starts over from 128, since one that sank below the peer's usual time would never
// learn it. One per waiter (it is not thread-safe).
class AdaptivePause {
public:
    // Pauses until ready() or the budget is spent; whether ready() held.
    template <class Ready>
    bool pause_until(Ready&& ready) {
        std::uint32_t spent = 0;
        while (spent < budget_ && !ready()) {
            cpu_relax();
            ++spent;
        }
        const bool came = spent < budget_;
        if (!came)
            budget_ = std::max(kMin, budget_ * 3 / 4);  // the peer may not be running
        else if (spent > 0)  // an answer already there says nothing of how long one takes
            budget_ = std::clamp(4 * spent + 16, kMin, kMax);
        if (++waits_ % kRelearnEvery == 0) budget_ = kMax;
        return came;
    }

private:
    static constexpr std::uint32_t kMin = 16, kMax = 128, kRelearnEvery = 64;
    std::uint32_t budget_ = kMax;
    std::uint32_t waits_ = 0;
};

// Calls ready() in a short spin (128 pauses, or as many as `pause` allows, then yield) before
// the caller sleeps: waking a sleeping process on another core costs ~40 µs here, far more than
// the spin.
template <class Ready>
bool spin_until(Ready&& ready, AdaptivePause* pause = nullptr,
                std::chrono::nanoseconds budget = std::chrono::microseconds(50)) {
    if (pause) {
        if (pause->pause_until(ready)) return true;
    } else {
        for (int i = 0; i < 128; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
    }
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        if (ready()) return true;
        if (std::chrono::steady_clock::now() - start >= budget) return false;
        yield_cpu();
    }
}

// ---- the one waiter shape ------------------------------------------------------------------
// Every blocking wait of polyproc's own (queues, Barrier, Semaphore, Event, a Pool's AsyncResult)
// is this pair (a Condition's waiter sleeps alone on its own slot's word: src/condition.cpp):
//   waiter: futex_wait_until(word, sleepers, ready, deadline, style): true once ready() held,
//     false once the deadline passed (after a last ready()). It spins briefly (spin_until), then
//     is counted in `sleepers` (with its pid) until it returns or throws; each round it calls
//     ready() and sleeps while `word` reads its "not ready" value. ready() reads the state with
//     acquire or stronger, may act (take a unit, collect results), and is called at least once.
//   waker: make the change ready() looks for, then futex_wake_sleepers(word, sleepers, n, how,
//     style), which makes no syscall when nobody is counted.
// `word` is either
//   * the state itself (a semaphore's value, an event's flag, a barrier's broadcast sequence):
//     the waker changes it (Wake::word_changed) and the waiter names the value it sleeps on
//     (WaitStyle::sleep_while: 0 for a semaphore or event, the sequence read under the lock for a
//     barrier). A word that can go down as well as up must be slept on at its "not ready"
//     value, never at a value read in passing: a unit released, taken and released again between
//     that read and the sleep would leave the waiter asleep beside a free unit;
//   * or a sequence word only wakers change (a queue's: Wake::bump_word, bumped only when someone
//     sleeps), which the waiter reads each round after being counted and before ready().
// Either way the waker's change comes before its look at the count, and the sleeper's count
// before its read of `word`: either ready() sees the change, or the waker sees the sleeper and
// `word` no longer reads what the sleeper sleeps on.
// Memory is shared (no FUTEX_PRIVATE_FLAG): the word may live in memory other processes map.
struct WaitStyle {
    // A waker on a hot path pays only a compiler barrier (light_barrier; it must have called
    // register_light_side()), the sleeper a heavy one; otherwise both sides are seq_cst.
    bool asymmetric = false;
    // Sleep in slices this long (0: until the deadline): a wake-up lost with a process that died
    // holding it then delays a sleeper instead of stranding it.
    std::chrono::milliseconds recheck{0};
    // The word's "not ready" value, when the word is the state itself; empty for a sequence word.
    std::optional<std::uint32_t> sleep_while;
    // How long the spin pauses before it yields: 128 pauses, or what this budget learned.
    AdaptivePause* pause = nullptr;
};
enum class Wake : bool { word_changed, bump_word };

int enter_sleepers(detail::FutexSleepers& s) noexcept;  // counts this process in; its slot or -1
void leave_sleepers(detail::FutexSleepers& s, int slot) noexcept;
// The cold half of futex_wake_sleepers, when someone is counted; also a wake-up for everyone
// whether counted or not (a queue's close()). Bumps `word` first if asked.
void wake_counted(std::uint32_t& word, detail::FutexSleepers& s, int n, Wake how) noexcept;

template <class Ready>
bool futex_wait_until(std::uint32_t& word, detail::FutexSleepers& sleepers, Ready&& ready,
                      const detail::Deadline& deadline, WaitStyle style = {}) {
    if (spin_until(ready, style.pause)) return true;
    struct Counted {  // also when futex_wait throws
        detail::FutexSleepers& s;
        int slot;
        ~Counted() { leave_sleepers(s, slot); }
    } counted{sleepers, enter_sleepers(sleepers)};
    if (style.asymmetric) heavy_barrier();
    for (;;) {
        const std::uint32_t observed =  // after the count
            style.sleep_while ? *style.sleep_while : std::atomic_ref<std::uint32_t>(word).load();
        if (ready()) return true;
        detail::Deadline until = deadline;
        if (style.recheck.count() != 0) {
            const detail::Deadline slice(Timeout{style.recheck});
            if (deadline.is_never() || *slice.at() < *deadline.at()) until = slice;
        }
        if (!futex_wait(&word, observed, until) && deadline.expired()) return ready();
    }
}

inline void futex_wake_sleepers(std::uint32_t& word, detail::FutexSleepers& sleepers, int n, Wake how,
                                WaitStyle style = {}) noexcept {
    std::uint32_t counted;
    if (style.asymmetric) {
        light_barrier();
        counted = std::atomic_ref<std::uint32_t>(sleepers.count).load(std::memory_order_relaxed);
    } else {
        counted = std::atomic_ref<std::uint32_t>(sleepers.count).load();
    }
    if (counted != 0) [[unlikely]]
        wake_counted(word, sleepers, n, how);
}

}  // namespace polyproc::os

// ---- POSIX shared memory and randomness (shared_memory.hpp, resource tracker) ----------------
namespace polyproc::os {

// shm_open(3) / shm_unlink(3) on a name with its leading slash ("/psm_1a2b3c4d"). Failures name
// the call and the object, like Python's "[Errno 17] File exists: '/psm_1a2b3c4d'".
FileDescriptor shm_open(const std::string& name, int flags, mode_t mode);
void shm_unlink(const std::string& name);
void ftruncate(int fd, off_t length);
off_t fstat_size(int fd);
// mmap(PROT_READ|PROT_WRITE, MAP_SHARED) of the first `size` bytes of fd; release with os::unmap.
// noreserve (MAP_NORESERVE): address space for a ring that grows into it on demand; pages cost
// memory only once touched, and discard_pages gives them back.
void* map_shared_fd(int fd, std::size_t size, bool noreserve = false);
// memfd_create(2), close-on-exec: an anonymous file for shared state that can be sent to a child.
// `sealable` (MFD_ALLOW_SEALING) for one whose size is then sealed (seal_size).
FileDescriptor memfd_create(const char* name, bool sealable = false);
// F_ADD_SEALS(SHRINK | GROW | SEAL): nobody the file is given to can truncate it under a mapping
// (which would make the next access a SIGBUS).
void seal_size(int fd);
// fallocate(2) of [0, size): the memory is taken now (ENOMEM here, not SIGBUS at first touch).
void fallocate(int fd, off_t size);
// Fills `out` from getrandom(2) (the kernel's CSPRNG; Python's secrets.token_hex).
void random_bytes(std::span<std::byte> out);
// n random bytes as 2n lowercase hex digits (Python's secrets.token_hex), for unique names.
std::string random_hex(std::size_t nbytes);

}  // namespace polyproc::os
