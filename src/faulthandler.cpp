// The crash report of polyproc's children. See faulthandler.hpp.
//
// The handler may only use what is async-signal-safe: write(2), sigaction, raise, the unwinder
// and the symbolizer (both loaded beforehand), and its own formatting into fixed buffers.
#include "faulthandler.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>

#include <dirent.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <absl/debugging/symbolize.h>

#include "names.hpp"

namespace polyproc::detail::faulthandler {

namespace {

constexpr std::array kSignals{SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr int kMaxFrames = 48;
constexpr std::size_t kAltStackSize = 64 * 1024;

// Made by enable(), read by the handler.
std::atomic<char*> g_note{nullptr};
std::atomic<std::size_t> g_note_size{0};
struct Range {
    std::uintptr_t begin, end;
};
std::array<Range, 16> g_runtime;  // the executable segments of libc, libstdc++, libgcc_s
int g_runtime_count = 0;
bool g_installed = false;

// ---- formatting into a fixed buffer, async-signal-safe ----
struct Line {
    char text[768];
    std::size_t used = 0;
    Line& operator<<(const char* s) {
        while (*s && used < sizeof text - 1) text[used++] = *s++;
        return *this;
    }
    Line& hex(std::uintptr_t v) {
        char digits[2 + 16];
        int n = 0;
        do digits[n++] = "0123456789abcdef"[v & 0xf];
        while ((v >>= 4) != 0 && n < 16);
        *this << "0x";
        while (n > 0 && used < sizeof text - 1) text[used++] = digits[--n];
        return *this;
    }
    Line& dec(long v) {
        char digits[24];
        int n = 0;
        const bool negative = v < 0;
        unsigned long u = negative ? 0ul - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
        do digits[n++] = static_cast<char>('0' + u % 10);
        while ((u /= 10) != 0);
        if (negative) *this << "-";
        while (n > 0 && used < sizeof text - 1) text[used++] = digits[--n];
        return *this;
    }
    void write() {
        std::size_t done = 0;
        while (done < used) {
            const ssize_t n = ::write(STDERR_FILENO, text + done, used - done);
            if (n > 0)
                done += static_cast<std::size_t>(n);
            else if (n < 0 && errno == EINTR)
                continue;
            else
                return;
        }
        used = 0;
    }
};

const char* description(int sig) {
    switch (sig) {
        case SIGSEGV:
            return "SIGSEGV (Segmentation fault)";
        case SIGBUS:
            return "SIGBUS (Bus error)";
        case SIGFPE:
            return "SIGFPE (Floating-point exception)";
        case SIGILL:
            return "SIGILL (Illegal instruction)";
        case SIGABRT:
            return "SIGABRT (Aborted)";
        default:
            return "a fatal signal";
    }
}

// Where the thread was when the signal came; 0 where this is not known (then the stack is shown
// from the handler's caller on).
std::uintptr_t interrupted_pc(void* context) {
    const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
    return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
    (void)uc;
    return 0;
#endif
}

bool in_runtime(std::uintptr_t pc) {
    for (int i = 0; i < g_runtime_count; ++i)
        if (pc >= g_runtime[std::size_t(i)].begin && pc < g_runtime[std::size_t(i)].end) return true;
    return false;
}

void note_where(const char* function) {
    char* note = g_note.load();
    const std::size_t size = g_note_size.load();
    if (!note || size == 0) return;
    std::size_t i = 0;
    for (; function[i] && i + 1 < size; ++i) note[i] = function[i];
    note[i] = '\0';
}

void on_fatal_signal(int sig, siginfo_t* info, void* context) {
    const int saved_errno = errno;
    static std::atomic<bool> entered{false};
    if (!entered.exchange(true)) {
        Line line;
        // The name is this process's, set before the crash and not changing during it.
        line << "Fatal error in process " << this_process_name().c_str() << " (pid ";
        line.dec(::getpid()) << "): " << description(sig);
        if (sig == SIGSEGV || sig == SIGBUS) line << " at address ";
        if (sig == SIGSEGV || sig == SIGBUS) line.hex(reinterpret_cast<std::uintptr_t>(info->si_addr));
        line << "\nStack of the crashing thread (most recent call first):\n";
        line.write();

        void* frames[kMaxFrames];
        const int n = ::backtrace(frames, kMaxFrames);
        // Start at the frame that was running when the signal came (the handler's own frames and
        // the signal trampoline come first).
        const std::uintptr_t pc = interrupted_pc(context);
        int first = 0;
        for (int i = 0; i < n; ++i)
            if (reinterpret_cast<std::uintptr_t>(frames[i]) == pc) {
                first = i;
                break;
            }
        bool noted = false;
        char name[512];
        for (int i = first; i < n; ++i) {
            const auto address = reinterpret_cast<std::uintptr_t>(frames[i]);
            // A return address points after the call: look it up one byte back (not the PC itself).
            const bool known =
                absl::Symbolize(reinterpret_cast<const void*>(i == first ? address : address - 1), name, sizeof name);
            line << "  #";
            line.dec(i - first) << " ";
            line.hex(address) << " in " << (known ? name : "??") << "\n";
            line.write();
            if (!noted && known && !in_runtime(address)) {
                note_where(name);
                noted = true;
            }
        }
    }
    // Die by the signal, as without us: the disposition is the default again (SA_RESETHAND); a
    // fault re-runs its instruction on return, and a raised signal is raised once more here.
    errno = saved_errno;
    ::raise(sig);
}

// Notes the executable segments of the C and C++ runtimes: frames there are not "where" a crash was.
int note_runtime(dl_phdr_info* info, std::size_t, void*) {
    const char* name = info->dlpi_name ? info->dlpi_name : "";
    if (!std::strstr(name, "/libc.so") && !std::strstr(name, "/libstdc++.so") && !std::strstr(name, "/libgcc_s.so"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum && g_runtime_count < int(g_runtime.size()); ++i) {
        const auto& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
        const std::uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
        g_runtime[std::size_t(g_runtime_count++)] = Range{begin, begin + ph.p_memsz};
    }
    return 0;
}

std::set<int> open_descriptors() {
    std::set<int> fds;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(dir))
            if (e->d_name[0] != '.') fds.insert(std::atoi(e->d_name));
        ::closedir(dir);
    }
    return fds;
}

bool wanted() {
    const char* value = std::getenv("POLYPROC_FAULTHANDLER");
    return !value || std::strcmp(value, "0") != 0;
}

}  // namespace

void enable() noexcept {
    if (!wanted() || g_installed) return;
    // The first backtrace() loads libgcc's unwinder (dlopen: not async-signal-safe); so does the
    // symbolizer's first use of its arena.
    // The symbolizer keeps the files it opened, without close-on-exec: a program this child execs
    // must not inherit them.
    const std::set<int> before = open_descriptors();
    void* warm[2];
    (void)::backtrace(warm, 2);
    char name[64];
    (void)absl::Symbolize(reinterpret_cast<const void*>(&enable), name, sizeof name);
    for (const int fd : open_descriptors())
        if (!before.count(fd)) (void)::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
    g_runtime_count = 0;
    ::dl_iterate_phdr(note_runtime, nullptr);
    // An alternate stack for this thread, so that a stack overflow is reported too. Never freed:
    // the process may crash at any moment until its end.
    void* stack = ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack != MAP_FAILED) {
        stack_t ss{};
        ss.ss_sp = stack;
        ss.ss_size = kAltStackSize;
        (void)::sigaltstack(&ss, nullptr);
    }
    struct sigaction sa {};
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    ::sigemptyset(&sa.sa_mask);
    for (const int sig : kSignals) (void)::sigaction(sig, &sa, nullptr);
    g_installed = true;
}

void disable() noexcept {
    if (!g_installed) return;
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    ::sigemptyset(&sa.sa_mask);
    for (const int sig : kSignals) (void)::sigaction(sig, &sa, nullptr);
    g_installed = false;
}

void set_crash_note(char* buffer, std::size_t size) noexcept {
    g_note_size.store(0);
    g_note.store(buffer);
    if (buffer && size > 0) buffer[0] = '\0';
    g_note_size.store(buffer ? size : 0);
}

}  // namespace polyproc::detail::faulthandler
