// process.hpp: Process (fork start method), current_process, parent_process, active_children,
// cpu_count; CPython's behaviour and messages (docs/process.md).
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>

#include <poll.h>
#include <sys/syscall.h>
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

// Runs `body(args...)` in a child and returns what it sent back as a string (for checks that must
// happen inside a child, such as misuse errors raised there). `body` is a captureless lambda (it is
// rebuilt in the child, so this works under every start method); state goes in as `args`.
template <class Body, class... Args>
std::string in_child(Body, Args&&... args) {
    static_assert(std::is_empty_v<Body> && std::is_default_constructible_v<Body>,
                  "in_child: pass a captureless lambda and hand it its state as arguments");
    auto [r, w] = mp::Pipe(false);
    mp::Process p(
        [](mp::Connection& out, std::decay_t<Args>&... a) {
            std::string text;
            try {
                text = Body{}(a...);
            } catch (const std::exception& e) {
                text = std::string("exception: ") + e.what();
            }
            out.send(text);
        },
        std::move(w), std::forward<Args>(args)...);
    p.start();
    std::string got = r.recv<std::string>();
    p.join();
    return got;
}

bool pid_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

std::string slurp(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
    return s;
}

class Doubler : public mp::Process {
public:
    explicit Doubler(mp::Connection conn) : conn_(std::move(conn)) {}
    void run() override { conn_.send(conn_.recv<int>() * 2); }

private:
    mp::Connection conn_;
};

}  // namespace

class ProcessApi : public ProcessTest {};

TEST_F(ProcessApi, TargetWithArgumentsRunsInAChild) {
    auto [r, w] = mp::Pipe(false);
    mp::Process p(
        [](mp::Connection& out, int a, std::string b) { out.send(b + std::to_string(a) + std::to_string(::getpid())); },
        std::move(w), 7, std::string("x"));
    EXPECT_EQ(p.pid(), 0);
    EXPECT_FALSE(p.exitcode().has_value());
    p.start();
    EXPECT_GT(p.pid(), 0);
    EXPECT_EQ(r.recv<std::string>(), "x7" + std::to_string(p.pid()));
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_FALSE(p.is_alive());
}

TEST_F(ProcessApi, LambdaCapturesWorkAndMemoryIsNotShared) {
    POLYPROC_FORK_ONLY();  // a capturing target: the child works on a copy of the parent's memory
    int counter = 1;
    std::vector<int> data{1, 2, 3};
    mp::Process p([&] {
        counter = 100;  // the child's copy
        data.push_back(4);
        std::_Exit(counter == 100 && data.size() == 4 ? 0 : 1);
    });
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(counter, 1);
    EXPECT_EQ(data.size(), 3u);
}

TEST_F(ProcessApi, MoveOnlyArgumentTakenByValue) {
    auto [a, b] = mp::Pipe();
    mp::Process p([](mp::Connection conn) { conn.send(std::string("moved in")); }, std::move(b));
    p.start();
    EXPECT_EQ(a.recv<std::string>(), "moved in");
    p.join();
}

TEST_F(ProcessApi, ParentDropsArgumentsOnceStarted) {
    // Python drops its references to target and args after start(): the parent's copy of the
    // child's end closes, so EOF arrives once the child is done.
    auto [r, w] = mp::Pipe(false);
    mp::Process p([](mp::Connection& out) { out.send(1); }, std::move(w));
    p.start();
    EXPECT_EQ(r.recv<int>(), 1);
    EXPECT_THROW(r.recv<int>(), mp::EOFError);
    p.join();
}

TEST_F(ProcessApi, SubclassOverridingRun) {
    POLYPROC_FORK_ONLY();  // a subclass overriding run() cannot be spawned
    auto [a, b] = mp::Pipe();
    Doubler d(std::move(b));
    d.start();
    a.send(21);
    EXPECT_EQ(a.recv<int>(), 42);
    d.join();
    EXPECT_EQ(d.exitcode(), 0);
    EXPECT_EQ(d.name().substr(0, 8), "Doubler-");
    EXPECT_EQ(d.repr().substr(0, 9), "<Doubler ");
}

namespace {
class SelfReporter : public mp::Process {
public:
    explicit SelfReporter(mp::Connection conn) : conn_(std::move(conn)) {}
    void run() override { conn_.send(std::vector<long>{pid(), ::getpid(), is_alive() ? 1 : 0}); }

private:
    mp::Connection conn_;
};
}  // namespace

TEST_F(ProcessApi, InsideRunThePidIsOurOwnAndWeAreAlive) {
    POLYPROC_FORK_ONLY();  // a subclass overriding run() cannot be spawned
    auto [a, b] = mp::Pipe();
    SelfReporter p(std::move(b));
    p.start();
    auto seen = a.recv<std::vector<long>>();
    p.join();
    EXPECT_EQ(seen[0], p.pid());
    EXPECT_EQ(seen[1], p.pid());
    EXPECT_EQ(seen[2], 1);
}

TEST_F(ProcessApi, DefaultNamesFollowPythonsIdentities) {
    mp::Process a([] {}), b([] {});
    const int n = std::stoi(a.name().substr(8));
    EXPECT_EQ(a.name(), "Process-" + std::to_string(n));
    EXPECT_EQ(b.name(), "Process-" + std::to_string(n + 1));
    mp::Process parent([] {});
    const std::string parent_name = parent.name();
    // In the child, current_process() is the child, and its own children are "<identity>:1", ":2".
    std::string nested = in_child([] {
        mp::Process g1([] {}), g2([] {});
        return mp::current_process().name() + " " + g1.name() + " " + g2.name();
    });
    const std::string child_name = nested.substr(0, nested.find(' '));
    EXPECT_EQ(nested, child_name + " " + child_name + ":1 " + child_name + ":2");
    a.set_name("renamed");
    EXPECT_EQ(a.name(), "renamed");
}

TEST_F(ProcessApi, CurrentAndParentProcess) {
    auto me = mp::current_process();
    EXPECT_EQ(me.name(), "MainProcess");
    EXPECT_EQ(me.pid(), ::getpid());
    EXPECT_FALSE(me.daemon());
    EXPECT_TRUE(me.is_alive());
    EXPECT_FALSE(mp::parent_process().has_value());
    const pid_t main_pid = ::getpid();
    std::string seen = in_child(
        [](pid_t expected_parent) {
            auto parent = mp::parent_process();
            if (!parent) return std::string("no parent");
            return parent->name() + " " + std::to_string(parent->pid() == expected_parent) + " " +
                   std::to_string(parent->is_alive()) + " " + std::to_string(mp::current_process().pid() == ::getpid());
        },
        main_pid);
    EXPECT_EQ(seen, "MainProcess 1 1 1");
}

TEST_F(ProcessApi, GrandchildSeesItsParentDie) {
    auto [r, w] = mp::Pipe(false);
    mp::Process child(
        [](mp::Connection& out) {
            mp::Process grandchild(
                [](mp::Connection& to_test) {
                    auto parent = mp::parent_process();
                    to_test.send(parent->is_alive());
                    parent->join(30s);  // returns once the parent has died
                    to_test.send(parent->is_alive());
                },
                std::move(out));
            grandchild.start();
            std::this_thread::sleep_for(60s);  // terminated by the test
        },
        std::move(w));
    child.start();
    EXPECT_TRUE(r.recv<bool>());
    child.terminate();
    child.join();
    EXPECT_FALSE(r.recv<bool>());
}

TEST_F(ProcessApi, ExitCodes) {
    auto code_of = [](auto fn) {
        mp::Process p(fn);
        p.start();
        p.join();
        return *p.exitcode();
    };
    EXPECT_EQ(code_of([] {}), 0);
    EXPECT_EQ(code_of([] { std::exit(3); }), 3);
    EXPECT_EQ(code_of([] { std::_Exit(256 + 7); }), 7);  // truncated to 8 bits by the OS
    EXPECT_EQ(code_of([] { std::abort(); }), -SIGABRT);
    EXPECT_EQ(code_of([] {
                  ::signal(SIGSEGV, SIG_DFL);  // sanitizers install their own handler
                  ::raise(SIGSEGV);
              }),
              -SIGSEGV);
    EXPECT_EQ(code_of([] { throw 5; }), 1);
}

namespace {

[[gnu::noinline]] void abort_on_purpose() { std::abort(); }

// Starts a child that sends its stderr to `path`, then crashes (0: a bad address, 1: abort());
// returns its exit code and what it wrote.
std::pair<int, std::string> crash_in_child(int how) {
    const std::string path = "/tmp/polyproc-crash-" + std::to_string(::getpid()) + "-" + std::to_string(how);
    mp::Process p(
        [](std::string file, int kind) {
            const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            ::dup2(fd, STDERR_FILENO);
            if (kind == 0) write_to_a_bad_address(7);
            abort_on_purpose();
        },
        path, how);
    p.start();
    p.join();
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(path.c_str());
    return {p.exitcode().value_or(0), text};
}

}  // namespace

// Python's faulthandler, on in every child: the stack of the crashing thread, symbolized, then the
// death by the signal as without it.
TEST_F(ProcessApi, AChildThatCrashesWritesItsStackToStderrThenDiesByTheSignal) {
    const auto [segv_code, segv] = crash_in_child(0);
    EXPECT_EQ(segv_code, -SIGSEGV) << segv;
    EXPECT_NE(segv.find("Fatal error in process Process-"), std::string::npos) << segv;
    EXPECT_NE(segv.find("SIGSEGV (Segmentation fault) at address 0x10"), std::string::npos) << segv;
    EXPECT_NE(segv.find("Stack of the crashing thread (most recent call first):\n  #0 0x"), std::string::npos) << segv;
    EXPECT_NE(segv.find("#0 0x"), std::string::npos) << segv;
    EXPECT_NE(segv.find(" in write_to_a_bad_address("), std::string::npos) << segv;  // (parameters elided)

    const auto [abort_code, aborted] = crash_in_child(1);
    EXPECT_EQ(abort_code, -SIGABRT) << aborted;
    EXPECT_NE(aborted.find("SIGABRT (Aborted)"), std::string::npos) << aborted;
    EXPECT_NE(aborted.find("::abort_on_purpose("), std::string::npos) << aborted;
}

TEST_F(ProcessApi, TheCrashReportIsOffWithPOLYPROC_FAULTHANDLER_0) {
    if (mp::get_start_method() == "forkserver")
        GTEST_SKIP() << "a forkserver's children have the environment the server started with";
    ::setenv("POLYPROC_FAULTHANDLER", "0", 1);
    const auto [code, text] = crash_in_child(0);
    ::unsetenv("POLYPROC_FAULTHANDLER");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    EXPECT_EQ(code, -SIGSEGV);
#else  // the sanitizer's own handler reports the fault and exits (ASan 1, TSan 66)
    EXPECT_GT(code, 0);
#endif
    EXPECT_EQ(text.find("Fatal error"), std::string::npos) << text;
}

TEST_F(ProcessApi, ThrowingTargetPrintsTypeAndMessageAndExitsWithOne) {
    auto [r, w] = mp::Pipe(false);
    mp::Process p(
        [](mp::Connection& out) {
            ::dup2(out.fileno(), STDERR_FILENO);
            throw std::invalid_argument("bad input 42");
        },
        std::move(w));
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 1);
    EXPECT_EQ(slurp(r.fileno()), "Process " + p.name() + ":\nstd::invalid_argument: bad input 42\n");
}

TEST_F(ProcessApi, TerminateAndKillGiveMinusTheSignal) {
    mp::Process t([] { std::this_thread::sleep_for(60s); });
    mp::Process k([] { std::this_thread::sleep_for(60s); });
    t.start();
    k.start();
    EXPECT_TRUE(t.is_alive());
    EXPECT_FALSE(t.exitcode().has_value());
    t.terminate();
    k.kill();
    t.join();
    k.join();
    EXPECT_EQ(t.exitcode(), -SIGTERM);
    EXPECT_EQ(k.exitcode(), -SIGKILL);
    EXPECT_FALSE(t.is_alive());
    EXPECT_EQ(t.repr(), "<Process name='" + t.name() + "' pid=" + std::to_string(t.pid()) +
                            " parent=" + std::to_string(::getpid()) + " stopped exitcode=-SIGTERM>");
    t.terminate();  // after reaping: a no-op
    k.kill();
}

TEST_F(ProcessApi, JoinWithTimeoutReturnsWhileTheChildRuns) {
    mp::Process p([] { std::this_thread::sleep_for(60s); });
    p.start();
    p.join(50ms);
    EXPECT_TRUE(p.is_alive());
    p.join(0s);
    p.join(-1s);
    EXPECT_TRUE(p.is_alive());
    p.terminate();
    p.join(30s);
    EXPECT_FALSE(p.is_alive());
}

namespace {
volatile sig_atomic_t alarms_seen = 0;
void count_alarm(int) { alarms_seen = alarms_seen + 1; }
}  // namespace

TEST_F(ProcessApi, JoinRetriesOnEintr) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = count_alarm;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(::sigaction(SIGALRM, &sa, &old), 0);
    itimerval every{{0, 10000}, {0, 10000}};
    mp::Process p([] { std::this_thread::sleep_for(200ms); });
    p.start();
    ::setitimer(ITIMER_REAL, &every, nullptr);
    p.join();
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old, nullptr);
    EXPECT_GT(alarms_seen, 0);
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessApi, MisuseErrorsHavePythonsMessages) {
    mp::Process p([] {});
    EXPECT_THROW_WITH(p.join(), mp::ValueError, "can only join a started process");
    EXPECT_THROW_WITH((void)p.sentinel(), mp::ValueError, "process not started");
    EXPECT_THROW_WITH(p.terminate(), mp::ValueError, "process not started");
    EXPECT_FALSE(p.is_alive());
    p.start();
    EXPECT_THROW_WITH(p.start(), mp::ValueError, "cannot start a process twice");
    EXPECT_THROW_WITH(p.set_daemon(true), mp::ValueError, "process has already started");
    p.join();
}

namespace {
// Runs `body` in a forked child and returns what it sent back as a string: for checks on what a
// forked child inherited from its parent (a Process handle), which only fork can hand over.
std::string in_forked_child(const std::function<std::string()>& body) {
    auto [r, w] = mp::Pipe(false);
    mp::Process p([&] {
        std::string out;
        try {
            out = body();
        } catch (const std::exception& e) {
            out = std::string("exception: ") + e.what();
        }
        w.send(out);
    });
    p.start();
    w.close();
    std::string got = r.recv<std::string>();
    p.join();
    return got;
}
}  // namespace

TEST_F(ProcessApi, MisuseOfTheParentsHandlesInAForkedChildHasPythonsMessages) {
    POLYPROC_FORK_ONLY();  // the child uses the parent's Process objects, inherited by fork
    mp::Process unstarted([] {});
    EXPECT_EQ(in_forked_child([&] {
                  unstarted.start();
                  return std::string("started");
              }),
              "exception: can only start a process object created by current process");
    mp::Process started([] { std::this_thread::sleep_for(100ms); });
    started.start();
    EXPECT_EQ(in_forked_child([&] {
                  started.join();
                  return std::string("joined");
              }),
              "exception: can only join a child process");
    EXPECT_EQ(in_forked_child([&] { return std::to_string(started.is_alive()); }),
              "exception: can only test a child process");
    EXPECT_EQ(in_forked_child([&] { return std::to_string(started.exitcode().has_value()); }), "0");  // Python: None
    started.join();
}

TEST_F(ProcessApi, DaemonicProcessesMayNotHaveChildren) {
    auto [r, w] = mp::Pipe(false);
    mp::Process d(
        [](mp::Connection& out) {
            mp::Process child([] {});
            try {
                child.start();
                out.send(std::string("started"));
            } catch (const mp::ValueError& e) {
                out.send(std::string(e.what()));
            }
        },
        std::move(w));
    d.set_daemon(true);
    EXPECT_TRUE(d.daemon());
    d.start();
    EXPECT_EQ(r.recv<std::string>(), "daemonic processes are not allowed to have children");
    d.join();
}

TEST_F(ProcessApi, ADaemonMayDropItsOwnFlagAndThenHaveChildren) {
    auto [r, w] = mp::Pipe(false);
    mp::Process d(
        [](mp::Connection& out) {
            std::string parents = "set";
            try {
                mp::parent_process()->set_daemon(true);
            } catch (const mp::ValueError& e) {
                parents = e.what();
            }
            mp::current_process().set_daemon(false);  // Python: current_process().daemon = False
            mp::Process child([] {});
            child.start();
            child.join();
            out.send(std::to_string(mp::current_process().daemon()) + " " + std::to_string(*child.exitcode()) + " " +
                     parents);
        },
        std::move(w));
    d.set_daemon(true);
    d.start();
    EXPECT_EQ(r.recv<std::string>(), "0 0 can only set the daemon flag of the current process");
    d.join();
    EXPECT_EQ(d.exitcode(), 0);
}

TEST_F(ProcessApi, CloseReleasesAndForbidsFurtherUse) {
    mp::Process running([] { std::this_thread::sleep_for(60s); });
    running.start();
    EXPECT_THROW_WITH(running.close(), mp::ValueError,
                      "Cannot close a process while it is still running. You should first call join() or terminate().");
    running.kill();
    running.join();
    running.close();
    running.close();  // idempotent
    EXPECT_THROW_WITH(running.join(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH((void)running.is_alive(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH(running.terminate(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH(running.kill(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH((void)running.exitcode(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH((void)running.pid(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH((void)running.sentinel(), mp::ValueError, "process object is closed");
    EXPECT_THROW_WITH(running.start(), mp::ValueError, "process object is closed");
    EXPECT_FALSE(running.name().empty());  // name and daemon stay readable
    EXPECT_FALSE(running.daemon());
    EXPECT_EQ(running.repr(),
              "<Process name='" + running.name() + "' parent=" + std::to_string(::getpid()) + " closed>");
    mp::Process fresh([] {});
    fresh.set_daemon(true);
    EXPECT_EQ(fresh.repr(),
              "<Process name='" + fresh.name() + "' parent=" + std::to_string(::getpid()) + " initial daemon>");
    fresh.start();
    fresh.join();
    EXPECT_NE(fresh.repr().find(" stopped exitcode=0 daemon>"), std::string::npos) << fresh.repr();
}

TEST_F(ProcessApi, SentinelBecomesReadableWhenTheChildEnds) {
    mp::Process p([] { std::this_thread::sleep_for(50ms); });
    p.start();
    EXPECT_TRUE(mp::wait({p.sentinel()}, 0s).empty());
    EXPECT_EQ(mp::wait({p.sentinel()}, 30s).size(), 1u);
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessApi, ActiveChildrenListsRunningChildrenAndReapsFinishedOnes) {
    mp::Process quick([] {});
    mp::Process slow([] { std::this_thread::sleep_for(60s); });
    slow.set_daemon(true);
    quick.start();
    slow.start();
    ASSERT_TRUE(eventually([&] {
        auto kids = mp::active_children();
        return kids.size() == 1 && kids[0].pid() == slow.pid();
    }));
    // quick was reaped by active_children(): no zombie left.
    int status;
    EXPECT_EQ(::waitpid(quick.pid(), &status, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
    EXPECT_EQ(quick.exitcode(), 0);  // and its exit code was kept
    auto kids = mp::active_children();
    ASSERT_EQ(kids.size(), 1u);
    EXPECT_EQ(kids[0].name(), slow.name());
    EXPECT_TRUE(kids[0].daemon());
    slow.terminate();
    slow.join();
    EXPECT_TRUE(mp::active_children().empty());
}

TEST_F(ProcessApi, DroppedHandleLeavesNoZombie) {
    pid_t pid;
    {
        mp::Process p([] {});
        p.start();
        pid = p.pid();
    }
    ASSERT_TRUE(eventually([&] { return mp::active_children().empty(); }));
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST_F(ProcessApi, DaemonChildDiesWhenItsParentIsKilled) {
    // We become a subreaper so the orphaned grandchild is reparented to us and we can see it die
    // (not with a forkserver: below).
    const bool forkserver = mp::get_start_method() == "forkserver";
    if (!forkserver) {
        ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    }
    auto [r, w] = mp::Pipe(false);
    mp::Process parent(
        [](mp::Connection& out) {
            mp::Process daemon_child([] { std::this_thread::sleep_for(60s); });
            daemon_child.set_daemon(true);
            daemon_child.start();
            out.send(daemon_child.pid());
            std::this_thread::sleep_for(60s);
        },
        std::move(w));
    parent.start();
    const pid_t grandchild = r.recv<pid_t>();
    if (forkserver) {
        // The grandchild is the child of the parent's own forkserver: watch it through a pidfd.
        // It dies with that server, which ends with the parent. (Had we been a subreaper, both
        // would have been left to us as zombies.)
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, grandchild, 0));
        ASSERT_GE(pidfd, 0);
        parent.kill();
        parent.join();
        pollfd p{pidfd, POLLIN, 0};
        EXPECT_EQ(::poll(&p, 1, 60'000), 1) << "the daemonic grandchild outlived its parent";
        ::close(pidfd);
        return;
    }
    parent.kill();
    parent.join();
    int status = 0;
    ASSERT_EQ(::waitpid(grandchild, &status, 0), grandchild);  // reparented to us, then died
    EXPECT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_F(ProcessApi, ChildExitTerminatesDaemonsAndJoinsOthers) {
    auto [r, w] = mp::Pipe(false);
    mp::Process child(
        [](mp::Connection& out) {
            mp::Process daemon_child([] { std::this_thread::sleep_for(60s); });
            daemon_child.set_daemon(true);
            daemon_child.start();
            out.send(daemon_child.pid());
            // the worker takes the connection over (a Connection has one owner)
            mp::Process worker(
                [](mp::Connection& to_test) {
                    std::this_thread::sleep_for(100ms);
                    to_test.send(std::string("worker finished"));
                },
                std::move(out));
            worker.start();
            // returning without join: Python's exit handler terminates the daemon, joins the worker
        },
        std::move(w));
    child.start();
    const pid_t daemon_pid = r.recv<pid_t>();
    EXPECT_EQ(r.recv<std::string>(), "worker finished");
    child.join(30s);
    EXPECT_EQ(child.exitcode(), 0);
    EXPECT_FALSE(pid_exists(daemon_pid));
}

TEST_F(ProcessApi, BufferedOutputIsNotPrintedTwice) {
    auto [r, w] = mp::Pipe(false);
    mp::Process isolated(
        [](mp::Connection& out) {
            ::dup2(out.fileno(), STDOUT_FILENO);  // stdout is now a pipe: fully buffered
            std::printf("before fork;");
            mp::Process child([] { std::printf("child;"); });
            child.start();
            child.join();
            std::printf("after join;");
        },
        std::move(w));
    isolated.start();
    isolated.join();
    EXPECT_EQ(slurp(r.fileno()), "before fork;child;after join;");
}

TEST_F(ProcessApi, ChildStdinIsDevNull) {
    auto [r, w] = mp::Pipe(false);
    mp::Process p(
        [](mp::Connection& out) {
            char c;
            out.send(::read(STDIN_FILENO, &c, 1));
        },
        std::move(w));
    p.start();
    EXPECT_EQ(r.recv<ssize_t>(), 0);  // EOF at once, never the terminal
    p.join();
}

TEST_F(ProcessApi, CpuCountHonoursAffinity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
    EXPECT_GE(mp::cpu_count(), 1);
    EXPECT_LE(mp::cpu_count(), CPU_COUNT(&set));
    EXPECT_EQ(in_child([] {
                  cpu_set_t one;
                  CPU_ZERO(&one);
                  CPU_SET(0, &one);
                  ::sched_setaffinity(0, sizeof one, &one);
                  return std::to_string(mp::cpu_count());
              }),
              "1");
}

namespace {
bool write_file(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    const bool ok = std::fputs(text.c_str(), f) >= 0;
    return std::fclose(f) == 0 && ok;
}
}  // namespace

TEST_F(ProcessApi, CpuCountHonoursACgroupQuotaSetOnAnAncestor) {
    // A cgroup v1 "cpu" hierarchy: outer/ has a quota of half a CPU, outer/inner/ none. A child
    // moved into inner/ must see 1 CPU. Needs root and a writable cgroup v1 cpu controller.
    const std::string outer = "/sys/fs/cgroup/cpu/polyproc-test-" + std::to_string(::getpid());
    const std::string inner = outer + "/inner";
    if (::mkdir(outer.c_str(), 0755) != 0) GTEST_SKIP() << "cannot create a cgroup here: " << std::strerror(errno);
    struct Cleanup {
        std::string outer, inner;
        ~Cleanup() {
            ::rmdir(inner.c_str());
            ::rmdir(outer.c_str());
        }
    } cleanup{outer, inner};
    ASSERT_EQ(::mkdir(inner.c_str(), 0755), 0);
    ASSERT_TRUE(write_file(outer + "/cpu.cfs_period_us", "100000"));
    ASSERT_TRUE(write_file(outer + "/cpu.cfs_quota_us", "50000"));
    EXPECT_EQ(in_child(
                  [](const std::string& inner_dir) {
                      if (!write_file(inner_dir + "/cgroup.procs", std::to_string(::getpid())))
                          return std::string("move failed");
                      return std::to_string(mp::cpu_count());
                  },
                  inner),
              "1");
}

TEST_F(ProcessApi, MovedProcessKeepsItsChild) {
    mp::Process a([] { std::this_thread::sleep_for(50ms); });
    a.start();
    const pid_t pid = a.pid();
    mp::Process b = std::move(a);
    EXPECT_EQ(b.pid(), pid);
    b.join();
    EXPECT_EQ(b.exitcode(), 0);
}

TEST_F(ProcessApi, ManyProcesses) {
    std::vector<mp::Process> ps;
    for (int i = 0; i < 50; ++i) ps.emplace_back([](int n) { std::_Exit(n % 7); }, i);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    for (int i = 0; i < 50; ++i) EXPECT_EQ(ps[static_cast<std::size_t>(i)].exitcode(), i % 7);
    EXPECT_TRUE(mp::active_children().empty());
}

// ---- authkey --------------------------------------------------------------------------------------

// Restores the current process's key however a test ends (the tests share one process).
class AuthkeyRestorer {
public:
    AuthkeyRestorer() : saved_(mp::current_process().authkey()) {}
    ~AuthkeyRestorer() { mp::current_process().set_authkey(saved_); }

private:
    std::string saved_;
};

TEST_F(ProcessApi, TheMainProcessHasA32ByteAuthkeyThatChildrenInherit) {
    const std::string key = mp::current_process().authkey();
    EXPECT_EQ(key.size(), 32u);
    EXPECT_EQ(mp::current_process().authkey(), key);  // made once
    mp::Process p([] {});
    EXPECT_EQ(p.authkey(), key);  // a copy of the creating process's
    // In the child (and in its own children) current_process().authkey() is the same key.
    EXPECT_EQ(in_child([] {
                  mp::Process grandchild([] {});
                  return mp::current_process().authkey() + "|" + grandchild.authkey();
              }),
              key + "|" + key);
}

TEST_F(ProcessApi, AnAuthkeySetBeforeStartIsTheChildsAndSettingOursChangesLaterChildren) {
    AuthkeyRestorer restore;
    auto [r, w] = mp::Pipe(false);
    mp::Process p([](mp::Connection& out) { out.send(mp::current_process().authkey()); }, std::move(w));
    std::string odd_key("key\0with\0zeros", 14);  // bytes, not text
    p.set_authkey(odd_key);
    p.start();
    EXPECT_EQ(r.recv<std::string>(), odd_key);
    p.join();

    mp::current_process().set_authkey("the new key");
    mp::Process later([] {});
    EXPECT_EQ(later.authkey(), "the new key");
    EXPECT_EQ(in_child([] { return mp::current_process().authkey(); }), "the new key");
}

TEST_F(ProcessApi, AuthkeyMisuseIsAValueError) {
    mp::Process p([] {});
    EXPECT_EQ(message_of<mp::ValueError>([&] { p.set_authkey(""); }), "authkey must not be empty");
    EXPECT_EQ(message_of<mp::ValueError>([&] { mp::current_process().set_authkey(""); }), "authkey must not be empty");
    // A child listed while it runs carries its key, and cannot be given another.
    auto [r, w] = mp::Pipe(false);
    mp::Process waiting([](mp::Connection& in) { (void)in.recv<int>(); }, std::move(r));
    waiting.start();
    bool found = false;
    for (auto child : mp::active_children()) {
        if (child.pid() != waiting.pid()) continue;
        found = true;
        EXPECT_EQ(child.authkey(), waiting.authkey());
        EXPECT_EQ(message_of<mp::ValueError>([&] { child.set_authkey("x"); }),
                  "can only set the authkey of the current process");
    }
    EXPECT_TRUE(found);
    w.send(1);
    waiting.join();
    auto parent_of_child = in_child([] {
        try {
            mp::parent_process()->set_authkey("x");
        } catch (const mp::ValueError& e) {
            return std::string(e.what());
        }
        return std::string("(nothing thrown)");
    });
    EXPECT_EQ(parent_of_child, "can only set the authkey of the current process");
}
