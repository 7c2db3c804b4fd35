// The spawn and forkserver start methods, and mp::init, where their children take over.
//
// spawn: posix_spawn(/proc/self/exe, [argv0, "--polyproc-child", "spawn"]) with one socket at
// descriptor 3 and every other descriptor closed (Python's spawn passes only the fds it lists). The
// parent then writes the bootstrap over the socket: who the child is, the entry to call (a
// CodeRef), the encoded target and arguments, and the descriptors they need (SCM_RIGHTS). In the
// child, mp::init at the top of main reads it, runs the target and exits: main's own code never
// runs there.
//
// forkserver: the same executable is spawned once as a server ("--polyproc-child forkserver"), a
// single-threaded process that has done nothing but its static initialisation. For each child the
// parent sends the server a request carrying two descriptors: the child's bootstrap socket and the
// write end of a status pipe. The server forks; the child reads its bootstrap as a spawn child
// does; the server writes the child's pid (8 bytes) and, once it has reaped it, its exit code (8
// bytes, negative for a signal), then closes the pipe: CPython's forkserver format (docs/design.md, "The forkserver"). The server
// ends when the parent's end of its control socket closes (the parent exited).
#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "polyproc/shared_memory.hpp"
#include "process_internal.hpp"
#include "spawn_bootstrap.hpp"

extern char** environ;

namespace polyproc {

namespace detail {

namespace {

constexpr int kBootFd = 3;  // where a spawned child finds its socket

struct InitState {
    std::mutex mu;
    bool initialised = false;
    std::string argv0 = "polyproc";
};
InitState& init_state() {
    static auto* s = [] {
        auto* state = new InitState();
        register_after_fork([]() noexcept { new (&init_state().mu) std::mutex(); });
        return state;
    }();
    return *s;
}

// ---- the bootstrap message -------------------------------------------------------------------

// The header, then the identity and entry, then the payload; descriptors after the bytes: the
// resource tracker's pipe first, then the payload's.
void send_bootstrap(int sock, const std::string& method, const ChildIdentity& who, std::optional<CodeRef> entry,
                    const ChildWriter& payload, const std::pair<FileDescriptor, pid_t>& tracker) {
    ChildWriter w;
    w.raw(kBootstrapMagic);
    w.raw(startup_objects_fingerprint());
    w.value(std::tuple<std::string, std::string, std::vector<int>, bool, std::int32_t, std::string, std::string>(
        method, who.name, who.identity, who.daemon, who.parent_pid, who.parent_name, who.authkey));
    w.value(late_libraries());
    w.raw(static_cast<std::uint8_t>(entry.has_value()));
    w.raw(entry.value_or(0));
    w.raw(static_cast<std::int32_t>(tracker.second));
    w.raw(static_cast<std::uint64_t>(payload.bytes().size()));
    w.raw(static_cast<std::uint64_t>(payload.fds().size() + 1));
    std::vector<std::byte> all = w.bytes();
    all.insert(all.end(), payload.bytes().begin(), payload.bytes().end());
    const std::uint64_t total = all.size();
    std::array<iovec, 2> parts{iovec{const_cast<std::uint64_t*>(&total), sizeof total}, iovec{all.data(), all.size()}};
    os::write_all(sock, true, parts, "send(bootstrap)");
    std::vector<int> fds{tracker.first.get()};
    fds.insert(fds.end(), payload.fds().begin(), payload.fds().end());
    for (std::size_t i = 0; i < fds.size(); i += 250)
        os::send_fds(sock, std::span<const int>(fds).subspan(i, std::min<std::size_t>(250, fds.size() - i)));
}

[[noreturn]] void bootstrap_failed(const std::string& why) {
    const std::string msg = "polyproc: a child could not start: " + why + "\n";
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(1);
}

}  // namespace

Bootstrap read_bootstrap(std::vector<std::byte> bytes) {
    Bootstrap b;
    ChildReader r(bytes, {});
    if (r.raw<std::uint32_t>() != kBootstrapMagic) throw DecodeError("corrupt bootstrap message (no magic)");
    if (r.raw<std::uint64_t>() != startup_objects_fingerprint())
        throw DecodeError("the parent and this child loaded different shared libraries at startup");
    auto [method, name, identity, daemon, parent_pid, parent_name, authkey] =
        r.value<std::tuple<std::string, std::string, std::vector<int>, bool, std::int32_t, std::string, std::string>>();
    b.method = std::move(method);
    b.who = {std::move(name), std::move(identity), daemon, parent_pid, std::move(parent_name), std::move(authkey)};
    b.late_libraries = r.value<std::vector<std::string>>();
    const bool has_entry = r.raw<std::uint8_t>() != 0;
    const auto ref = r.raw<CodeRef>();
    if (has_entry) b.entry = ref;
    b.tracker_pid = r.raw<std::int32_t>();
    const auto payload_size = r.raw<std::uint64_t>();
    b.descriptors = r.raw<std::uint64_t>();
    if (payload_size != r.remaining())
        throw DecodeError("corrupt bootstrap message (a payload of " + std::to_string(payload_size) + " bytes, " +
                          std::to_string(r.remaining()) + " there)");
    if (b.descriptors == 0 || b.descriptors > 100000)
        throw DecodeError("corrupt bootstrap message (" + std::to_string(b.descriptors) + " descriptors)");
    b.payload_at = bytes.size() - r.remaining();
    b.bytes = std::move(bytes);
    return b;
}

namespace {

// In a spawn or forkserver child: reads the bootstrap from `sock`, becomes the child and runs it.
// `server`: the forkserver that forked us, or 0 for a spawned child (whose parent is the requester).
[[noreturn]] void run_bootstrap(FileDescriptor sock, pid_t server) {
    const bool forked_by_server = server != 0;
    Bootstrap b;
    std::vector<FileDescriptor> fds;
    try {
        std::uint64_t total = 0;
        if (os::read_full(sock.get(), std::as_writable_bytes(std::span(&total, 1))) != sizeof total)
            ::_exit(1);  // the parent gave up before sending anything (it failed or was killed)
        if (total > (std::uint64_t(1) << 30)) bootstrap_failed("corrupt bootstrap message (over 1 GiB)");
        std::vector<std::byte> bytes(total);
        if (os::read_full(sock.get(), bytes) != total) bootstrap_failed("the parent closed the bootstrap early");
        b = read_bootstrap(std::move(bytes));
        while (fds.size() < b.descriptors) {
            auto got = os::recv_fds(sock.get());
            if (got.empty()) bootstrap_failed("the parent closed the bootstrap before its descriptors");
            for (auto& f : got) fds.push_back(std::move(f));
        }
        if (fds.size() != b.descriptors) bootstrap_failed("wrong number of descriptors in the bootstrap");
        tracker_adopt(std::move(fds.front()), b.tracker_pid);  // one resource tracker for the tree
        fds.erase(fds.begin());
    } catch (const std::exception& e) {
        bootstrap_failed(e.what());
    }
    sock.reset();
    // A daemonic child dies with its parent (a forkserver child: with the server, which ends when
    // our real parent does).
    if (b.who.daemon) die_with_parent(forked_by_server ? server : b.who.parent_pid);
    try {
        set_start_method_in_child(parse_start_method(b.method));  // Python: the child reports it
    } catch (...) {
    }
    become_child(b.who);
    if (forked_by_server) open_parent_record_now();
    auto payload = std::span<const std::byte>(b.bytes).subspan(b.payload_at);
    run_child_and_exit([&] {
        load_late_libraries(b.late_libraries);  // before anything resolves a CodeRef
        if (!b.entry) return;
        ChildReader reader(payload, std::move(fds));
        reinterpret_cast<ChildEntry>(code_address(*b.entry))(reader);
    });
}

void require_init(const std::string& method) {
    std::lock_guard lock(init_state().mu);
    if (!init_state().initialised)
        throw ValueError("polyproc: the " + method +
                         " start method runs the program again in the child: call mp::init(argc, argv) as the first "
                         "line of main() first");
}

// posix_spawn of this executable as a polyproc child of the given kind, with `fd` at descriptor 3
// and no other descriptor but 0, 1 and 2.
pid_t spawn_self(const char* kind, int fd) {
    // dup2(fd, 3) when fd is already 3 would leave it close-on-exec.
    FileDescriptor moved;
    if (fd == kBootFd) {
        moved = FileDescriptor(
            os::check("fcntl(F_DUPFD_CLOEXEC)", [&] { return ::fcntl(fd, F_DUPFD_CLOEXEC, kBootFd + 1); }));
        fd = moved.get();
    }
    std::string argv0;
    {
        std::lock_guard lock(init_state().mu);
        argv0 = init_state().argv0;
    }
    std::string flag = "--polyproc-child", kind_arg = kind;
    char* argv[] = {argv0.data(), flag.data(), kind_arg.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&actions, fd, kBootFd);
    posix_spawn_file_actions_addclosefrom_np(&actions, kBootFd + 1);
    // A fresh program starts with default signal handling and nothing blocked, whatever we set.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    flush_stdio();
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn(/proc/self/exe)");
    return pid;
}

// ---- the forkserver, client side ----------------------------------------------------------------

struct ForkServerClient {
    std::mutex mu;
    FileDescriptor control;  // our end of the server's control socket
    pid_t server = 0;
    pid_t owner = 0;  // the process that started it (a fork child starts its own)
};
ForkServerClient& forkserver() {
    static auto* c = new ForkServerClient();
    return *c;
}
// A fork child must not keep the parent's server alive or talk to it: it starts its own if needed.
const bool forkserver_atfork = (register_after_fork([]() noexcept {
                                    auto& c = forkserver();
                                    new (&c.mu) std::mutex();
                                    c.control.reset();
                                    c.server = 0;
                                }),
                                true);

// Ends our server (it exits at end of file on its control socket) and reaps it; one that does not
// go within 5 s is killed. Its children live on (they report 255 if they outlive it).
void retire_server_locked(ForkServerClient& c) noexcept {
    unkeep(Kept::fd, c.control.get());
    unkeep(Kept::child, c.server);
    c.control.reset();
    if (!c.server || c.owner != ::getpid()) {
        c.server = 0;
        return;
    }
    try {
        FileDescriptor pidfd = os::pidfd_open(c.server);
        if (!os::wait_readable(pidfd.get(), Deadline(std::chrono::seconds(5))))
            (void)os::pidfd_send_signal(pidfd.get(), SIGKILL);
    } catch (...) {  // already reaped or never started: nothing to wait for
    }
    (void)os::retry_eintr([&] { return ::waitpid(c.server, nullptr, 0); });
    c.server = 0;
}

void start_server_locked(ForkServerClient& c) {
    retire_server_locked(c);
    auto [ours, theirs] = os::socketpair();
    c.server = spawn_self("forkserver", theirs.get());
    c.control = std::move(ours);
    c.owner = ::getpid();
    keep(Kept::fd, c.control.get());
    keep(Kept::child, c.server);
}

// Asks the server for a child: returns its pid, with `status` the read end of its status pipe and
// `boot` our end of the child's bootstrap socket. A server that dies before it reports a pid (killed
// just before or while it took the request) is replaced once, as Python restarts it. That is safe
// even if it had forked already: each attempt has its own bootstrap socket, and a child whose
// bootstrap never comes reads end of file and exits without running anything.
pid_t request_child(FileDescriptor& boot, FileDescriptor& status) {
    auto& c = forkserver();
    std::lock_guard lock(c.mu);
    for (int attempt = 0;; ++attempt) {
        if (!c.control || c.owner != ::getpid()) start_server_locked(c);
        auto [boot_parent, boot_child] = os::socketpair();
        auto [status_r, status_w] = os::pipe();
        const std::array<int, 2> fds{boot_child.get(), status_w.get()};
        std::int64_t pid = 0;
        try {
            os::send_fds(c.control.get(), fds);
            status_w.reset();
            boot_child.reset();
            if (os::read_full(status_r.get(), std::as_writable_bytes(std::span(&pid, 1))) == sizeof pid && pid > 0) {
                status = std::move(status_r);
                boot = std::move(boot_parent);
                return static_cast<pid_t>(pid);
            }
        } catch (const std::system_error&) {  // EPIPE, ECONNRESET: the server is gone
        }
        retire_server_locked(c);  // the next attempt, or the next start, gets a new server
        if (pid < 0) throw ProcessError("polyproc: the forkserver could not fork the child");
        if (attempt == 1)
            throw ProcessError("polyproc: the forkserver could not be started, or died twice while starting the child");
    }
}

}  // namespace

void stop_forkserver() noexcept {
    auto& c = forkserver();
    std::lock_guard lock(c.mu);
    retire_server_locked(c);
}

namespace {

// ---- the forkserver, server side ----------------------------------------------------------------

[[noreturn]] void serve_forever(FileDescriptor control) {
    // Ctrl-C in the terminal is for the program, not for the server (Python's server ignores it);
    // a status pipe whose reader is gone must not kill the server (and its daemonic children).
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    FileDescriptor sigfd(::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd) ::_exit(1);
    std::map<pid_t, FileDescriptor> status_of;  // children alive -> their status pipe
    auto write_int64 = [](int fd, std::int64_t v) {
        (void)!os::retry_eintr([&] { return ::write(fd, &v, sizeof v); });
    };
    for (;;) {
        pollfd p[2] = {{control.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
        if (os::retry_eintr([&] { return ::poll(p, 2, -1); }) < 0) ::_exit(1);
        if (p[1].revents) {
            signalfd_siginfo info;
            while (::read(sigfd.get(), &info, sizeof info) == sizeof info) {
            }
            int wstatus = 0;
            pid_t pid;
            while ((pid = ::waitpid(-1, &wstatus, WNOHANG)) > 0) {
                auto it = status_of.find(pid);
                if (it == status_of.end()) continue;
                const std::int64_t code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
                write_int64(it->second.get(), code);
                status_of.erase(it);
            }
        }
        if (p[0].revents) {
            std::vector<FileDescriptor> fds;
            try {
                fds = os::recv_fds(control.get());
            } catch (const std::exception&) {
                continue;  // a malformed request: nothing to answer
            }
            if (fds.empty()) ::_exit(0);  // the parent is gone
            if (fds.size() != 2) continue;
            const pid_t server = ::getpid();
            const pid_t pid = ::fork();
            if (pid == 0) {
                // The child: a copy of this single-threaded server. Drop the server's descriptors
                // (a child holding a status pipe would hide the server's death from the parent).
                control.reset();
                sigfd.reset();
                for (auto& [_, f] : status_of) f.reset();
                fds[1].reset();
                ::signal(SIGINT, SIG_DFL);
                ::signal(SIGPIPE, SIG_DFL);
                ::sigprocmask(SIG_UNBLOCK, &chld, nullptr);
                run_bootstrap(std::move(fds[0]), server);
            }
            if (pid > 0) {
                write_int64(fds[1].get(), pid);
                status_of.emplace(pid, std::move(fds[1]));
            } else {
                write_int64(fds[1].get(), -1);  // fork failed: the parent's start() fails
            }
        }
    }
}

}  // namespace

[[noreturn]] void child_main(const char* argv0, const char* kind) {
    ::fcntl(kBootFd, F_SETFD, FD_CLOEXEC);  // never passed on further
    {
        std::lock_guard lock(init_state().mu);
        init_state().initialised = true;  // the child may start children of its own
        if (argv0) init_state().argv0 = argv0;
    }
    snapshot_startup_objects();
    if (std::strcmp(kind, "spawn") == 0) run_bootstrap(FileDescriptor(kBootFd), 0);
    if (std::strcmp(kind, "forkserver") == 0) serve_forever(FileDescriptor(kBootFd));
    std::fprintf(stderr, "polyproc: unknown child kind '%s'\n", kind);
    std::exit(2);
}

std::shared_ptr<ProcessRecord> start_fresh_child(StartMethod start_method, const ChildIdentity& who,
                                                 std::optional<CodeRef> entry, const ChildWriter& payload) {
    const std::string method(start_method_name(start_method));
    require_init(method);
    const auto tracker = tracker_for_child();
    flush_stdio();  // as before a fork: output written so far comes out before the child's
    FileDescriptor boot_parent;
    std::shared_ptr<ProcessRecord> record;
    if (start_method == StartMethod::spawn) {
        auto [ours, theirs] = os::socketpair();
        record = track_child(spawn_self("spawn", theirs.get()));
        boot_parent = std::move(ours);
    } else {
        FileDescriptor status;
        const pid_t pid = request_child(boot_parent, status);
        record = std::make_shared<ProcessRecord>();
        record->pid = pid;
        // Not yet reaped (it waits for its bootstrap), so the pid is still that child's.
        try {
            record->pidfd = os::pidfd_open(pid);
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::no_such_process) throw;  // killed from outside: the status tells
        }
        record->status = std::move(status);
    }
    try {
        send_bootstrap(boot_parent.get(), method, who, entry, payload, tracker);
    } catch (const std::system_error&) {
        // A child killed from outside before reading it: its exit code tells. A child still
        // there never got its work: it must not run half-started, and start() fails.
        if (!record->poll()) {
            record->signal(SIGKILL);
            record->wait(Deadline::never());
            throw;
        }
    }
    return record;
}

}  // namespace detail

void init(int argc, char** argv) {
    if (argc >= 3 && argv[1] && std::strcmp(argv[1], "--polyproc-child") == 0) detail::child_main(argv[0], argv[2]);
    detail::snapshot_startup_objects();
    auto& s = detail::init_state();
    std::lock_guard lock(s.mu);
    s.initialised = true;
    if (argc >= 1 && argv && argv[0]) s.argv0 = argv[0];
}

}  // namespace polyproc
