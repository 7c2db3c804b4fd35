// The resource tracker: unlinks the shared memory segments a program tree created and did not
// unlink, once every process of the tree is gone, however it ended (Python's
// multiprocessing.resource_tracker; docs/shared_memory.md, and its line format in docs/design.md).
//
// One tracker per program tree, forked the first time a tracked segment is created. It reads
// REGISTER/UNREGISTER lines from a pipe whose write end every process of the tree holds: the
// creator keeps it (close-on-exec) and fork children inherit it. The kernel closes a process's
// descriptors whatever kills it, so EOF on the pipe means the whole tree is gone: the tracker then
// unlinks what is still registered, prints one warning line to stderr and exits.
//
// Wire format, one line per message, each sent with one write(2) of fewer than PIPE_BUF bytes so
// that lines written concurrently by different processes never interleave:
//     REGISTER shared_memory <name in hex>\n        UNREGISTER shared_memory <name in hex>\n
// The name is hex-encoded because a shm name may contain any byte but '/' and NUL, newlines
// included. The name is SharedMemory::name(): the tracker adds the leading slash.
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <limits.h>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/shared_memory.hpp"

namespace polyproc::detail {

namespace {

constexpr std::string_view kType = "shared_memory";
// glibc rejects shm names of NAME_MAX - 1 bytes or more (the name plus its NUL must stay below
// NAME_MAX), so no name that shm_open accepted is longer than this.
constexpr std::size_t kMaxName = NAME_MAX - 2;

// ============================================================================================
// The tracker process.
//
// It is forked, without exec, from a process that may have other threads, so everything it runs
// must be async-signal-safe: no malloc/new (another thread may have held the allocator's lock at
// fork time, and nothing releases it in the child), no iostream/stdio, no std::string, no
// exceptions, no locale (strerror). Fixed buffers, memory from mmap(2), raw system calls.
// ============================================================================================
namespace tracker {

constexpr int kPipeFd = 3;  // where the read end of the pipe is moved
// A table slot: [0] = name length, [1] = unlink result (0 or an errno), [2..] = the name's bytes.
constexpr std::size_t kSlot = 256;
static_assert(kMaxName + 2 <= kSlot);

struct Table {
    unsigned char* slots = nullptr;
    std::size_t count = 0;
    std::size_t capacity = 0;
    bool overflowed = false;  // a name could not be recorded (mmap failed)
};

void write_stderr(const char* p, std::size_t n) noexcept {
    while (n > 0) {
        const ssize_t w = ::write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;  // nowhere to report: give up quietly
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// Builds one line of at most 4 KiB in a fixed buffer, then writes it with a single write(2).
class Line {
public:
    void put(char c) noexcept {
        if (n_ < sizeof buf_ - 1) buf_[n_++] = c;  // the last byte is kept for the '\n'
    }
    void put(const char* s) noexcept {
        while (*s) put(*s++);
    }
    void put_number(unsigned long v) noexcept {
        char digits[24];
        int k = 0;
        do {
            digits[k++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v);
        while (k) put(digits[--k]);
    }
    // Quoted like Python's repr of a str: bytes outside printable ASCII as \xNN.
    void put_quoted(const unsigned char* s, std::size_t len) noexcept {
        static constexpr char hex[] = "0123456789abcdef";
        put('\'');
        for (std::size_t i = 0; i < len; ++i) {
            const unsigned char c = s[i];
            if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
                put(static_cast<char>(c));
            } else {
                put('\\');
                put('x');
                put(hex[c >> 4]);
                put(hex[c & 0xf]);
            }
        }
        put('\'');
    }
    bool has_room(std::size_t k) const noexcept { return n_ + k < sizeof buf_ - 1; }
    void write_out() noexcept {
        buf_[n_++] = '\n';
        write_stderr(buf_, n_);
        n_ = 0;
    }

private:
    char buf_[4096];
    std::size_t n_ = 0;
};

constexpr char kPrefix[] = "polyproc resource_tracker: ";

unsigned char* slot(const Table& t, std::size_t i) noexcept { return t.slots + i * kSlot; }

long find(const Table& t, const unsigned char* name, std::size_t len) noexcept {
    for (std::size_t i = 0; i < t.count; ++i) {
        const unsigned char* s = slot(t, i);
        if (s[0] != len) continue;
        std::size_t k = 0;
        while (k < len && s[2 + k] == name[k]) ++k;
        if (k == len) return static_cast<long>(i);
    }
    return -1;
}

void add(Table& t, const unsigned char* name, std::size_t len) noexcept {
    if (find(t, name, len) >= 0) return;  // a set, as in Python
    if (t.count == t.capacity) {
        const std::size_t capacity = t.capacity ? 2 * t.capacity : 1024;
        void* p = t.slots
                      ? ::mremap(t.slots, t.capacity * kSlot, capacity * kSlot, MREMAP_MAYMOVE)
                      : ::mmap(nullptr, capacity * kSlot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            if (!t.overflowed) {
                Line line;
                line.put(kPrefix);
                line.put("out of memory; some shared_memory objects may leak: ");
                line.put_quoted(name, len);
                line.write_out();
            }
            t.overflowed = true;
            return;
        }
        t.slots = static_cast<unsigned char*>(p);
        t.capacity = capacity;
    }
    unsigned char* s = slot(t, t.count++);
    s[0] = static_cast<unsigned char>(len);
    s[1] = 0;
    for (std::size_t k = 0; k < len; ++k) s[2 + k] = name[k];
}

void remove(Table& t, const unsigned char* name, std::size_t len) noexcept {
    const long i = find(t, name, len);
    if (i < 0) return;  // unregistering an unknown name is harmless (see SharedMemory::unlink)
    const std::size_t last = t.count - 1;
    if (static_cast<std::size_t>(i) != last) {
        unsigned char* dst = slot(t, static_cast<std::size_t>(i));
        const unsigned char* src = slot(t, last);
        for (std::size_t k = 0; k < kSlot; ++k) dst[k] = src[k];
    }
    --t.count;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool starts_with(const char* s, std::size_t len, const char* prefix, std::size_t& prefix_len) noexcept {
    prefix_len = 0;
    while (prefix[prefix_len]) {
        if (prefix_len >= len || s[prefix_len] != prefix[prefix_len]) return false;
        ++prefix_len;
    }
    return true;
}

void handle_message(Table& t, const char* line, std::size_t len) noexcept {
    std::size_t skip = 0;
    bool reg;
    if (starts_with(line, len, "REGISTER shared_memory ", skip))
        reg = true;
    else if (starts_with(line, len, "UNREGISTER shared_memory ", skip))
        reg = false;
    else
        return;  // malformed or another resource type: ignore
    const char* hex = line + skip;
    const std::size_t hex_len = len - skip;
    if (hex_len == 0 || hex_len % 2 != 0 || hex_len / 2 > kMaxName) return;
    unsigned char name[kMaxName];
    for (std::size_t i = 0; i < hex_len / 2; ++i) {
        const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return;
        name[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    if (reg)
        add(t, name, hex_len / 2);
    else
        remove(t, name, hex_len / 2);
}

// Unlinks everything still registered, then reports it in one line, like Python's
// "resource_tracker: There appear to be 1 leaked shared_memory objects to clean up at shutdown".
// A name that is already gone (ENOENT: someone outside this tree unlinked it) was not leaked and
// is not reported.
void cleanup(Table& t) noexcept {
    std::size_t leaked = 0;
    for (std::size_t i = 0; i < t.count; ++i) {
        unsigned char* s = slot(t, i);
        char path[kSlot + 2];  // "/" + name + NUL
        path[0] = '/';
        for (std::size_t k = 0; k < s[0]; ++k) path[1 + k] = static_cast<char>(s[2 + k]);
        path[1 + s[0]] = '\0';
        // glibc's shm_unlink builds "/dev/shm/<name>" in a fixed buffer on the stack and calls
        // unlink(2): no allocation, no lock.
        int err = 0;
        while (::shm_unlink(path) != 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        s[1] = static_cast<unsigned char>(err > 255 ? 255 : err);
        if (err != ENOENT) ++leaked;
    }
    if (leaked > 0) {
        Line line;
        line.put(kPrefix);
        line.put("There appear to be ");
        line.put_number(leaked);
        line.put(" leaked shared_memory objects to clean up at shutdown: [");
        bool first = true;
        for (std::size_t i = 0; i < t.count; ++i) {
            const unsigned char* s = slot(t, i);
            if (s[1] == ENOENT) continue;
            if (!line.has_room(4u * s[0] + 16)) {
                line.put(", ...");
                break;
            }
            if (!first) line.put(", ");
            first = false;
            line.put_quoted(s + 2, s[0]);
        }
        line.put(']');
        line.write_out();
    }
    for (std::size_t i = 0; i < t.count; ++i) {
        const unsigned char* s = slot(t, i);
        if (s[1] == 0 || s[1] == ENOENT) continue;
        Line line;
        line.put(kPrefix);
        line.put_quoted(s + 2, s[0]);
        line.put(": shm_unlink failed: ");
        const char* name = ::strerrorname_np(s[1]);  // a static table entry: no locale, no allocation
        if (name)
            line.put(name);
        else
            line.put_number(s[1]);
        line.write_out();
    }
}

unsigned long parse_hex(const char*& p, const char* end) noexcept {
    unsigned long v = 0;
    for (; p < end; ++p) {
        const char c = *p;
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            break;
        v = v * 16 + static_cast<unsigned long>(d);
    }
    return v;
}

// "7f12a000-7f12b000 rw-s 00000000 00:01 1234  /dev/shm/psm_1a2b3c4d"
void unmap_if_shared(const char* line, std::size_t len) noexcept {
    const char* p = line;
    const char* end = line + len;
    const unsigned long start = parse_hex(p, end);
    if (p >= end || *p++ != '-') return;
    const unsigned long stop = parse_hex(p, end);
    if (end - p < 5 || *p != ' ') return;
    if (p[4] == 's' && stop > start) ::munmap(reinterpret_cast<void*>(start), stop - start);
}

// The fork gave us every mapping of the parent. Shared ones (segments, sharedctypes values,
// anonymous shared regions) would otherwise stay allocated, in /dev/shm or in RAM, for as long as
// the tracker lives — after their owners unlinked and unmapped them. Private mappings are left
// alone: the tracker's own code, stack and libc live there (their copy-on-write cost remains).
void unmap_shared_mappings() noexcept {
    int fd;
    do fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return;
    char buf[8192];  // a maps line is at most ~80 bytes plus a path of at most PATH_MAX
    std::size_t have = 0;
    bool skipping = false;  // in the tail of a line longer than the buffer
    for (;;) {
        const ssize_t n = ::read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += static_cast<std::size_t>(n);
        std::size_t start = 0;
        for (std::size_t i = 0; i < have; ++i) {
            if (buf[i] != '\n') continue;
            if (!skipping) unmap_if_shared(buf + start, i - start);
            skipping = false;
            start = i + 1;
        }
        if (start == 0 && have == sizeof buf) {  // no newline in a full buffer: use its head
            if (!skipping) unmap_if_shared(buf, have);
            skipping = true;
            have = 0;
            continue;
        }
        for (std::size_t i = start; i < have; ++i) buf[i - start] = buf[i];
        have -= start;
    }
    ::close(fd);
}

// Keeps only the pipe (moved to kPipeFd) and stderr (for the warning). Other inherited
// descriptors would keep their files, sockets and pipes open for the tracker's lifetime: a
// parent waiting for EOF on our stdout, for one, would wait for the whole tree.
void close_other_fds(int read_fd) noexcept {
    if (read_fd != kPipeFd) {
        while (::dup2(read_fd, kPipeFd) < 0) {
            if (errno != EINTR) ::_exit(1);
        }
    }
    // stdin and stdout become /dev/null rather than closed, so that nothing lands on them.
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        if (null != STDIN_FILENO) ::dup2(null, STDIN_FILENO);
        if (null != STDOUT_FILENO) ::dup2(null, STDOUT_FILENO);
    }
    if (::syscall(SYS_close_range, kPipeFd + 1, ~0U, 0) != 0) {  // Linux < 5.9: one by one
        rlimit lim{};
        unsigned long max = 65536;
        if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < (1ul << 20))
            max = lim.rlim_cur;
        for (unsigned long fd = kPipeFd + 1; fd < max; ++fd) ::close(static_cast<int>(fd));
    }
}

[[noreturn]] void run(int read_fd) noexcept {
    // It must survive whatever ends the program: its own session and process group, so that
    // killing the program's process group (Ctrl-C, kill -TERM -pgid, a terminal hang-up, a test
    // harness's kill -9 -pgid) does not reach it, and SIGINT/SIGTERM/SIGHUP ignored (Python's
    // tracker ignores SIGINT and SIGTERM). Every signal was blocked by the parent before fork(), so
    // none can kill us before this is in place; they stay blocked (a pending one is discarded by
    // SIG_IGN or stays pending forever). The parent waits for setsid() before it goes on.
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigemptyset(&ign.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU})
        ::sigaction(sig, &ign, nullptr);
    ::setsid();
    ::prctl(PR_SET_NAME, "polyproc-rtrack", 0, 0, 0);  // recognisable in ps/top
    // Do not pin the program's working directory (it may be on a file system to unmount).
    if (::chdir("/") != 0) { /* harmless: the tracker only uses absolute paths */
    }
    close_other_fds(read_fd);
    unmap_shared_mappings();

    Table table;
    char buf[2 * PIPE_BUF];  // every line is shorter than PIPE_BUF
    std::size_t have = 0;
    for (;;) {
        const ssize_t n = ::read(kPipeFd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EOF: every process of the tree is gone (an error: treat it the same)
        have += static_cast<std::size_t>(n);
        std::size_t start = 0;
        for (std::size_t i = 0; i < have; ++i) {
            if (buf[i] != '\n') continue;
            handle_message(table, buf + start, i - start);
            start = i + 1;
        }
        if (start == 0 && have == sizeof buf) {  // not a line of ours: drop it
            have = 0;
            continue;
        }
        for (std::size_t i = start; i < have; ++i) buf[i - start] = buf[i];
        have -= start;
    }
    cleanup(table);
    ::_exit(0);  // no atexit handlers, no static destructors: they belong to the parent's program
}

}  // namespace tracker

// ============================================================================================
// The side of every process of the tree: ordinary code.
// ============================================================================================

struct TrackerState {
    std::mutex mu;
    int fd = -1;  // write end of the tracker's pipe (close-on-exec), inherited through fork
    // The pipe's identity: someone may close our descriptor (a daemonizing child closing every
    // fd) and the number may then be reused for another file we must not write into.
    dev_t dev = 0;
    ino_t ino = 0;
    pid_t pid = 0;        // the tracker
    pid_t forked_by = 0;  // its parent, the only process that may reap it
    int noted_fd = -1;    // what keep() was told (fork_safety.hpp), to take back on a change
    pid_t noted_pid = 0;
};

// Tells keep() (fork_safety.hpp) that the tracker and its pipe are now s.pid and s.fd.
void note_kept(TrackerState& s) noexcept {
    unkeep(Kept::fd, s.noted_fd);
    unkeep(Kept::child, s.noted_pid);
    keep(Kept::fd, s.noted_fd = s.fd);
    if (s.forked_by == ::getpid()) keep(Kept::child, s.noted_pid = s.pid);
}

TrackerState* g_state = nullptr;

TrackerState& state() {
    static TrackerState* s = [] {
        g_state = new TrackerState();
        // A fork may happen while another thread holds the mutex: the child starts with a fresh,
        // unlocked one (the state itself is consistent: it only changes under the lock, in one go).
        register_after_fork([]() noexcept { new (&g_state->mu) std::mutex(); });
        return g_state;
    }();
    return *s;
}

bool still_ours(const TrackerState& s) {
    if (s.fd < 0) return false;
    struct stat st {};
    return ::fstat(s.fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_dev == s.dev && st.st_ino == s.ino;
}

// Returns once the tracker runs in its own session (see tracker::run), so that whatever kills
// our process group after this cannot kill the tracker too; or once it died; or after 10 s.
void wait_until_detached(pid_t pid) {
    const pid_t our_session = ::getsid(0);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int i = 0;; ++i) {
        const pid_t session = ::getsid(pid);
        if (session != our_session) return;  // detached, or gone (ESRCH)
        // Died before setsid() (a zombie keeps its session): the next write sees EPIPE.
        if (os::retry_eintr([&] { return ::waitpid(pid, nullptr, WNOHANG); }) != 0) return;
        if (std::chrono::steady_clock::now() >= give_up) return;
        if (i < 100)
            os::yield_cpu();  // usually a few hundred microseconds: fork, then one syscall
        else
            ::usleep(1000);
    }
}

void start_locked(TrackerState& s) {
    auto [r, w] = os::pipe();
    struct stat st {};
    const int write_end = w.get();  // clang 14 cannot capture a structured binding (C++20 can)
    os::check("fstat", [&] { return ::fstat(write_end, &st); });
    // Blocked across fork() so that the child inherits them blocked (see tracker::run).
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    const pid_t pid = ::fork();
    const int fork_errno = errno;
    if (pid == 0) tracker::run(r.get());  // never returns
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid == -1) os::throw_errno("fork", fork_errno);
    s.fd = w.release();
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.pid = pid;
    s.forked_by = ::getpid();
    note_kept(s);
    // r closes at return: the tracker holds the only read end, so a dead tracker means EPIPE.
    wait_until_detached(pid);
}

std::string make_line(std::string_view verb, std::string_view name) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string line;
    line.reserve(verb.size() + kType.size() + 2 * name.size() + 3);
    line.append(verb).append(" ").append(kType).append(" ");
    for (char c : name) {
        const auto b = static_cast<unsigned char>(c);
        line += hex[b >> 4];
        line += hex[b & 0xf];
    }
    line += '\n';
    return line;  // at most ~530 bytes: well below PIPE_BUF (4096), so one atomic write
}

// One write(2): false with errno set on failure.
bool write_line(const TrackerState& s, const std::string& line) {
    static_assert(2 * kMaxName + 32 < PIPE_BUF);
    return os::retry_eintr([&] { return ::write(s.fd, line.data(), line.size()); }) != -1;
}

}  // namespace

void tracker_register(std::string_view name) {
    if (name.empty() || name.size() > kMaxName)
        throw ValueError("shared memory name too long for the resource tracker");
    const std::string line = make_line("REGISTER", name);
    TrackerState& s = state();
    std::lock_guard lock(s.mu);
    // A dead tracker must give EPIPE, not kill us with SIGPIPE (Python ignores SIGPIPE too).
    os::ignore_sigpipe_once();
    if (!still_ours(s)) {
        s.fd = -1;  // not ours any more (or never was): do not close it
        start_locked(s);
    }
    if (write_line(s, line)) return;
    if (errno != EPIPE) os::throw_errno("write(resource tracker)");
    // The tracker was killed. Like Python, start another and say that what the dead one knew is
    // lost: segments registered before now will not be cleaned up.
    static constexpr char warning[] =
        "polyproc resource_tracker: process died unexpectedly, relaunching.  Some resources might leak.\n";
    (void)!::write(STDERR_FILENO, warning, sizeof warning - 1);
    if (s.forked_by == ::getpid()) (void)os::retry_eintr([&] { return ::waitpid(s.pid, nullptr, WNOHANG); });
    FileDescriptor(std::exchange(s.fd, -1)).reset();
    start_locked(s);
    if (!write_line(s, line)) os::throw_errno("write(resource tracker)");
}

void tracker_unregister(std::string_view name) noexcept {
    if (name.empty() || name.size() > kMaxName) return;
    try {
        const std::string line = make_line("UNREGISTER", name);
        TrackerState& s = state();
        std::lock_guard lock(s.mu);
        if (!still_ours(s)) return;  // never start a tracker just to forget a name
        os::ignore_sigpipe_once();
        (void)write_line(s, line);  // a dead tracker has nothing to forget
    } catch (...) {                 // bad_alloc: the name stays registered; the tracker reports it
    }
}

void tracker_ensure_running() {
    TrackerState& s = state();
    std::lock_guard lock(s.mu);
    if (!still_ours(s)) {
        s.fd = -1;
        start_locked(s);
    }
}

std::pair<FileDescriptor, pid_t> tracker_for_child() {
    TrackerState& s = state();
    std::lock_guard lock(s.mu);
    if (!still_ours(s)) {
        s.fd = -1;
        start_locked(s);
    }
    // A duplicate, made under the lock: another thread may replace a dead tracker (and its
    // descriptor number be reused) before the child is started.
    return {os::dup_cloexec(s.fd), s.pid};
}

void tracker_adopt(FileDescriptor pipe, pid_t pid) {
    TrackerState& s = state();
    std::lock_guard lock(s.mu);
    struct stat st {};
    os::check("fstat", [&] { return ::fstat(pipe.get(), &st); });
    if (s.fd >= 0 && still_ours(s)) ::close(s.fd);
    s.fd = pipe.release();
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.pid = pid;
    s.forked_by = 0;  // not ours to reap
    note_kept(s);
}

pid_t tracker_pid() noexcept {
    TrackerState& s = state();
    std::lock_guard lock(s.mu);
    return s.fd >= 0 ? s.pid : 0;
}

}  // namespace polyproc::detail
