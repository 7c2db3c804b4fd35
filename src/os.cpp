// The OS layer: every syscall polyproc makes, wrapped once (see os.hpp).
#include "os.hpp"

#include "polyproc/detail/thread_identity.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <csignal>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace polyproc {

void FileDescriptor::reset(int fd) noexcept {
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);  // never retry close on EINTR: the fd is released
    fd_ = fd;
}

FileDescriptor FileDescriptor::dup() const { return os::dup_cloexec(fd_); }

namespace os {

FileDescriptor dup_cloexec(int fd) {
    return FileDescriptor(check("fcntl(F_DUPFD_CLOEXEC)", [&] { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }));
}

void throw_errno(const char* call, int err) { throw std::system_error(err, std::generic_category(), call); }

void throw_error(std::errc code, const std::string& what) { throw std::system_error(std::make_error_code(code), what); }

std::pair<FileDescriptor, FileDescriptor> pipe() {
    int fds[2];
    check("pipe2", [&] { return ::pipe2(fds, O_CLOEXEC); });
    return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

std::pair<FileDescriptor, FileDescriptor> socketpair() {
    int fds[2];
    check("socketpair", [&] { return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); });
    return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

FileDescriptor open(const char* path, int flags, mode_t mode) {
    return FileDescriptor(check("open", [&] { return ::open(path, flags | O_CLOEXEC, mode); }));
}

void send_fds(int sock, std::span<const int> fds) {
    if (fds.empty() || fds.size() > 250) throw_error(std::errc::invalid_argument, "send_fds: 1 to 250 descriptors");
    char count = static_cast<char>(fds.size());
    iovec iov{&count, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    check("sendmsg(SCM_RIGHTS)", [&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL); });
}

FdMessage recv_fd_message(int sock, std::size_t max) {
    char count = 0;
    iovec iov{&count, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<std::size_t>(max, 1)));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = check("recvmsg(SCM_RIGHTS)", [&] { return ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); });
    FdMessage out;
    out.count = static_cast<unsigned char>(count);
    out.truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < k; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            ++out.received;
            if (out.fds.size() < max) {
                out.fds.emplace_back(fd);
            } else {
                ::close(fd);  // never leak what was not asked for
                out.truncated = true;
            }
        }
    }
    out.end_of_file = n == 0 && out.fds.empty();
    return out;
}

std::vector<FileDescriptor> recv_fds(int sock) {
    FdMessage m = recv_fd_message(sock, 250);
    if (m.end_of_file) return {};
    if (m.truncated || m.fds.size() != m.count)
        throw_error(std::errc::protocol_error, "recvmsg(SCM_RIGHTS): descriptors lost in transit");
    return std::move(m.fds);
}

FileDescriptor pidfd_open(pid_t pid) {
    return FileDescriptor(static_cast<int>(check("pidfd_open", [&] { return ::syscall(SYS_pidfd_open, pid, 0); })));
}

int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(retry_eintr([&] { return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0); }));
}

bool is_socket(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

void set_tcp_keepalive(int fd, int idle, int interval, int count, int user_timeout) noexcept {
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
        (local.ss_family != AF_INET && local.ss_family != AF_INET6))
        return;
    // Best effort: a kernel without one of these options still serves the connection, only
    // without that bound.
    const int on = 1;
    const unsigned user_timeout_ms = static_cast<unsigned>(user_timeout * 1000);
    const auto set = [fd](int level, int name, const auto& value) {
        (void)::setsockopt(fd, level, name, &value, sizeof value);
    };
    set(SOL_SOCKET, SO_KEEPALIVE, on);
    set(IPPROTO_TCP, TCP_KEEPIDLE, idle);
    set(IPPROTO_TCP, TCP_KEEPINTVL, interval);
    set(IPPROTO_TCP, TCP_KEEPCNT, count);
    set(IPPROTO_TCP, TCP_USER_TIMEOUT, user_timeout_ms);
}

void set_tcp_nodelay(int fd) noexcept {
    const int on = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

std::vector<std::string> ipv4_addresses() {
    std::vector<std::string> out, loopback;
    ifaddrs* all = nullptr;
    if (::getifaddrs(&all) != 0) return out;
    for (const ifaddrs* i = all; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        char host[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, host, sizeof host);
        (std::string_view(host).starts_with("127.") ? loopback : out).push_back(host);
    }
    ::freeifaddrs(all);
    out.insert(out.end(), loopback.begin(), loopback.end());
    return out;
}

bool is_valid_fd(int fd) { return fd >= 0 && ::fcntl(fd, F_GETFD) != -1; }

bool peer_hung_up(int fd) noexcept {
    if (fd < 0) return false;
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

bool poll_readable_now(int fd) {
    pollfd p{fd, POLLIN, 0};
    int r = check("poll", [&] { return ::poll(&p, 1, 0); });
    if (r == 1 && (p.revents & POLLNVAL)) throw_errno("poll", EBADF);
    return r == 1;
}

int poll_until(std::span<pollfd> fds, const detail::Deadline& deadline, const char* call) {
    for (;;) {
        const int r = ::poll(fds.data(), fds.size(), deadline.poll_ms());
        if (r == -1) {
            if (errno == EINTR) continue;  // the deadline keeps counting: no full restart
            throw_errno(call);
        }
        if (r > 0 || deadline.expired()) return r;
    }
}

bool wait_readable(int fd, detail::Deadline deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll_until(std::span(&p, 1), deadline) == 0) return false;
    if (p.revents & POLLNVAL) throw_errno("poll", EBADF);
    return true;
}

size_t read_full(int fd, std::span<std::byte> buf) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t n = retry_eintr([&] { return ::read(fd, buf.data() + done, buf.size() - done); });
        if (n == -1) throw_errno("read");
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

void write_all(int fd, bool socket, std::span<iovec> parts, const char* call) {
    size_t first = 0;
    while (first < parts.size()) {
        if (parts[first].iov_len == 0) {
            ++first;
            continue;
        }
        const int count = static_cast<int>(std::min<size_t>(parts.size() - first, IOV_MAX));
        ssize_t n;
        if (socket) {
            msghdr msg{};
            msg.msg_iov = parts.data() + first;
            msg.msg_iovlen = static_cast<size_t>(count);
            n = retry_eintr([&] { return ::sendmsg(fd, &msg, MSG_NOSIGNAL); });
        } else {
            n = retry_eintr([&] { return ::writev(fd, parts.data() + first, count); });
        }
        if (n == -1) throw_errno(call);
        auto left = static_cast<size_t>(n);
        while (left > 0 && first < parts.size()) {
            iovec& v = parts[first];
            size_t take = std::min(left, v.iov_len);
            v.iov_base = static_cast<char*>(v.iov_base) + take;
            v.iov_len -= take;
            left -= take;
            if (v.iov_len == 0) ++first;
        }
    }
}

void ignore_sigpipe_once() {
    // Python ignores SIGPIPE so that writing to a closed pipe raises BrokenPipeError. We do the
    // same, but only when the program left SIGPIPE at its default (fatal) disposition.
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
            struct sigaction ign {};
            ign.sa_handler = SIG_IGN;
            ::sigemptyset(&ign.sa_mask);
            ::sigaction(SIGPIPE, &ign, nullptr);
        }
    });
}

}  // namespace os
}  // namespace polyproc

// ---- futex and shared anonymous memory -------------------------------------------------------
#include <linux/futex.h>
#include <sched.h>
#include <linux/membarrier.h>
#include <sys/mman.h>

namespace polyproc::os {

void yield_cpu() noexcept { ::sched_yield(); }

timespec monotonic_timespec(const detail::Deadline& deadline) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.at()->time_since_epoch()).count();
    return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

bool futex_wait(const std::uint32_t* word, std::uint32_t expected, detail::Deadline deadline) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: no drift across retries.
    timespec abs{};
    const timespec* timeout = nullptr;
    if (!deadline.is_never()) {
        abs = monotonic_timespec(deadline);
        timeout = &abs;
    }
    const long r = ::syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, timeout, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return true;
    switch (errno) {
        case EAGAIN:  // the value had already changed
        case EINTR:
            return true;
        case ETIMEDOUT:
            return false;
        default:
            throw_errno("futex(FUTEX_WAIT_BITSET)");
    }
}

int futex_wake(const std::uint32_t* word, int count) {
    const long woken = ::syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
    if (woken == -1) throw_errno("futex(FUTEX_WAKE)");
    return static_cast<int>(woken);
}

void unmap(void* p, std::size_t size) noexcept { ::munmap(p, size); }

// ---- the one waiter shape's bookkeeping (os.hpp) -------------------------------------------------

namespace {
template <class T>
std::atomic_ref<T> ref(T& v) noexcept {
    return std::atomic_ref<T>(v);
}

// Takes the slots of dead processes off the count. A pid reused by a live process keeps its slot:
// the count stays high until that process is gone too, which only costs syscalls.
void heal(detail::FutexSleepers& s) noexcept {
    for (pid_t& slot : s.slots) {
        pid_t pid = ref(slot).load(std::memory_order_relaxed);
        if (pid == 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        if (ref(slot).compare_exchange_strong(pid, 0)) ref(s.count).fetch_sub(1);
    }
}
}  // namespace

// The slot is held only while counted: counted first, uncounted last. A process killed between
// the two steps leaves one sleeper too many on the count (harmless), never a slot that heal()
// would take off a count it is not on.
int enter_sleepers(detail::FutexSleepers& s) noexcept {
    ref(s.count).fetch_add(1);
    const pid_t me = detail::this_thread().pid;
    for (int i = 0; i < detail::FutexSleepers::kSlots; ++i) {
        pid_t expected = 0;
        if (ref(s.slots[i]).compare_exchange_strong(expected, me)) return i;
    }
    return -1;
}

void leave_sleepers(detail::FutexSleepers& s, int slot) noexcept {
    if (slot >= 0) ref(s.slots[slot]).store(0);
    ref(s.count).fetch_sub(1);
}

void wake_counted(std::uint32_t& word, detail::FutexSleepers& s, int n, Wake how) noexcept {
    if (how == Wake::bump_word) ref(word).fetch_add(1);
    int woken = 1;
    try {
        woken = futex_wake(&word, n);
    } catch (const std::system_error&) {
        // FUTEX_WAKE on a word we have mapped cannot fail; if it did, a sleeper in slices would
        // still see the change at its next look.
    }
    if (woken > 0) {
        if (ref(s.futile_wakes).load(std::memory_order_relaxed) != 0)
            ref(s.futile_wakes).store(0, std::memory_order_relaxed);
    } else if (ref(s.futile_wakes).fetch_add(1, std::memory_order_relaxed) + 1 >= 64) {
        // Also counts a sleeper caught between being counted and falling asleep; heal() only
        // removes the dead, so a false alarm costs one scan.
        ref(s.futile_wakes).store(0, std::memory_order_relaxed);
        heal(s);
    }
}

bool membarrier_works = false;

void register_light_side() noexcept {
    // Registration is per process; a fork child registers again (harmless if inherited).
    const long rc = ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
    // Decided once, in the first process: every process of a tree must use the same barriers.
    static const bool works = rc == 0;
    membarrier_works = works;
}

void heavy_barrier() noexcept {
    if (!membarrier_works || ::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) != 0) full_fence();
}

void discard_pages(void* p, std::size_t size) {
    if (::madvise(p, size, MADV_REMOVE) != 0) throw_errno("madvise(MADV_REMOVE)");
}

std::size_t page_size() noexcept {
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

std::size_t physical_memory() noexcept {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    return pages > 0 ? static_cast<std::size_t>(pages) * page_size() : std::size_t(1) << 30;
}

}  // namespace polyproc::os

// ---- POSIX shared memory and randomness (shared_memory.hpp, resource tracker) ----------------
#include <sys/mman.h>
#include <sys/random.h>

namespace polyproc::os {

namespace {
[[noreturn]] void throw_errno_on(const char* call, const std::string& name, int err = errno) {
    throw std::system_error(err, std::generic_category(), std::string(call) + "('" + name + "')");
}
}  // namespace

FileDescriptor shm_open(const std::string& name, int flags, mode_t mode) {
    // glibc adds O_CLOEXEC itself; say it anyway, as every descriptor here is close-on-exec.
    const int fd = retry_eintr([&] { return ::shm_open(name.c_str(), flags | O_CLOEXEC, mode); });
    if (fd == -1) throw_errno_on("shm_open", name);
    return FileDescriptor(fd);
}

void shm_unlink(const std::string& name) {
    if (retry_eintr([&] { return ::shm_unlink(name.c_str()); }) == -1) throw_errno_on("shm_unlink", name);
}

void ftruncate(int fd, off_t length) {
    check("ftruncate", [&] { return ::ftruncate(fd, length); });
}

off_t fstat_size(int fd) {
    struct stat st {};
    check("fstat", [&] { return ::fstat(fd, &st); });
    return st.st_size;
}

void* map_shared_fd(int fd, std::size_t size, bool noreserve) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (noreserve ? MAP_NORESERVE : 0), fd, 0);
    if (p == MAP_FAILED) throw_errno(noreserve ? "mmap(MAP_SHARED|MAP_NORESERVE)" : "mmap(MAP_SHARED)");
    return p;
}

void fallocate(int fd, off_t size) {
    check("fallocate", [&] { return ::fallocate(fd, 0, 0, size); });
}

FileDescriptor memfd_create(const char* name, bool sealable) {
    const unsigned flags = MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0u);
    return FileDescriptor(check("memfd_create", [&] { return ::memfd_create(name, flags); }));
}

void seal_size(int fd) {
    check("fcntl(F_ADD_SEALS)", [&] { return ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL); });
}

void random_bytes(std::span<std::byte> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = check("getrandom", [&] { return ::getrandom(out.data() + done, out.size() - done, 0); });
        done += static_cast<std::size_t>(n);
    }
}

std::string random_hex(std::size_t nbytes) {
    std::string random(nbytes, '\0');
    random_bytes(std::as_writable_bytes(std::span(random)));
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * nbytes);
    for (unsigned char c : random) {
        hex += digits[c >> 4];
        hex += digits[c & 0xf];
    }
    return hex;
}

}  // namespace polyproc::os
