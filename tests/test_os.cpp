// The OS layer (src/os.hpp): RAII descriptors, close-on-exec, EINTR, errors naming the call.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <new>
#include <system_error>
#include <thread>
#include <utility>

#include <sys/wait.h>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include "os.hpp"
#include "support.hpp"
#include "polyproc/detail/shared_region.hpp"

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

// ---- the one waiter shape (futex_wait_until / futex_wake_sleepers) ----------------------------

namespace {

// A futex word and its sleepers (in memory shared with fork children: make_shared_object).
struct SharedWait {
    std::uint32_t word = 0;
    polyproc::detail::FutexSleepers sleepers;
};

// A fork child, killed and reaped however the test ends.
class Child {
public:
    template <class F>
    explicit Child(F body) : pid_(::fork()) {
        if (pid_ == 0) ::_exit(body());
        if (pid_ < 0) throw std::system_error(errno, std::system_category(), "fork");
    }
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    int wait() {  // the exit status, or -signal
        int status = 0;
        ::waitpid(std::exchange(pid_, -1), &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }

private:
    pid_t pid_;
};

std::uint32_t load(const std::uint32_t& v) {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(v)).load();
}

}  // namespace

TEST(WaiterShape, WakesASleeperInAnotherProcessAndUncountsIt) {
    namespace os = polyproc::os;
    auto [region, shared] = detail::make_shared_object<SharedWait>();
    SharedWait& w = *shared;
    Child child([&] {
        const bool ok = os::futex_wait_until(
            w.word, w.sleepers, [&] { return load(w.word) != 0; },
            polyproc::detail::Deadline(std::chrono::seconds(20)));
        return ok ? 0 : 1;
    });
    ASSERT_TRUE(eventually([&] { return load(w.sleepers.count) == 1; }));  // asleep, counted
    EXPECT_EQ(load(reinterpret_cast<std::uint32_t&>(w.sleepers.slots[0])), std::uint32_t(child.pid()));
    std::atomic_ref<std::uint32_t>(w.word).store(1);
    os::futex_wake_sleepers(w.word, w.sleepers, 1, os::Wake::word_changed);
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(load(w.sleepers.count), 0u);
    EXPECT_EQ(w.sleepers.slots[0], 0);
}

TEST(WaiterShape, ReturnsFalseAtTheDeadlineAndLeavesNothingCounted) {
    namespace os = polyproc::os;
    SharedWait w;
    int calls = 0;
    EXPECT_FALSE(os::futex_wait_until(
        w.word, w.sleepers, [&] { return ++calls < 0; }, polyproc::detail::Deadline(std::chrono::milliseconds(30)),
        os::WaitStyle{.recheck = std::chrono::milliseconds(10)}));
    EXPECT_GT(calls, 1);
    EXPECT_EQ(w.sleepers.count, 0u);
}

TEST(WaiterShape, ASleeperKilledInItsSleepIsTakenOffTheCount) {
    namespace os = polyproc::os;
    auto [region, shared] = detail::make_shared_object<SharedWait>();
    SharedWait& w = *shared;
    Child child([&] {
        os::futex_wait_until(
            w.word, w.sleepers, [] { return false; }, polyproc::detail::Deadline::never());
        return 0;
    });
    ASSERT_TRUE(eventually([&] { return load(w.sleepers.count) == 1; }));
    ::kill(child.pid(), SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    EXPECT_EQ(load(w.sleepers.count), 1u);  // dead, still counted
    // Wake-ups that wake nobody: after 64 in a row, the dead sleeper's slot is found.
    for (int i = 0; i < 64; ++i) os::futex_wake_sleepers(w.word, w.sleepers, 1, os::Wake::bump_word);
    EXPECT_EQ(load(w.sleepers.count), 0u);
    EXPECT_EQ(w.sleepers.slots[0], 0);
    EXPECT_EQ(w.word, 64u);  // every wake-up with someone counted bumped the word
}

// A semaphore's value can go 1 → 0 → 1 between a waiter's look and its sleep (taken by another
// process and released again, that release's wake-up arriving before the waiter is in the
// kernel). A waiter that slept on the value it saw in passing (1) would sleep beside a free unit;
// sleep_while = 0 makes it sleep only while there is no unit. Here try_take plays the other
// processes while the waiter is counted.
TEST(WaiterShape, AStateWordIsSleptOnAtItsNotReadyValueNotAtAValueSeenInPassing) {
    namespace os = polyproc::os;
    SharedWait w;  // word: a semaphore's value, no unit yet
    const polyproc::detail::Deadline deadline(std::chrono::seconds(5));
    int counted_calls = 0;
    bool took_before_the_deadline = false;
    auto try_take = [&] {
        if (w.sleepers.count == 0) return false;  // still spinning: no unit
        switch (++counted_calls) {
            case 1:  // released just after this look
                w.word = 1;
                os::futex_wake_sleepers(w.word, w.sleepers, 1, os::Wake::word_changed);
                return false;
            case 2:  // taken by another process, released again; the wake-up finds nobody asleep
                w.word = 0;
                w.word = 1;
                os::futex_wake_sleepers(w.word, w.sleepers, 1, os::Wake::word_changed);
                return false;
            default:
                took_before_the_deadline = !deadline.expired();
                w.word = 0;
                return true;
        }
    };
    EXPECT_TRUE(os::futex_wait_until(w.word, w.sleepers, try_take, deadline, os::WaitStyle{.sleep_while = 0}));
    EXPECT_TRUE(took_before_the_deadline) << "the waiter slept beside a free unit until its deadline";
    EXPECT_EQ(counted_calls, 3);
}
