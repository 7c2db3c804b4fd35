// The OS layer (src/os.hpp): RAII descriptors, close-on-exec, EINTR, errors naming the call.
#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include "os.hpp"

using namespace polyproc;

TEST(FileDescriptor, ClosesOnDestructionAndMove) {
    int raw;
    {
        auto [r, w] = os::pipe();
        raw = r.get();
        FileDescriptor moved = std::move(r);
        EXPECT_FALSE(r);
        EXPECT_EQ(moved.get(), raw);
        EXPECT_TRUE(os::is_valid_fd(raw));
    }
    EXPECT_FALSE(os::is_valid_fd(raw));
}

TEST(FileDescriptor, ReleaseGivesUpOwnership) {
    auto [r, w] = os::pipe();
    int raw = r.release();
    EXPECT_FALSE(r);
    EXPECT_TRUE(os::is_valid_fd(raw));
    ::close(raw);
}

TEST(FileDescriptor, EverythingIsCloseOnExec) {
    auto [r, w] = os::pipe();
    auto [a, b] = os::socketpair();
    FileDescriptor d = r.dup();
    FileDescriptor n = os::open("/dev/null", O_RDONLY);
    for (int fd : {r.get(), w.get(), a.get(), b.get(), d.get(), n.get()})
        EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << "fd " << fd;
}

TEST(Os, ErrorsNameTheCall) {
    try {
        os::open("/nonexistent/dir/file", O_RDONLY);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("open"), std::string::npos) << e.what();
    }
}

TEST(Os, WaitReadableTimesOutAndSeesData) {
    auto [r, w] = os::pipe();
    EXPECT_FALSE(os::wait_readable(r.get(), detail::Deadline(std::chrono::milliseconds(20))));
    EXPECT_FALSE(os::poll_readable_now(r.get()));
    ASSERT_EQ(::write(w.get(), "x", 1), 1);
    EXPECT_TRUE(os::poll_readable_now(r.get()));
    EXPECT_TRUE(os::wait_readable(r.get(), detail::Deadline::never()));
}

namespace {
volatile sig_atomic_t alarms = 0;
void on_alarm(int) { alarms = alarms + 1; }
}  // namespace

TEST(Os, WaitReadableSurvivesSignalsWithoutRestartingTheTimeout) {
    struct sigaction sa {};
    sa.sa_handler = on_alarm;  // no SA_RESTART: poll(2) returns EINTR
    sigemptyset(&sa.sa_mask);
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGALRM, &sa, &old), 0);
    itimerval every_5ms{{0, 5000}, {0, 5000}};
    ASSERT_EQ(::setitimer(ITIMER_REAL, &every_5ms, nullptr), 0);
    auto [r, w] = os::pipe();
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(os::wait_readable(r.get(), detail::Deadline(std::chrono::milliseconds(100))));
    const auto waited = std::chrono::steady_clock::now() - t0;
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old, nullptr);
    EXPECT_GT(alarms, 2);
    EXPECT_GE(waited, std::chrono::milliseconds(100));
    EXPECT_LT(waited, std::chrono::seconds(10));  // does-not-hang bound
}

TEST(Os, WriteAllContinuesPartialWrites) {
    auto [a, b] = os::socketpair();
    std::vector<char> big(8 << 20, 'z');  // far beyond the socket buffer: many partial writes
    std::thread reader([&] {
        std::vector<std::byte> got(big.size());
        EXPECT_EQ(os::read_full(b.get(), got), big.size());
        EXPECT_EQ(got.back(), std::byte{'z'});
    });
    iovec parts[1] = {{big.data(), big.size()}};
    os::write_all(a.get(), true, parts, "test");
    reader.join();
}

TEST(Os, ReadFullReportsShortReadAtEof) {
    auto [r, w] = os::pipe();
    ASSERT_EQ(::write(w.get(), "abc", 3), 3);
    w.reset();
    std::array<std::byte, 8> buf{};
    EXPECT_EQ(os::read_full(r.get(), buf), 3u);
}
