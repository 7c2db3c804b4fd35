// Process (the fork start method; spawn.cpp has the others), the registry of this process's
// children, current_process and parent_process.
#include "polyproc/process.hpp"

#include <array>
#include <cstdint>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <iostream>
#include <mutex>
#include <typeinfo>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdio_ext.h>

#include "faulthandler.hpp"
#include "names.hpp"
#include "os.hpp"
#include "process_internal.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace polyproc {

namespace detail {

std::optional<int> ProcessRecord::poll() {
    std::lock_guard lock(mu);
    if (exitcode || is_parent) return exitcode;
    if (status) {  // a forkserver child (its pidfd, if any, only serves signals)
        if (!os::poll_readable_now(status.get())) return std::nullopt;
        // The server writes the exit code (8 bytes, negative for a signal) once it has reaped the
        // child; end of file without it: the server died, and Python reports 255.
        std::int64_t code = 255;
        std::array<std::byte, 8> buf{};
        if (os::read_full(status.get(), buf) == buf.size()) std::memcpy(&code, buf.data(), 8);
        exitcode = static_cast<int>(code);
        return exitcode;
    }
    if (!pidfd) return exitcode;
    siginfo_t info{};
    int r = os::retry_eintr([&] {
        return ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info, WEXITED | WNOHANG);
    });
    if (r == -1) {
        // Someone else reaped it (waitpid(-1) in user code, SIGCHLD ignored): the status is lost.
        if (errno == ECHILD)
            exitcode = 255;
        else
            os::throw_errno("waitid");
    } else if (info.si_pid != 0) {
        exitcode = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    }
    return exitcode;
}

bool ProcessRecord::wait(Deadline deadline) {
    {
        std::lock_guard lock(mu);
        if (exitcode || (!pidfd && !status)) return true;
    }
    // The pidfd (or the status pipe) is readable as soon as the process has ended (reaped or
    // not): one poll, then one waitid to reap.
    if (!os::wait_readable(sentinel(), deadline)) return false;
    return ended_now();
}

void ProcessRecord::signal(int sig) {
    std::lock_guard lock(mu);
    if (exitcode || !pidfd) return;  // already reaped: nothing to signal (and the pid may be reused)
    if (os::pidfd_send_signal(pidfd.get(), sig) == -1 && errno != ESRCH) os::throw_errno("pidfd_send_signal");
}

namespace {

struct CurrentProcess {  // its name: this_process_name() (names.hpp)
    std::vector<int> identity;
    std::string authkey;  // made on first use in the main process: 32 random bytes
    bool daemon = false;
    int counter = 0;  // for children's identities; restarts at 1 in every process
    std::string parent_name;
    pid_t parent_pid = 0;                    // 0 in the main process
    std::shared_ptr<ProcessRecord> parent;   // opened on first use (keeps fork-to-run cheap)
};

struct ChildInfo {
    std::shared_ptr<ProcessRecord> record;
    std::string name;
    std::string authkey;
    bool daemon;
    std::vector<int> identity;
};

// Heap-allocated and never destroyed so that it outlives static destructors and atexit ordering.
struct Registry {
    std::mutex mu;
    CurrentProcess current;
    std::vector<ChildInfo> children;
};

// What a fork child inherited from its parent's registry, set aside (see run_in_child).
struct Inherited {
    std::vector<ChildInfo> children;
    std::shared_ptr<ProcessRecord> parent;
};
Inherited* inherited_from_parent = nullptr;

Registry& registry() {
    static Registry* r = new Registry();
    return *r;
}

void remove_finished_locked(Registry& r) {
    std::erase_if(r.children, [](ChildInfo& c) { return c.record->poll().has_value(); });
}

// Python's join: a child that has ended leaves the list of children at once, and with it the
// registry's hold on its record (and the pidfd in it).
void forget_if_ended(const ProcessRecord* record) {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    std::erase_if(r.children, [&](ChildInfo& c) { return c.record.get() == record && c.record->poll().has_value(); });
}

// Python's util._exit_function: terminate daemonic children, then join every child.
void exit_function() {
    std::vector<ChildInfo> live;
    {
        Registry& r = registry();
        std::lock_guard lock(r.mu);
        remove_finished_locked(r);
        live = r.children;
    }
    for (auto& c : live)
        if (c.daemon) c.record->signal(SIGTERM);
    for (auto& c : live) c.record->wait(Deadline::never());
    {
        Registry& r = registry();
        std::lock_guard lock(r.mu);
        remove_finished_locked(r);
    }
    // Last: our children are done with it. Python's forkserver also ends with its parent.
    stop_forkserver();
}

// "ns::(anonymous namespace)::MyProcess" -> "MyProcess", keeping template arguments.
std::string unqualified(const std::string& name) {
    int depth = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i + 1 < name.size(); ++i) {
        if (name[i] == '<' || name[i] == '(')
            ++depth;
        else if (name[i] == '>' || name[i] == ')')
            --depth;
        else if (depth == 0 && name[i] == ':' && name[i + 1] == ':')
            start = i + 2;
    }
    return name.substr(start);
}

std::string join_identity(const std::vector<int>& identity) {
    std::string s;
    for (std::size_t i = 0; i < identity.size(); ++i) s += (i ? ":" : "") + std::to_string(identity[i]);
    return s;
}

}  // namespace

void register_exit_function() {
    static std::once_flag once;
    std::call_once(once, [] { std::atexit(exit_function); });
}

void discard_inherited_stdio() noexcept {
    ::__fpurge(stdout);
    ::__fpurge(stderr);
}

void flush_stdio() noexcept {
    // Without this, text buffered before fork() is printed by the parent and again by the child.
    try {
        std::cout.flush();
        std::cerr.flush();
        std::clog.flush();
    } catch (...) {
    }
    std::fflush(nullptr);
}

void die_with_parent(pid_t parent) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent died before prctl took effect: die as the kernel would have made us.
    if (::getppid() != parent) ::raise(SIGKILL);
}

std::shared_ptr<ProcessRecord> track_child(pid_t pid) {
    auto record = std::make_shared<ProcessRecord>();
    record->pid = pid;
    try {
        record->pidfd = os::pidfd_open(pid);
    } catch (...) {
        ::kill(pid, SIGKILL);  // never leave a child we cannot track
        ::waitpid(pid, nullptr, 0);
        throw;
    }
    return record;
}

void register_child(std::shared_ptr<ProcessRecord> record, const std::string& name, const std::string& authkey,
                    bool daemon, const std::vector<int>& identity) {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    r.children.push_back({std::move(record), name, authkey, daemon, identity});
}

void check_authkey(const std::string& key) {
    if (key.empty()) throw ValueError("authkey must not be empty");
}

// Under r.mu.
const std::string& current_authkey_locked(Registry& r) {
    if (r.current.authkey.empty()) {  // the main process: Python's os.urandom(32)
        std::string key(32, '\0');
        os::random_bytes(std::as_writable_bytes(std::span(key.data(), key.size())));
        r.current.authkey = std::move(key);
    }
    return r.current.authkey;
}

void become_child(const ChildIdentity& who) {
    auto& r = registry();
    new (&r.mu) std::mutex();  // another thread may have held it at fork time
    // Our parent's children are not ours. Set them aside without destroying them: destruction
    // would write to (and so copy) every page they live on, for nothing. They stay reachable,
    // so leak checkers stay quiet.
    inherited_from_parent = new Inherited{std::move(r.children), std::move(r.current.parent)};
    r.children = {};
    set_this_process_name(who.name);
    r.current.identity = who.identity;
    r.current.daemon = who.daemon;
    r.current.authkey = who.authkey;
    r.current.counter = 0;
    r.current.parent_name = who.parent_name;
    r.current.parent_pid = who.parent_pid;
    r.current.parent = nullptr;
}

void open_parent_record_now() {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    auto parent = std::make_shared<ProcessRecord>();
    parent->pid = r.current.parent_pid;
    parent->is_parent = true;
    try {
        parent->pidfd = os::pidfd_open(r.current.parent_pid);
    } catch (const std::system_error&) {  // already gone: the record reports it ended
    }
    r.current.parent = std::move(parent);
}

void warn_if_forking_threads() {
    static std::atomic<bool> warned{false};
    if (warned.load(std::memory_order_relaxed)) return;
    const long threads = threads_in_this_process();
    // The helpers do not count, unless this thread is one of them running user code (a callback
    // on the result thread): then it counts as the user's, as the calling thread always does.
    const long others_helpers = helper_threads_running() - (helper_running_user_code() ? 1 : 0);
    if (threads - others_helpers <= 1) return;
    if (warned.exchange(true)) return;
    const std::string msg = "polyproc: warning: this process (pid=" + std::to_string(::getpid()) +
                            ") is multi-threaded, use of fork() may lead to deadlocks in the child. Use the "
                            "'spawn' or 'forkserver' start method (mp::set_start_method or mp::get_context) "
                            "instead.\n";
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
}

namespace {
bool sigint_muted = false;  // this process is a pool worker that muted SIGINT (a fork child copies it)
}  // namespace

void mute_sigint_in_pool_worker() noexcept {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    sigint_muted = true;
}

void restore_sigint_after_pool_worker() noexcept {
    if (!sigint_muted) return;
    ::signal(SIGINT, SIG_DFL);
    sigint_muted = false;
}

void run_child_and_exit(const std::function<void()>& work) {
    // Python replaces the child's stdin with /dev/null so that children do not fight over it.
    // open() returns the lowest free descriptor, 0, and stays inheritable as stdin must.
    ::close(STDIN_FILENO);
    if (int devnull = ::open("/dev/null", O_RDONLY); devnull > STDIN_FILENO) ::close(devnull);
    faulthandler::enable();  // a crash now writes its stack to stderr first (faulthandler.hpp)
    restore_sigint_after_pool_worker();  // a child a task started gets Ctrl-C again
    int code = 0;
    auto report = [&](const char* what) {
        flush_stdio();
        const std::type_info* t = abi::__cxa_current_exception_type();
        std::string msg = "Process " + current_process().name() + ":\n" +
                          (t ? demangle(t->name()) : "unknown exception") + (what ? std::string(": ") + what : "") +
                          "\n";
        (void)!::write(STDERR_FILENO, msg.data(), msg.size());
        code = 1;
    };
    try {
        work();
    } catch (const std::exception& e) {
        report(e.what());
    } catch (...) {
        report(nullptr);
    }
    try {
        exit_function();
    } catch (...) {
    }
    flush_stdio();
    ::_exit(code);
}

}  // namespace detail

using detail::registry;

// ---------------------------------------------------------------------------------------------
// ProcessInfo

bool ProcessInfo::is_alive() const { return !record_ || !record_->ended_now(); }

void ProcessInfo::join(Timeout timeout) const {
    if (!record_) throw ValueError("can only join a child process");
    record_->wait(detail::Deadline(timeout));
    detail::forget_if_ended(record_.get());
}

std::optional<int> ProcessInfo::exitcode() const {
    return record_ && !record_->is_parent ? record_->poll() : std::nullopt;
}

void ProcessInfo::terminate() const {
    if (!record_ || record_->is_parent) throw ValueError("can only terminate a child process");
    record_->signal(SIGTERM);
}

void ProcessInfo::kill() const {
    if (!record_ || record_->is_parent) throw ValueError("can only kill a child process");
    record_->signal(SIGKILL);
}

ProcessInfo current_process() {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    ProcessInfo info;
    info.pid_ = ::getpid();
    info.name_ = detail::this_process_name();
    info.daemon_ = r.current.daemon;
    info.identity_ = r.current.identity;
    info.authkey_ = detail::current_authkey_locked(r);
    return info;
}

void ProcessInfo::set_authkey(std::string key) {
    if (record_ || pid_ != ::getpid()) throw ValueError("can only set the authkey of the current process");
    detail::check_authkey(key);
    auto& r = registry();
    std::lock_guard lock(r.mu);
    r.current.authkey = key;
    authkey_ = std::move(key);
}

std::optional<ProcessInfo> parent_process() {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    if (!r.current.parent_pid) return std::nullopt;
    if (!r.current.parent) {
        auto parent = std::make_shared<detail::ProcessRecord>();
        parent->pid = r.current.parent_pid;
        parent->is_parent = true;
        // While getppid() is still our parent's pid, that pid cannot have been reused: the pidfd
        // refers to the right process. Otherwise it has died and we were reparented.
        if (::getppid() == r.current.parent_pid) {
            try {
                parent->pidfd = os::pidfd_open(r.current.parent_pid);
            } catch (const std::system_error&) {  // died meanwhile: the record reports it ended
            }
        }
        r.current.parent = std::move(parent);
    }
    ProcessInfo info;
    info.pid_ = r.current.parent->pid;
    info.name_ = r.current.parent_name;
    info.record_ = r.current.parent;
    return info;
}

std::vector<ProcessInfo> active_children() {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    detail::remove_finished_locked(r);
    std::vector<ProcessInfo> out;
    for (const auto& c : r.children) {
        ProcessInfo info;
        info.pid_ = c.record->pid;
        info.name_ = c.name;
        info.daemon_ = c.daemon;
        info.authkey_ = c.authkey;
        info.identity_ = c.identity;
        info.record_ = c.record;
        out.push_back(std::move(info));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Process

Process::Process() : creator_pid_(::getpid()) {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    identity_ = r.current.identity;
    identity_.push_back(++r.current.counter);
    daemon_ = r.current.daemon;  // Python: daemon=None inherits the creating process's flag
    authkey_ = detail::current_authkey_locked(r);
}

void ProcessInfo::set_daemon(bool daemonic) {
    if (record_ || pid_ != ::getpid()) throw ValueError("can only set the daemon flag of the current process");
    auto& r = registry();
    std::lock_guard lock(r.mu);
    r.current.daemon = daemonic;
    daemon_ = daemonic;
}

void Process::set_authkey(std::string key) {
    detail::check_authkey(key);
    authkey_ = std::move(key);
}

Process::Process(Process&& o) noexcept
    : target_(std::move(o.target_)),
      start_method_(std::move(o.start_method_)),
      name_(std::move(o.name_)),
      identity_(std::move(o.identity_)),
      daemon_(o.daemon_),
      authkey_(std::move(o.authkey_)),
      creator_pid_(o.creator_pid_),
      running_as_(o.running_as_),
      record_(std::move(o.record_)),
      closed_(std::exchange(o.closed_, true)) {}

Process& Process::operator=(Process&& o) noexcept {
    if (this != &o) {
        target_ = std::move(o.target_);
        start_method_ = std::move(o.start_method_);
        name_ = std::move(o.name_);
        identity_ = std::move(o.identity_);
        daemon_ = o.daemon_;
        authkey_ = std::move(o.authkey_);
        creator_pid_ = o.creator_pid_;
        running_as_ = o.running_as_;
        record_ = std::move(o.record_);
        closed_ = std::exchange(o.closed_, true);
    }
    return *this;
}

Process::~Process() {
    // Never blocks (see the header): a running child stays in the registry and is reaped later.
    if (record_ && creator_pid_ == ::getpid()) {
        try {
            record_->poll();
        } catch (...) {
        }
    }
}

void Process::run() {
    if (target_) target_->call();
}

void Process::check_not_closed() const {
    if (closed_) throw ValueError("process object is closed");
}

void Process::check_is_child(const char* what) const {
    if (creator_pid_ != ::getpid()) throw ValueError(std::string("can only ") + what + " a child process");
}

const std::string& Process::name() const {
    if (name_.empty())
        name_ = detail::unqualified(detail::demangle(typeid(*this).name())) + "-" + detail::join_identity(identity_);
    return name_;
}

void Process::set_name(std::string name) { name_ = std::move(name); }

void Process::set_daemon(bool daemonic) {
    if (record_) throw ValueError("process has already started");
    daemon_ = daemonic;
}

void Process::start() {
    check_not_closed();
    if (record_) throw ValueError("cannot start a process twice");
    if (creator_pid_ != ::getpid()) throw ValueError("can only start a process object created by current process");
    auto& r = registry();
    std::string parent_name;
    {
        std::lock_guard lock(r.mu);
        if (r.current.daemon) throw ValueError("daemonic processes are not allowed to have children");
        detail::remove_finished_locked(r);
        parent_name = detail::this_process_name();
    }
    const detail::StartMethod method =
        start_method_ ? detail::parse_start_method(*start_method_) : detail::global_start_method();
    detail::register_exit_function();
    (void)name();  // fix the default name before the child copies us
    // The one place that picks how a child starts (Python's Popen classes).
    std::shared_ptr<detail::ProcessRecord> record;
    switch (method) {
        case detail::StartMethod::fork:
            record = start_by_fork(parent_name);
            break;
        case detail::StartMethod::spawn:
        case detail::StartMethod::forkserver:
            record = start_fresh(method, parent_name);
            break;
    }
    record_ = record;
    detail::register_child(std::move(record), name_, authkey_, daemon_, identity_);
    target_.reset();  // Python drops target and args once started: the child has its own copies
}

std::shared_ptr<detail::ProcessRecord> Process::start_by_fork(const std::string& parent_name) {
    detail::warn_if_forking_threads();
    detail::flush_stdio();
    const pid_t parent_pid = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) os::throw_errno("fork");
    if (pid == 0) run_in_child(parent_pid, parent_name);
    return detail::track_child(pid);
}

std::shared_ptr<detail::ProcessRecord> Process::start_fresh(detail::StartMethod method,
                                                            const std::string& parent_name) {
    // Everything that can fail before the child exists: a target or argument that cannot travel.
    detail::ChildWriter payload;
    std::optional<detail::CodeRef> entry;
    if (typeid(*this) != typeid(Process)) {  // even with a target: its run() may not call it
        throw ValueError("polyproc: a Process subclass (" + detail::demangle(typeid(*this).name()) +
                         ") cannot be started with the " + std::string(detail::start_method_name(method)) +
                         " start method: the child is a new run of the program and cannot rebuild the "
                         "object. Pass a function and arguments instead, or use the fork start method.");
    }
    if (target_) entry = target_->encode_for_child(payload);
    detail::ChildIdentity who{name(), identity_, daemon_, ::getpid(), parent_name, authkey_};
    return detail::start_fresh_child(method, who, entry, payload);
}

void Process::set_start_method(std::optional<std::string> method) {
    if (record_) throw ValueError("process has already started");
    if (method) (void)detail::parse_start_method(*method);  // validates the name
    start_method_ = std::move(method);
}

void Process::run_in_child(pid_t parent_pid, const std::string& parent_name) {
    // We are in the fork child. With the fork start method the child goes on to run arbitrary
    // user code, as in Python, so this is not restricted to async-signal-safe calls; a parent that
    // forks while other threads run gets the one-time warning of warn_if_forking_threads().
    detail::discard_inherited_stdio();
    running_as_ = ::getpid();
    if (daemon_) detail::die_with_parent(parent_pid);
    detail::become_child({name(), identity_, daemon_, parent_pid, parent_name, authkey_});
    detail::set_start_method_in_child(detail::StartMethod::fork);  // Python: the child reports it
    detail::run_child_and_exit([this] { run(); });
}

void Process::join(Timeout timeout) {
    check_not_closed();
    check_is_child("join");
    if (!record_) throw ValueError("can only join a started process");
    if (timeout.non_blocking())
        record_->poll();
    else
        record_->wait(detail::Deadline(timeout));
    detail::forget_if_ended(record_.get());
}

bool Process::is_alive() const {
    check_not_closed();
    if (running_as_ == ::getpid()) return true;  // Python: self is current_process()
    check_is_child("test");
    if (!record_) return false;
    return !record_->poll().has_value();
}

void Process::terminate() {
    check_not_closed();
    if (!record_) throw ValueError("process not started");
    record_->signal(SIGTERM);
}

void Process::kill() {
    check_not_closed();
    if (!record_) throw ValueError("process not started");
    record_->signal(SIGKILL);
}

void Process::close() {
    if (closed_) return;
    if (record_) {
        if (creator_pid_ == ::getpid() && !record_->poll())
            throw ValueError(
                "Cannot close a process while it is still running. You should first call join() or terminate().");
        auto& r = registry();
        std::lock_guard lock(r.mu);
        std::erase_if(r.children, [&](const detail::ChildInfo& c) { return c.record == record_; });
    }
    record_.reset();
    target_.reset();
    closed_ = true;
}

std::optional<int> Process::exitcode() const {
    check_not_closed();
    // Python: None before start, in the child itself, and in any process but the creator.
    if (!record_ || creator_pid_ != ::getpid()) return std::nullopt;
    return record_->poll();
}

pid_t Process::pid() const {
    check_not_closed();
    if (running_as_ == ::getpid()) return running_as_;
    return record_ ? record_->pid : 0;
}

int Process::sentinel() const {
    check_not_closed();
    if (!record_) throw ValueError("process not started");
    return record_->sentinel();
}

std::string Process::repr() const {
    // CPython 3.11's Process.__repr__, field for field.
    std::optional<int> code;
    std::string status;
    if (running_as_ == ::getpid())
        status = "started";
    else if (closed_)
        status = "closed";
    else if (creator_pid_ != ::getpid())
        status = "unknown";
    else if (!record_)
        status = "initial";
    else {
        code = record_->poll();
        status = code ? "stopped" : "started";
    }
    std::string s = "<" + detail::unqualified(detail::demangle(typeid(*this).name())) + " name='" + name() + "'";
    if (record_) s += " pid=" + std::to_string(record_->pid);
    s += " parent=" + std::to_string(creator_pid_) + " " + status;
    if (code) s += " exitcode=" + (*code < 0 ? "-" + detail::signal_name(-*code) : std::to_string(*code));
    return s + (daemon_ ? " daemon>" : ">");
}

}  // namespace polyproc
