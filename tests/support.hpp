// Shared helpers for polyproc's tests.
#pragma once

#include <gtest/gtest.h>

#include <polyproc/polyproc.hpp>
#include "polyproc/context.hpp"
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <fcntl.h>
#include <fstream>
#include <glob.h>
#include <sstream>
#include <vector>
#include <optional>
#include <string>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mp = polyproc;

// First statement of a test that is about fork itself (a child working on a copy of the parent's
// memory, a subclass overriding run(), a target capturing what cannot travel, ...): skipped when
// the binary runs under another start method.
#define POLYPROC_FORK_ONLY()                                                                    \
    do {                                                                                        \
        if (::polyproc::get_start_method() != "fork") GTEST_SKIP() << "fork start method only"; \
    } while (0)

// Every test that starts processes derives from this: whatever happens in the test body,
// the children it left behind are killed and reaped.
class ProcessTest : public ::testing::Test {
protected:
    void TearDown() override {
        for (const auto& child : mp::active_children()) {
            child.kill();
            child.join();
        }
    }
};

// A real fault, for crash reports: a store to a bad address (not null, which UBSan would report
// first), in a function of its own, which the report names.
[[gnu::noinline]] inline void write_to_a_bad_address(int value) {
    static volatile std::uintptr_t bad = 16;  // read at run time: the compiler cannot see the fault
    *reinterpret_cast<volatile int*>(bad) = value;
}

// Waits (bounded) until pred() holds; its last answer when `limit` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
}

// What f() throws as an E: its what(); "(nothing thrown)" when it returns.
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

// A "does not hang" bound for a test body that has no timeout of its own (a blocking map, a burst
// of submissions): unless destroyed within `limit`, it says what hung and aborts the test binary,
// which ctest reports as a failure (daemonic children die with it). A hang thus fails the test
// quickly and by name, instead of at ctest's timeout.
class HangGuard {
public:
    // Returns once the watcher runs: a fork while a thread is still starting can leave the child
    // a lock of the thread library (ASan's thread registry) held forever, and a child that starts
    // threads of its own (a manager's server) then hangs.
    HangGuard(std::chrono::seconds limit, std::string what)
        : watcher_([this, limit, what = std::move(what)] {
              std::unique_lock lock(mu_);
              started_ = true;
              cv_.notify_all();
              if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
              std::fprintf(stderr, "HANG: %s did not finish within %lld s\n", what.c_str(),
                           static_cast<long long>(limit.count()));
              std::fflush(stderr);
              std::abort();
          }) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return started_; });
    }
    ~HangGuard() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        watcher_.join();
    }
    HangGuard(const HangGuard&) = delete;
    HangGuard& operator=(const HangGuard&) = delete;

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool started_ = false;
    bool done_ = false;
    std::thread watcher_;  // last: starts once the rest exists
};

// Held by the tests that move messages of several GiB: ctest runs test binaries in parallel, and
// two of those at once (under ThreadSanitizer, whose shadow memory multiplies them) exhaust a
// 24 GiB machine. An flock on a fixed file serializes them across processes; the kernel releases
// it if the test dies.
class BigMemoryTestLock {
public:
    BigMemoryTestLock() : fd_(::open("/tmp/polyproc-big-memory-tests.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
        if (fd_ >= 0)
            while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
            }
    }
    ~BigMemoryTestLock() {
        if (fd_ >= 0) ::close(fd_);
    }
    BigMemoryTestLock(const BigMemoryTestLock&) = delete;
    BigMemoryTestLock& operator=(const BigMemoryTestLock&) = delete;

private:
    int fd_;
};

// A process's state letter ('R', 'S', 'T', 'Z'...), parent, process group and session, from
// /proc/<pid>/stat; nullopt once it is gone (reaped).
struct ProcStat {
    char state;
    pid_t ppid, pgrp, session;
};
inline std::optional<ProcStat> proc_stat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    const auto close = line.rfind(')');  // the name (field 2) may hold spaces and parentheses
    if (close == std::string::npos) return std::nullopt;
    char state = 0;
    int ppid = 0, pgrp = 0, session = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4) return std::nullopt;
    return ProcStat{state, pid_t(ppid), pid_t(pgrp), pid_t(session)};
}
// Alive and not a zombie.
inline bool running(pid_t pid) {
    const auto st = proc_stat(pid);
    return st && st->state != 'Z' && st->state != 'X';
}

inline std::string bytes_to_string(const std::vector<std::byte>& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline std::vector<std::byte> string_to_bytes(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return std::vector<std::byte>(p, p + s.size());
}

// Asserts that `stmt` throws `type` whose what() contains `text`.
#define EXPECT_THROW_WITH(stmt, type, text)                                                                    \
    do {                                                                                                       \
        try {                                                                                                  \
            stmt;                                                                                              \
            ADD_FAILURE() << "expected " #type " containing '" << (text) << "', nothing thrown";               \
        } catch (const type& e__) {                                                                            \
            EXPECT_NE(std::string(e__.what()).find(text), std::string::npos) << "message was: " << e__.what(); \
        }                                                                                                      \
    } while (0)

// The Python interpreters tests speak to: python3 from PATH (CMake's choice), then any 3.12+
// installed under pyenv.
inline std::vector<std::string> python_interpreters() {
    std::vector<std::string> found{POLYPROC_TEST_PYTHON};
    if (const char* home = std::getenv("HOME")) {
        glob_t g{};
        const std::string pattern = std::string(home) + "/.pyenv/versions/3.1[2-9]*/bin/python3";
        if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
            for (std::size_t i = 0; i < g.gl_pathc; ++i) found.emplace_back(g.gl_pathv[i]);
        ::globfree(&g);
    }
    return found;
}

// Runs `python` on `script` with `input` on its stdin and returns what it printed, one string per
// line (stderr included, so that a traceback shows in the test's failure). Bounded by timeout(1);
// a non-zero exit is a test failure.
inline std::vector<std::string> python_output(const std::string& python, const std::string& script,
                                              const std::string& input = {}) {
    char dir_template[] = "/tmp/polyproc-py-XXXXXX";
    const char* dir = ::mkdtemp(dir_template);
    if (!dir) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    const std::string script_path = std::string(dir) + "/script.py", input_path = std::string(dir) + "/input";
    std::ofstream(script_path) << script;
    std::ofstream(input_path, std::ios::binary) << input;
    const std::string command =
        "PYTHONIOENCODING=utf-8 timeout 120 " + python + " " + script_path + " < " + input_path + " 2>&1";
    std::vector<std::string> lines;
    if (FILE* out = ::popen(command.c_str(), "r")) {
        std::string text;
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) text.append(buf, n);
        const int status = ::pclose(out);
        std::istringstream stream(text);
        for (std::string line; std::getline(stream, line);) lines.push_back(line);
        EXPECT_EQ(status, 0) << python << " failed:\n" << text;
    } else {
        ADD_FAILURE() << "popen " << command;
    }
    std::remove(script_path.c_str());
    std::remove(input_path.c_str());
    ::rmdir(dir);
    return lines;
}

// A program the test runs (execvp of argv, in a process group of its own), its stdout and stderr
// read line by line from one pipe. Killed with its group when destroyed, however the test ends.
class Command {
public:
    explicit Command(std::vector<std::string> argv) : argv_(std::move(argv)) {
        std::vector<char*> args;  // made before the fork: the child may not allocate
        for (auto& a : argv_) args.push_back(a.data());
        args.push_back(nullptr);
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        pid_ = ::fork();
        if (pid_ < 0) {
            const int error = errno;
            ::close(fds[0]);
            ::close(fds[1]);
            throw std::system_error(error, std::generic_category(), "fork");
        }
        if (pid_ == 0) {  // async-signal-safe until exec
            ::setpgid(0, 0);
            ::dup2(fds[1], STDOUT_FILENO);
            ::dup2(fds[1], STDERR_FILENO);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
        ::setpgid(pid_, pid_);
        ::close(fds[1]);
        out_ = fds[0];
    }
    Command(const Command&) = delete;
    Command& operator=(const Command&) = delete;
    ~Command() {
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL);
            if (!status_) ::waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0) ::close(out_);
    }

    // The next line it printed, or nullopt at the end of its output or when `limit` passes.
    std::optional<std::string> next_line(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                output_ += line + "\n";
                return line;
            }
            if (eof_) {
                if (buffer_.empty()) return std::nullopt;
                std::string line = std::exchange(buffer_, {});
                output_ += line + "\n";
                return line;
            }
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::read(out_, buf, sizeof buf);
            if (n <= 0)
                eof_ = true;
            else
                buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }
    // Every line until it closes its output, then its exit status (nullopt: still running at `limit`).
    std::optional<int> wait(std::chrono::milliseconds limit = std::chrono::seconds(60)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (next_line(
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())))
            ;
        if (!eof_) return std::nullopt;
        while (!status_) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                break;
            }
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return status_;
    }
    const std::string& output() const { return output_; }  // every line read so far
    pid_t pid() const { return pid_; }

private:
    std::vector<std::string> argv_;
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_, output_;
    bool eof_ = false;
    std::optional<int> status_;
};

// Two hosts on this machine: the test's own network namespace and a fresh one, joined by a veth
// pair with addresses of the test's own; all of it created and removed by the test (skipped
// without root or iproute2).
class TwoHosts : public ProcessTest {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
        // One pair of hosts at a time on this machine (their subnets would meet in one routing table).
        lock_ = ::open("/tmp/polyproc-two-hosts.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_ >= 0) ::flock(lock_, LOCK_EX);
        if (std::system("ip -V > /dev/null 2>&1") != 0) GTEST_SKIP() << "iproute2's ip is not installed";
        const std::string id = std::to_string(::getpid());
        ns_ = "polyproc-" + id;
        here_link_ = "ppa" + id;
        const std::string there_link = "ppb" + id, net = "10.213." + std::to_string(::getpid() % 200 + 20) + ".";
        here_ = net + "1";
        there_ = net + "2";
        run("ip netns add " + ns_);
        created_ = true;
        run("ip link add " + here_link_ + " type veth peer name " + there_link + " netns " + ns_);
        run("ip addr add " + here_ + "/24 dev " + here_link_);
        run("ip link set " + here_link_ + " up");
        run("ip -n " + ns_ + " addr add " + there_ + "/24 dev " + there_link);
        run("ip -n " + ns_ + " link set " + there_link + " up");
        run("ip -n " + ns_ + " link set lo up");
    }
    void TearDown() override {
        ProcessTest::TearDown();
        if (created_) {
            std::system(("ip link del " + here_link_ + " 2> /dev/null").c_str());
            std::system(("ip netns pids " + ns_ + " 2> /dev/null | xargs -r kill -9").c_str());
            std::system(("ip netns del " + ns_).c_str());
        }
        if (lock_ >= 0) ::close(lock_);  // and the flock with it
    }
    static void run(const std::string& command) {
        ASSERT_EQ(std::system((command + " > /dev/null").c_str()), 0) << command;
    }
    // A command on the other host.
    std::vector<std::string> there(std::vector<std::string> argv) const {
        argv.insert(argv.begin(), {"ip", "netns", "exec", ns_});
        return argv;
    }
    // The other host is gone: its link is deleted (both ends of the pair), with no FIN or RST
    // for its connections; its processes stay, cut off.
    void vanish() { run("ip link del " + here_link_); }

    std::string ns_, here_link_, here_, there_;
    bool created_ = false;
    int lock_ = -1;
};
