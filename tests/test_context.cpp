// Start methods and contexts (context.hpp): Python's TestStartMethod, TestCloseFds and the
// forkserver restart tests, plus what polyproc adds (handles arriving working in spawn and
// forkserver children, start-time errors for what cannot travel, the fork-in-threads warning).
#include <atomic>
#include <chrono>
#include <csignal>
#include <dirent.h>
#include <dlfcn.h>
#include <fstream>
#include <functional>
#include <optional>
#include <sys/wait.h>
#include <thread>
#include <utility>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

// Runs `body` with the global start method set to `method`, restoring the one before.
template <class Body>
void with_global_method(const std::string& method, Body body) {
    const std::string before = mp::get_start_method();
    mp::set_start_method(method, true);
    try {
        body();
    } catch (...) {
        mp::set_start_method(before, true);
        throw;
    }
    mp::set_start_method(before, true);
}

}  // namespace

TEST(Context, AllStartMethods) {
    EXPECT_EQ(mp::get_all_start_methods(), (std::vector<std::string>{"fork", "spawn", "forkserver"}));
}

TEST(Context, SetAndGetFollowPython) {
    const std::string before = mp::get_start_method();  // fixes the default, as Python's does
    EXPECT_EQ(mp::get_start_method(true), before);
    EXPECT_EQ(message_of<std::runtime_error>([] { mp::set_start_method("spawn"); }), "context has already been set");
    EXPECT_EQ(message_of<mp::ValueError>([] { mp::set_start_method("bogus", true); }),
              "cannot find context for 'bogus'");
    mp::set_start_method(std::nullopt, true);
    EXPECT_EQ(mp::get_start_method(true), std::nullopt);
    mp::set_start_method("forkserver");  // unset: allowed without force
    EXPECT_EQ(mp::get_start_method(), "forkserver");
    mp::set_start_method(std::nullopt, true);
    mp::set_start_method(std::nullopt);  // Python: without force, None fixes the default
    EXPECT_EQ(mp::get_start_method(true), std::optional<std::string>(before));
    EXPECT_EQ(message_of<std::runtime_error>([] { mp::set_start_method(std::nullopt); }),
              "context has already been set");
    mp::set_start_method(before, true);
    EXPECT_EQ(mp::get_start_method(), before);
}

TEST(Context, ConcreteContexts) {
    for (const std::string m : {"fork", "spawn", "forkserver"}) {
        auto ctx = mp::get_context(m);
        EXPECT_EQ(ctx.get_start_method(), m);
        EXPECT_EQ(ctx.get_context().get_start_method(), m);
        EXPECT_EQ(message_of<mp::ValueError>([&] { ctx.set_start_method("fork"); }),
                  "cannot set start method of concrete context");
        EXPECT_EQ(message_of<mp::ValueError>([&] { ctx.set_start_method(std::nullopt); }),
                  "cannot set start method of concrete context");
    }
    EXPECT_EQ(message_of<mp::ValueError>([] { mp::get_context("bogus"); }), "cannot find context for 'bogus'");
    EXPECT_EQ(mp::get_context().get_start_method(), mp::get_start_method());
}

namespace {
void report_method(mp::Queue<std::string> q) {
    q.put(mp::get_start_method() + " " + mp::current_process().name() + " " +
          std::to_string(mp::parent_process().has_value() && mp::parent_process()->is_alive()));
}
void report_method_from_grandchild(mp::Queue<std::string> q) {
    mp::Process p(&report_method, q);  // the child's own default: the method that started it
    p.start();
    p.join();
}
}  // namespace

class ContextProcess : public ProcessTest {};

TEST_F(ContextProcess, ChildReportsTheMethodThatStartedIt) {
    for (const std::string m : {"fork", "spawn", "forkserver"}) {
        mp::Queue<std::string> q;
        auto p = mp::get_context(m).Process(&report_method, q);
        p.set_name("Child-" + m);
        p.start();
        EXPECT_EQ(q.get(true, 60s), m + " Child-" + m + " 1");
        p.join(60s);
        EXPECT_EQ(p.exitcode(), 0);
        // Python's test_nested_startmethod: a child of the child reuses the Queue argument.
        auto p2 = mp::get_context(m).Process(&report_method_from_grandchild, q);
        p2.start();
        EXPECT_EQ(q.get(true, 60s).substr(0, m.size()), m);
        p2.join(60s);
        EXPECT_EQ(p2.exitcode(), 0);
    }
}

namespace {
struct Handles {
    mp::Queue<int> queue;
    mp::SimpleQueue<int> simple;
    mp::JoinableQueue<int> joinable;
    mp::Lock lock;
    mp::RLock rlock;
    mp::Semaphore semaphore{0};
    mp::BoundedSemaphore bounded{2};
    mp::Condition condition;
    mp::Event event;
    mp::Barrier barrier{2};
    mp::Value<int> value{5};
    mp::RawValue<double> raw_value{1.5};
    mp::Array<int> array{1, 2, 3};
    mp::RawArray<char> raw_array{std::vector<char>{'a', 'b', 'c', '\0'}};
    mp::SharedMemory shm{std::nullopt, true, 64};
};

void use_every_handle(mp::Queue<int> queue, mp::SimpleQueue<int> simple, mp::JoinableQueue<int> joinable, mp::Lock lock,
                      mp::RLock rlock, mp::Semaphore semaphore, mp::BoundedSemaphore bounded, mp::Condition condition,
                      mp::Event event, mp::Barrier barrier, mp::Value<int> value, mp::RawValue<double> raw_value,
                      mp::Array<int> array, mp::RawArray<char> raw_array, mp::SharedMemory shm, mp::Connection conn,
                      std::string text, std::vector<int> numbers) {
    queue.put(simple.get() + 1);            // 41 -> 42
    queue.put(joinable.get() * 2);          // 7 -> 14
    joinable.task_done();
    {
        std::lock_guard g(lock);            // the parent released it
        std::lock_guard r(rlock);
        std::lock_guard r2(rlock);
    }
    bounded.acquire();
    semaphore.release();
    value.set_value(value.value() * 10);    // 50
    raw_value.set_value(raw_value.value() + 1);
    array[2] = 30;
    raw_array.set_value("xyz");
    shm.buf()[0] = std::byte{0x5a};
    conn.send(text + " " + std::to_string(numbers.size()));
    {
        std::unique_lock g(condition);
        condition.notify_all();
    }
    event.set();
    barrier.wait(60s);
}
}  // namespace

TEST_F(ContextProcess, EveryHandleArrivesWorking) {
    Handles h;
    struct Unlink {
        mp::SharedMemory& shm;
        ~Unlink() {
            try {
                shm.unlink();
            } catch (...) {
            }
        }
    } unlink{h.shm};
    auto [parent_end, child_end] = mp::Pipe();
    h.simple.put(41);
    h.joinable.put(7);
    std::unique_lock cond_lock(h.condition);  // held until we wait, so the notify cannot come first
    mp::Process p(&use_every_handle, h.queue, h.simple, h.joinable, h.lock, h.rlock, h.semaphore, h.bounded,
                  h.condition, h.event, h.barrier, h.value, h.raw_value, h.array, h.raw_array,
                  mp::SharedMemory(h.shm.name()), std::move(child_end), std::string("hello"),
                  std::vector<int>{1, 2, 3});
    p.start();
    EXPECT_TRUE(h.condition.wait(60s));
    cond_lock.unlock();
    EXPECT_EQ(h.queue.get(true, 60s), 42);
    EXPECT_EQ(h.queue.get(true, 60s), 14);
    EXPECT_TRUE(h.joinable.join(60s));  // the child's task_done reached our counter
    EXPECT_EQ(parent_end.recv<std::string>(), "hello 3");
    EXPECT_TRUE(h.semaphore.acquire(true, 60s));
    EXPECT_TRUE(h.event.wait(60s));
    EXPECT_EQ(h.barrier.wait(60s) >= 0, true);
    p.join(60s);
    ASSERT_EQ(p.exitcode(), 0);
    EXPECT_EQ(h.bounded.get_value(), 1);
    EXPECT_EQ(h.value.value(), 50);
    EXPECT_EQ(h.raw_value.value(), 2.5);
    EXPECT_EQ(h.array.to_vector(), (std::vector<int>{1, 2, 30}));
    EXPECT_EQ(h.raw_array.value(), "xyz");
    EXPECT_EQ(h.shm.buf()[0], std::byte{0x5a});
    EXPECT_TRUE(h.lock.acquire(false));  // nobody holds it
}

namespace {
void exit_with(int code) { std::_Exit(code); }
void send_through(mp::Connection& conn, const std::string& text) { conn.send(text); }
}  // namespace

namespace {
void put_text(mp::Queue<std::string> queue, const char* text, std::string more) { queue.put(text + (" " + more)); }
}  // namespace

TEST_F(ContextProcess, CStringArgumentsTravelAsStrings) {
    // Python passes str; a string literal reaches a fresh child as a std::string whose c_str()
    // the target gets (a fork child could use the parent's pointer).
    mp::Queue<std::string> q;
    mp::Process p(&put_text, q, "a literal", "and another");
    p.start();
    EXPECT_EQ(q.get(true, 60s), "a literal and another");
    p.join(60s);
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ContextProcess, AHandleByReferenceArrivesAsTheChildsOwnDuplicate) {
    // std::ref(conn): a fork child uses the parent's object; a fresh child gets a duplicate of the
    // descriptor (Python's pickling), and the parent's handle stays open either way.
    auto [reader, writer] = mp::Pipe(false);
    mp::Process p(&send_through, std::ref(writer), std::string("by reference"));
    p.start();
    EXPECT_EQ(reader.recv<std::string>(), "by reference");
    p.join(60s);
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_FALSE(writer.closed());
    writer.send(std::string("still ours"));
    EXPECT_EQ(reader.recv<std::string>(), "still ours");
    static_assert(!mp::Serializable<std::reference_wrapper<int>>, "a reference is an address of this process");
}

TEST_F(ContextProcess, WhatCannotTravelIsAStartTimeErrorUnderSpawnAndForkserver) {
    if (mp::get_start_method() == "fork") GTEST_SKIP() << "about spawn and forkserver";
    int captured = 3;
    mp::Process with_captures([captured] { std::_Exit(captured); });
    EXPECT_NE(
        message_of<mp::ValueError>([&] { with_captures.start(); }).find("only a function or a lambda without captures"),
        std::string::npos);
    mp::Process vector_of_locks([](std::vector<mp::Lock>) {}, std::vector<mp::Lock>(1));  // compiles; refused
    EXPECT_NE(message_of<mp::ValueError>([&] { vector_of_locks.start(); }).find("std::vector<polyproc::Lock>"),
              std::string::npos);
    mp::Process bad_argument(&exit_with, 1);
    mp::Process unsendable([](std::function<void()>) {}, std::function<void()>([] {}));
    EXPECT_NE(message_of<mp::ValueError>([&] { unsendable.start(); }).find("std::function"), std::string::npos);
    mp::Barrier with_action(2, [] {});
    mp::Process barrier_child([](mp::Barrier) {}, with_action);
    EXPECT_NE(message_of<mp::ValueError>([&] { barrier_child.start(); }).find("Barrier with an action"),
              std::string::npos);
    struct Sub : mp::Process {
        void run() override {}
    } sub;
    EXPECT_NE(message_of<mp::ValueError>([&] { sub.start(); }).find("subclass"), std::string::npos);
    EXPECT_TRUE(mp::active_children().empty());  // nothing was started
    bad_argument.start();                         // and a valid one still starts
    bad_argument.join(60s);
    EXPECT_EQ(bad_argument.exitcode(), 1);
}

TEST_F(ContextProcess, FunctionsOfSharedLibrariesTravel) {
    // ::abort lives in libc: the child finds it through the startup library list, not an address.
    auto p = mp::get_context().Process(&::abort);
    p.start();
    p.join(60s);
    EXPECT_EQ(p.exitcode(), -SIGABRT);
}

TEST_F(ContextProcess, FunctionsOfLibrariesLoadedLaterTravel) {
    // A library dlopen()ed after start: a fresh child loads it too, then finds the function by its
    // position in that library, or by name when POLYPROC_REGISTER registered it.
    void* plugin = ::dlopen(POLYPROC_TEST_PLUGIN, RTLD_NOW);
    ASSERT_NE(plugin, nullptr) << ::dlerror();
    auto exit_with_7 = reinterpret_cast<void (*)()>(::dlsym(plugin, "plugin_exit_with_7"));
    auto square = reinterpret_cast<int (*)(int)>(::dlsym(plugin, "plugin_square"));
    auto cube = reinterpret_cast<int (*(*)())(int)>(::dlsym(plugin, "plugin_cube"))();
    ASSERT_TRUE(exit_with_7 && square && cube);
    mp::Process p(exit_with_7);
    p.start();
    p.join(60s);
    EXPECT_EQ(p.exitcode(), 7);
    mp::Pool pool(1);  // its worker starts after the dlopen, so it loads the library too
    EXPECT_EQ(pool.apply(square, 5), 25);
    EXPECT_EQ(pool.apply(cube, 3), 27);  // registered: travels by name
    pool.close();
    pool.join();
}

TEST(CodeRef, CodeOfNoLoadedFileIsRefusedWithAClearError) {
    // A heap address is not code of any file: refused before anything is sent.
    auto heap = std::make_unique<int>(0);
    EXPECT_NE(message_of<mp::ValueError>([&] {
                  mp::detail::code_offset(reinterpret_cast<std::uintptr_t>(heap.get()));
              }).find("not code of a file the program loaded"),
              std::string::npos);
    const auto ref = mp::detail::code_offset(reinterpret_cast<std::uintptr_t>(&::abort));
    EXPECT_EQ(mp::detail::code_address(ref), reinterpret_cast<std::uintptr_t>(&::abort));
    EXPECT_THROW(mp::detail::code_address((std::uint64_t(1) << 62) | (std::uint64_t(9999) << 48)), mp::ProcessError);
}

namespace {
void report_fd_valid(mp::Queue<int> q, int fd) { q.put(::fcntl(fd, F_GETFD) != -1 ? 1 : 0); }
}  // namespace

TEST_F(ContextProcess, OnlyListedDescriptorsReachAFreshChild) {
    // Python's TestCloseFds.test_closefd: an inheritable descriptor is valid in a fork child only.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);  // without O_CLOEXEC, on purpose
    const int high = ::fcntl(fds[0], F_DUPFD, 200);
    mp::Queue<int> q;
    mp::Process p(&report_fd_valid, q, high);
    p.start();
    EXPECT_EQ(q.get(true, 60s), mp::get_start_method() == "fork" ? 1 : 0);
    p.join(60s);
    EXPECT_EQ(p.exitcode(), 0);
    ::close(fds[0]);
    ::close(fds[1]);
    ::close(high);
}

namespace {
// Waits until `pid` is dead (gone or a zombie); a process still running after 30 s is killed.
bool ends_by_itself(pid_t pid) {
    for (int i = 0; i < 3000; ++i) {
        if (!running(pid)) return true;
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    return false;
}

// Our children whose command line says they are the forkserver.
std::vector<pid_t> forkservers() {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        const pid_t pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        const auto st = proc_stat(pid);
        if (!st || st->ppid != ::getpid() || st->state == 'Z') continue;
        std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
        std::string args((std::istreambuf_iterator<char>(cmd)), {});
        if (args.find("--polyproc-child") != std::string::npos && args.find("forkserver") != std::string::npos)
            out.push_back(pid);
    }
    if (d) ::closedir(d);
    return out;
}
void wait_for_event(mp::Event e) { e.wait(); }
}  // namespace

TEST_F(ContextProcess, AKilledForkserverIsReplaced) {
    // Python's test_forkserver_sigkill: children of the dead server report 255; the next start
    // starts a new server.
    auto ctx = mp::get_context("forkserver");
    mp::Event never;
    auto p = ctx.Process(&wait_for_event, never);
    p.set_daemon(true);  // dies with its server
    p.start();
    // Stopped before it can ask to die with the server (most runs), it must still end once it
    // finds the server gone when it continues.
    ::kill(p.pid(), SIGSTOP);
    struct Resume {  // even if an assertion ends the test early (SIGCONT is harmless otherwise)
        pid_t pid;
        ~Resume() { ::kill(pid, SIGCONT); }
    } resume{p.pid()};
    auto servers = forkservers();
    ASSERT_EQ(servers.size(), 1u);
    ::kill(servers[0], SIGKILL);
    for (int i = 0; i < 30000 && running(servers[0]); ++i)  // until the server is dead (a zombie)
        std::this_thread::sleep_for(1ms);
    ::kill(p.pid(), SIGCONT);
    p.join(60s);
    EXPECT_EQ(p.exitcode(), 255);
    EXPECT_TRUE(ends_by_itself(p.pid())) << "a daemonic child outlived its forkserver";
    auto q = ctx.Process(&exit_with, 4);
    q.start();
    q.join(60s);
    EXPECT_EQ(q.exitcode(), 4);
    auto now = forkservers();
    ASSERT_EQ(now.size(), 1u);
    EXPECT_NE(now[0], servers[0]);
    ::waitpid(servers[0], nullptr, WNOHANG);
}

namespace {
// Runs in a fork child with stderr on a pipe: forks twice from a process with a pool's helper
// threads (mode 0), and a thread of its own (1), or forks from a pool callback (2) while this
// thread waits for the result: the result thread is a helper, but a callback is user code.
void fork_from_threads(int err_fd, int mode) {
    ::dup2(err_fd, STDERR_FILENO);
    std::atomic<bool> stop{false};
    std::thread t;
    if (mode == 1)
        t = std::thread([&] {
            while (!stop) std::this_thread::sleep_for(1ms);
        });
    mp::Pool pool(mp::PoolOptions{.processes = 1, .start_method = "fork"});
    EXPECT_EQ(pool.apply([](int x) { return x + 1; }, 1), 2);
    for (int i = 0; i < 2; ++i) {
        auto p = mp::get_context("fork").Process(&exit_with, 0);
        p.start();
        p.join();
    }
    if (mode == 2) {
        auto r = pool.apply_async(
            mp::Callbacks{.callback =
                              [](int) {
                                  auto p = mp::get_context("fork").Process(&exit_with, 0);
                                  p.start();
                                  p.join();
                              }},
            [](int x) { return x; }, 1);
        // Not r.get(): a thread waiting in get() may run the callback itself; here the result
        // thread must, while this thread goes on.
        for (int i = 0; i < 60000 && !r.ready(); ++i) std::this_thread::sleep_for(1ms);
        EXPECT_EQ(r.get(60s), 1);
    }
    pool.close();
    pool.join();
    stop = true;
    if (t.joinable()) t.join();
}
}  // namespace

TEST_F(ContextProcess, ForkingAThreadedParentWarnsOnceButPoolHelpersDoNotCountUnlessInACallback) {
#if defined(__SANITIZE_THREAD__)
    // In a fork child ThreadSanitizer runs threads of its own (seen: two besides main and the
    // pool's two helpers), which the warning's count of /proc/self/stat cannot tell apart.
    GTEST_SKIP() << "ThreadSanitizer adds threads of its own in fork children";
#endif
    for (int mode : {0, 1, 2}) {
        const bool user_thread = mode != 0;
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        auto p = mp::get_context("fork").Process(&fork_from_threads, fds[1], mode);
        p.start();
        ::close(fds[1]);
        std::string err;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<std::size_t>(n));
        ::close(fds[0]);
        p.join(120s);
        ASSERT_EQ(p.exitcode(), 0) << err;
        std::size_t count = 0;
        for (auto at = err.find("is multi-threaded"); at != std::string::npos;
             at = err.find("is multi-threaded", at + 1))
            ++count;
        EXPECT_EQ(count, user_thread ? 1u : 0u) << err;
        if (user_thread) {
            EXPECT_NE(err.find("'spawn' or 'forkserver'"), std::string::npos) << err;
        }
    }
}
