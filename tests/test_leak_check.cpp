// The leak check of every test binary (leak_check.hpp) fails a test that leaves a descriptor, a
// /dev/shm entry, a child or a thread behind, and passes one that cleans up. The leaky tests are
// DISABLED_ (never run by ctest); the check's test runs them in a fresh copy of this binary.
#include <array>
#include <regex>
#include <cstdio>
#include <string>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

// Runs this binary on `filter` (with disabled tests), in a /dev/shm of its own, with a short grace;
// returns its exit status and what it printed.
std::pair<int, std::string> run_tests(const std::string& filter) {
    const std::string command = "env -u POLYPROC_TEST_OWN_DEV_SHM POLYPROC_LEAK_CHECK_GRACE_MS=200 /proc/" +
                                std::to_string(::getpid()) + "/exe --gtest_also_run_disabled_tests --gtest_filter='" +
                                filter + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return {-1, "popen failed"};
    std::string output;
    std::array<char, 4096> buf;
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) output.append(buf.data(), n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool has(const std::string& output, const std::string& pattern) {
    return std::regex_search(output, std::regex(pattern));
}

}  // namespace

TEST(LeakCheckTarget, DISABLED_LeavesADescriptor) { (void)::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(LeakCheckTarget, DISABLED_LeavesAChild) {
    if (::fork() == 0) {
        ::pause();
        ::_exit(0);
    }
}

TEST(LeakCheckTarget, DISABLED_LeavesAThread) {
    std::thread([] { std::this_thread::sleep_for(60s); }).detach();
}

TEST(LeakCheckTarget, DISABLED_LeavesASharedMemorySegment) {
    const int fd = ::shm_open("/polyproc-leak-check-target", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
}

TEST(LeakCheckTarget, DISABLED_CleansUp) {
    ::close(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    std::thread([] {}).join();
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    const int fd = ::shm_open("/polyproc-leak-check-clean", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ::close(fd);
    ::shm_unlink("/polyproc-leak-check-clean");
}

TEST(LeakCheck, FailsATestThatLeavesSomethingBehindAndNamesIt) {
    if (::geteuid() != 0) GTEST_SKIP() << "a /dev/shm of its own needs root";
    const auto [status, output] = run_tests("LeakCheckTarget.DISABLED_Leaves*");
    EXPECT_EQ(status, 1) << output;
    EXPECT_TRUE(has(output, "4 FAILED TESTS")) << output;
    EXPECT_TRUE(has(output, "file descriptor [0-9]+ -> /dev/null")) << output;
    EXPECT_TRUE(has(output, "child process [0-9]+: /proc/[0-9]+/exe")) << output;
    EXPECT_TRUE(has(output, "thread [0-9]+ \\(")) << output;
    EXPECT_TRUE(has(output, "/dev/shm/polyproc-leak-check-target")) << output;
}

TEST(LeakCheck, PassesATestThatCleansUp) {
    if (::geteuid() != 0) GTEST_SKIP() << "a /dev/shm of its own needs root";
    const auto [status, output] = run_tests("LeakCheckTarget.DISABLED_CleansUp");
    EXPECT_EQ(status, 0) << output;
    EXPECT_TRUE(has(output, "PASSED.*1 test")) << output;
}
