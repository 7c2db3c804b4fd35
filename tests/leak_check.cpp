// The leak check of every test binary. See leak_check.hpp.
#include "leak_check.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork_safety.hpp"

namespace polyproc_test {

namespace {

namespace fs = std::filesystem;
using polyproc::detail::Kept;

bool private_dev_shm = false;
constexpr const char* kIsolatedMark = "POLYPROC_TEST_OWN_DEV_SHM";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// A process's command line, its NULs as spaces.
std::string command_line(pid_t pid) {
    std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : cmd)
        if (c == '\0') c = ' ';
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    return cmd.empty() ? "(" + first_line("/proc/" + std::to_string(pid) + "/comm") + ", exited)" : cmd;
}

struct Snapshot {
    std::map<int, std::string> fds;       // number -> what it is
    std::set<std::string> shm;            // /dev/shm entries
    std::map<int, std::string> children;  // pid -> command line
    std::map<int, std::string> threads;   // tid -> name
};

Snapshot take_snapshot() {
    Snapshot s;
    std::error_code ec;
    const std::string self_fd = "/proc/" + std::to_string(::getpid()) + "/fd";
    for (const auto& entry : fs::directory_iterator("/proc/self/fd", ec)) {
        const std::string target = fs::read_symlink(entry.path(), ec).string();
        if (ec || target == self_fd) continue;  // gone, or the directory being listed
        s.fds[std::stoi(entry.path().filename().string())] = target;
    }
    if (private_dev_shm)
        for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) s.shm.insert(entry.path().filename().string());
    for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
        const int tid = std::stoi(task.path().filename().string());
        s.threads[tid] = first_line(task.path().string() + "/comm");
        std::istringstream children(read_file(task.path().string() + "/children"));
        for (int pid; children >> pid;) s.children[pid] = "";
    }
    for (const int id : polyproc::detail::kept(Kept::fd)) s.fds.erase(id);
    for (const int id : polyproc::detail::kept(Kept::child)) s.children.erase(id);
    for (const int id : polyproc::detail::kept(Kept::thread)) s.threads.erase(id);
    for (auto& [pid, cmd] : s.children) cmd = command_line(pid);
    return s;
}

// What `after` has that `before` had not, in words; empty when nothing.
std::string leaks(const Snapshot& before, const Snapshot& after) {
    std::string found;
    auto add = [&](const std::string& what) { found += "\n  " + what; };
    for (const auto& [fd, target] : after.fds)
        if (auto it = before.fds.find(fd); it == before.fds.end() || it->second != target)
            add("file descriptor " + std::to_string(fd) + " -> " + target);
    for (const auto& name : after.shm)
        if (!before.shm.count(name)) add("/dev/shm/" + name);
    for (const auto& [pid, cmd] : after.children)
        if (!before.children.count(pid)) add("child process " + std::to_string(pid) + ": " + cmd);
    for (const auto& [tid, name] : after.threads)
        if (!before.threads.count(tid)) add("thread " + std::to_string(tid) + " (" + name + ")");
    return found;
}

// 5 s, or POLYPROC_LEAK_CHECK_GRACE_MS (the check's own test shortens it).
std::chrono::milliseconds grace() {
    const char* ms = std::getenv("POLYPROC_LEAK_CHECK_GRACE_MS");
    return std::chrono::milliseconds(ms ? std::atoi(ms) : 5000);
}

class LeakCheck : public testing::EmptyTestEventListener {
    void OnTestStart(const testing::TestInfo&) override { before_ = take_snapshot(); }

    void OnTestEnd(const testing::TestInfo& info) override {
        if (info.result()->Skipped()) return;
        // Threads and children that are on their way out get a few seconds.
        const auto give_up = std::chrono::steady_clock::now() + grace();
        Snapshot after = take_snapshot();
        std::string found = leaks(before_, after);
        while (!found.empty() && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            after = take_snapshot();
            found = leaks(before_, after);
        }
        if (found.empty()) return;
        ADD_FAILURE() << "leak check: the test left behind" << found;
        for (const auto& [pid, cmd] : after.children)  // so that it cannot disturb the next test
            if (!before_.children.count(pid)) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
    }

    Snapshot before_;
};

}  // namespace

void give_this_process_its_own_dev_shm() {
    if (std::getenv(kIsolatedMark)) {  // a child of an isolated test process: same namespace
        private_dev_shm = false;
        return;
    }
    if (::geteuid() != 0 || ::unshare(CLONE_NEWNS) != 0) return;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("polyproc-test-shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
        std::fprintf(stderr, "leak check: could not mount a private /dev/shm; /dev/shm is left out\n");
        return;
    }
    ::setenv(kIsolatedMark, "1", 1);
    private_dev_shm = true;
}

void install_leak_check() {
    if (const char* on = std::getenv("POLYPROC_LEAK_CHECK"); on && std::string(on) == "0") return;
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer starts a background thread at the first pthread_create: before the tests.
    std::thread([] {}).join();
#endif
    testing::UnitTest::GetInstance()->listeners().Append(new LeakCheck);
}

}  // namespace polyproc_test
