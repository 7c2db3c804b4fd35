// shared_memory.hpp: SharedMemory and the resource tracker (docs/shared_memory.md).
//
// The tracker tests need a program tree of their own (a fork child of this test process would
// share this process's tracker, which only acts when the whole test binary is gone), so they
// re-execute this binary with POLYPROC_SHM_TEST_HELPER set: the helper below runs instead of the
// tests, as a separate program, in its own process group so that the test can SIGKILL the tree.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

constexpr const char* kHelperEnv = "POLYPROC_SHM_TEST_HELPER";
constexpr const char* kArgEnv = "POLYPROC_SHM_TEST_ARG";

bool shm_exists(const std::string& name) {
    struct stat st {};
    return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

// Unlinks the test's segments whatever happens in the test body.
struct Unlinker {
    std::vector<std::string> names;
    Unlinker() = default;
    explicit Unlinker(std::string name) { names.push_back(std::move(name)); }
    Unlinker(const Unlinker&) = delete;
    Unlinker& operator=(const Unlinker&) = delete;
    void add(std::string name) { names.push_back(std::move(name)); }
    ~Unlinker() {
        for (const auto& n : names) ::shm_unlink(("/" + n).c_str());
    }
};

// A fresh, unique name for segments created with an explicit name.
std::string test_name(const std::string& what) {
    static int counter = 0;
    return "polyproc_test_" + std::to_string(::getpid()) + "_" + what + "_" + std::to_string(++counter);
}

template <class F>
std::string system_error_of(F&& f, std::error_code* code = nullptr) {
    try {
        f();
    } catch (const std::system_error& e) {
        if (code) *code = e.code();
        return e.what();
    }
    return "nothing thrown";
}

std::string str(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }
void put(std::span<std::byte> b, std::size_t offset, std::string_view s) {
    std::memcpy(b.data() + offset, s.data(), s.size());
}

int count_fds() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

bool mapped(const std::string& name) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.size() >= name.size() + 10 && line.ends_with("/dev/shm/" + name)) return true;
    return false;
}

// Reads from fd until EOF or the deadline; `eof` says which.
std::string read_until_eof(int fd, std::chrono::milliseconds limit, bool* eof = nullptr) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (eof) *eof = true;
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    if (eof) *eof = false;
    return out;
}

std::string read_line(int fd, std::chrono::milliseconds limit = 20s) {
    std::string line;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char c;
        if (::read(fd, &c, 1) != 1 || c == '\n') break;
        line += c;
    }
    return line;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// ---------------------------------------------------------------------------------------------
// The helper program (this binary, re-executed by the tracker tests).

void say(const std::string& s) { (void)!::write(STDOUT_FILENO, s.data(), s.size()); }

// Stays alive until SIGKILLed, but not forever if the test that should kill it failed.
[[noreturn]] void linger() {
    for (int i = 0; i < 600; ++i) ::usleep(100'000);
    ::_exit(3);
}

// A tree: this process creates a tracked, an untracked and an unlinked segment, attaches to one
// the test created, and starts a child that holds the tracker's pipe too.
[[noreturn]] void helper_tree() {
    // Mapped before the tracker is forked: it must not keep them mapped.
    mp::SharedMemory attached(std::getenv(kArgEnv));  // attaching must not register it
    mp::SharedMemory untracked(std::nullopt, true, 4096, false);
    mp::SharedMemory tracked(std::nullopt, true, 4096);
    mp::SharedMemory unlinked(std::nullopt, true, 4096);
    unlinked.unlink();
    mp::Process child([] { linger(); });
    child.start();
    say(tracked.name() + " " + untracked.name() + " " + unlinked.name() + " " + std::to_string(child.pid()) + " " +
        std::to_string(mp::detail::tracker_pid()) + "\n");
    linger();
}

// The tracker is SIGKILLed; the next registration relaunches one.
[[noreturn]] void helper_relaunch() {
    mp::SharedMemory lost(std::nullopt, true, 4096);
    const pid_t first = mp::detail::tracker_pid();
    ::kill(first, SIGKILL);
    // Until it has exited its end of the pipe may still be open. Wait without reaping it (the
    // library reaps the tracker it forked); /proc's 'Z' is not enough: under TSan the tracker has a
    // second thread, which keeps the descriptors after the main thread has become a zombie.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(first), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    mp::SharedMemory kept(std::nullopt, true, 4096);
    say(lost.name() + " " + kept.name() + " " + std::to_string(first) + " " +
        std::to_string(mp::detail::tracker_pid()) + "\n");
    linger();
}

// Several processes of one tree register long names at the same time.
[[noreturn]] void helper_many() {
    const std::string tag = std::getenv(kArgEnv);
    mp::detail::tracker_ensure_running();  // else each child, forked without one, starts its own
    mp::Queue<int> ready;
    std::vector<mp::Process> children;
    for (int c = 0; c < 4; ++c) {
        children.emplace_back(
            [](const std::string& name_tag, int child, mp::Queue<int> ready_queue) {
                std::vector<mp::SharedMemory> segments;
                for (int i = 0; i < 25; ++i) {
                    std::string name = name_tag + "_" + std::to_string(child) + "_" + std::to_string(i) + "_";
                    name.resize(200, 'x');  // long lines: concurrent writes must still not interleave
                    segments.emplace_back(name, true, 64);
                }
                ready_queue.put(1);
                linger();
            },
            tag, c, ready);
    }
    for (auto& c : children) c.start();
    for (int c = 0; c < 4; ++c) (void)ready.get();
    say("ready\n");
    linger();
}

// Everything is unlinked and the program exits normally: the tracker must stay silent.
[[noreturn]] void helper_clean() {
    mp::SharedMemory a(std::nullopt, true, 4096);
    mp::SharedMemory b(test_name("clean"), true, 100);
    const std::string b_name = b.name();
    {
        // unlinked by another process of the tree (the handle goes to the child)
        mp::Process child([](mp::SharedMemory& segment) { segment.unlink(); }, std::move(b));
        child.start();
        child.join();
    }
    a.unlink();
    say(a.name() + " " + b_name + "\n");
    ::_exit(0);
}

// Runs before main() in a re-executed copy of this binary, instead of the tests.
[[maybe_unused]] const bool helper_done = [] {
    const char* mode = std::getenv(kHelperEnv);
    if (!mode) return false;
    ::unsetenv(kHelperEnv);
    // The helper is a program of its own that starts processes before main(): it bootstraps
    // polyproc here, as its main() would (spawn and forkserver need it).
    static char arg0[] = "test_shared_memory";
    static char* argv[] = {arg0, nullptr};
    mp::init(1, argv);
    try {
        if (std::string_view(mode) == "tree") helper_tree();
        if (std::string_view(mode) == "relaunch") helper_relaunch();
        if (std::string_view(mode) == "many") helper_many();
        if (std::string_view(mode) == "clean") helper_clean();
    } catch (const std::exception& e) {
        std::cerr << "helper " << mode << ": " << e.what() << std::endl;
    }
    ::_exit(2);
}();

// Starts the helper as a new process group, its stdout and stderr on pipes.
struct Helper {
    mp::Connection out, err;
    mp::Process process;
    pid_t pgid = 0;

    Helper(const std::string& mode, const std::string& arg = "") {
        auto [out_r, out_w] = mp::Pipe(false);
        auto [err_r, err_w] = mp::Pipe(false);
        out = std::move(out_r);
        err = std::move(err_r);
        process = mp::Process(
            [](mp::Connection& stdout_w, mp::Connection& stderr_w, const std::string& helper_mode,
               const std::string& helper_arg) {
                ::setpgid(0, 0);
                ::dup2(stdout_w.fileno(), STDOUT_FILENO);
                ::dup2(stderr_w.fileno(), STDERR_FILENO);
                ::setenv(kHelperEnv, helper_mode.c_str(), 1);
                ::setenv(kArgEnv, helper_arg.c_str(), 1);
                ::execl("/proc/self/exe", "test_shared_memory", static_cast<char*>(nullptr));
                std::_Exit(127);
            },
            std::move(out_w), std::move(err_w), mode, arg);
        process.start();
        pgid = process.pid();
    }
    Helper(const Helper&) = delete;
    Helper& operator=(const Helper&) = delete;
    ~Helper() { kill_tree(); }
    // SIGKILL for every process of the helper's group (the tracker has left it: setsid).
    void kill_tree() {
        if (pgid) ::kill(-pgid, SIGKILL);
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------

class SharedMemoryApi : public ProcessTest {};

TEST_F(SharedMemoryApi, ChildAttachesByNameAndWritesAreSharedBothWays) {
    mp::SharedMemory shm(std::nullopt, true, 1 << 16);
    Unlinker guard(shm.name());
    for (std::size_t i = 0; i < 256; ++i) shm.buf()[i] = std::byte(i * 7 & 0xff);
    auto [a, b] = mp::Pipe();
    mp::Process p(
        [](mp::Connection& conn, const std::string& name) {
            mp::SharedMemory other(name);
            bool ok = other.size() == (1u << 16) && other.name() == name;
            for (std::size_t i = 0; i < 256; ++i) ok = ok && other.buf()[i] == std::byte(i * 7 & 0xff);
            put(other.buf(), 1000, "written by the child");
            conn.send(ok);
            (void)conn.recv<int>();
            conn.send(str(other.buf().subspan(2000, 21)));
        },
        std::move(b), shm.name());
    p.start();
    EXPECT_TRUE(a.recv<bool>());
    EXPECT_EQ(str(shm.buf().subspan(1000, 20)), "written by the child");
    put(shm.buf(), 2000, "written by the parent");
    a.send(1);
    EXPECT_EQ(a.recv<std::string>(), "written by the parent");
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(SharedMemoryApi, ForkChildInheritsTheMapping) {
    POLYPROC_FORK_ONLY();  // the child uses the parent's handle, inherited by fork
    mp::SharedMemory shm(std::nullopt, true, 100);
    Unlinker guard(shm.name());
    mp::Process p([&] { put(shm.buf(), 0, "inherited"); });
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(str(shm.buf().first(9)), "inherited");
}

TEST_F(SharedMemoryApi, AutomaticNamesArePsmAndEightHexDigits) {
    const std::regex pattern("psm_[0-9a-f]{8}");
    std::set<std::string> seen;
    Unlinker guard;
    for (int i = 0; i < 50; ++i) {
        mp::SharedMemory shm(std::nullopt, true, 10);
        guard.add(shm.name());
        EXPECT_TRUE(std::regex_match(shm.name(), pattern)) << shm.name();
        seen.insert(shm.name());
        struct stat st {};
        ASSERT_EQ(::stat(("/dev/shm/" + shm.name()).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        EXPECT_EQ(st.st_size, 10);
        EXPECT_EQ(shm.size(), 10u);
        EXPECT_EQ(shm.buf().size(), 10u);
        EXPECT_EQ(shm.repr(), "SharedMemory('" + shm.name() + "', size=10)");
        shm.unlink();
    }
    EXPECT_EQ(seen.size(), 50u);
    EXPECT_GT(mp::detail::tracker_pid(), 0);
}

TEST_F(SharedMemoryApi, ExplicitNameCollisionAndMissingName) {
    const std::string name = test_name("explicit");
    Unlinker guard(name);
    mp::SharedMemory shm(name, true, 64);
    EXPECT_EQ(shm.name(), name);
    EXPECT_TRUE(shm_exists(name));
    std::error_code code;
    EXPECT_EQ(system_error_of([&] { (void)mp::SharedMemory(name, true, 64); }, &code),
              "shm_open('/" + name + "'): File exists");
    EXPECT_EQ(code, std::errc::file_exists);
    const std::string missing = test_name("missing");
    EXPECT_EQ(system_error_of([&] { (void)mp::SharedMemory(missing); }, &code),
              "shm_open('/" + missing + "'): No such file or directory");
    EXPECT_EQ(code, std::errc::no_such_file_or_directory);
    EXPECT_FALSE(shm_exists(missing));
    // Invalid names are the OS's EINVAL, as in Python.
    (void)system_error_of([&] { (void)mp::SharedMemory(std::string(""), true, 10); }, &code);
    EXPECT_EQ(code, std::errc::invalid_argument);
    (void)system_error_of([&] { (void)mp::SharedMemory(std::string("a/b"), true, 10); }, &code);
    EXPECT_EQ(code, std::errc::invalid_argument);
}

TEST_F(SharedMemoryApi, PythonsValueErrors) {
    EXPECT_THROW_WITH((void)mp::SharedMemory(std::nullopt, true, 0), mp::ValueError,
                      "'size' must be a positive number different from zero");
    EXPECT_THROW_WITH((void)mp::SharedMemory(test_name("zero"), true, 0), mp::ValueError,
                      "'size' must be a positive number different from zero");
    EXPECT_THROW_WITH((void)mp::SharedMemory(), mp::ValueError, "'name' can only be None if create=True");
    EXPECT_THROW_WITH((void)mp::SharedMemory(std::nullopt, false, 100), mp::ValueError,
                      "'name' can only be None if create=True");
    EXPECT_THROW_WITH((void)mp::SharedMemory(std::string("psm\0x", 5), true, 10), mp::ValueError,
                      "embedded null character");
}

TEST_F(SharedMemoryApi, AttachUsesTheRealSizeAndIgnoresTheRequestedOne) {
    mp::SharedMemory shm(std::nullopt, true, 5000);
    Unlinker guard(shm.name());
    mp::SharedMemory small(shm.name(), false, 1);
    EXPECT_EQ(small.size(), 5000u);
    mp::SharedMemory big(shm.name(), false, 1 << 20);
    EXPECT_EQ(big.size(), 5000u);
    EXPECT_EQ(big.buf().size(), 5000u);
}

TEST_F(SharedMemoryApi, AttachingToAnEmptySegmentIsPythonsMmapError) {
    const std::string name = test_name("empty");
    Unlinker guard(name);
    const int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
    EXPECT_THROW_WITH((void)mp::SharedMemory(name), mp::ValueError, "cannot mmap an empty file");
    EXPECT_TRUE(shm_exists(name));  // not ours: attaching never unlinks
}

TEST_F(SharedMemoryApi, CloseIsIdempotentAndKeepsNameAndSize) {
    mp::SharedMemory shm(std::nullopt, true, 100);
    const std::string name = shm.name();
    Unlinker guard(name);
    EXPECT_FALSE(shm.closed());
    EXPECT_TRUE(mapped(name));
    shm.close();
    EXPECT_TRUE(shm.closed());
    EXPECT_FALSE(mapped(name));
    shm.close();
    EXPECT_THROW_WITH((void)shm.buf(), mp::ValueError, "operation forbidden on released memoryview object");
    EXPECT_EQ(shm.name(), name);
    EXPECT_EQ(shm.size(), 100u);
    EXPECT_TRUE(shm_exists(name));  // close() never unlinks
    shm.unlink();                   // works on a closed handle, as in Python
    EXPECT_FALSE(shm_exists(name));
}

TEST_F(SharedMemoryApi, UnlinkTwiceIsENOENTAndMappingsOutliveTheName) {
    mp::SharedMemory shm(std::nullopt, true, 100);
    Unlinker guard(shm.name());
    mp::SharedMemory other(shm.name());
    shm.unlink();
    EXPECT_FALSE(shm_exists(shm.name()));
    put(shm.buf(), 0, "still mapped");
    EXPECT_EQ(str(other.buf().first(12)), "still mapped");
    std::error_code code;
    EXPECT_EQ(system_error_of([&] { shm.unlink(); }, &code),
              "shm_unlink('/" + shm.name() + "'): No such file or directory");
    EXPECT_EQ(code, std::errc::no_such_file_or_directory);
    (void)system_error_of([&] { (void)mp::SharedMemory(shm.name()); }, &code);
    EXPECT_EQ(code, std::errc::no_such_file_or_directory);
}

TEST_F(SharedMemoryApi, DestructorClosesButNeverUnlinks) {
    std::string name;
    {
        mp::SharedMemory shm(std::nullopt, true, 100);
        name = shm.name();
        put(shm.buf(), 0, "kept");
    }
    Unlinker guard(name);
    EXPECT_FALSE(mapped(name));
    ASSERT_TRUE(shm_exists(name));
    mp::SharedMemory again(name);
    EXPECT_EQ(str(again.buf().first(4)), "kept");
    again.unlink();
}

TEST_F(SharedMemoryApi, MoveOnlyHandle) {
    static_assert(!std::is_copy_constructible_v<mp::SharedMemory>);
    static_assert(!std::is_copy_assignable_v<mp::SharedMemory>);
    static_assert(std::is_nothrow_move_constructible_v<mp::SharedMemory>);
    mp::SharedMemory a(std::nullopt, true, 100);
    const std::string name = a.name();
    Unlinker guard(name);
    mp::SharedMemory b = std::move(a);
    EXPECT_TRUE(a.closed());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_TRUE(a.name().empty());
    EXPECT_THROW((void)a.buf(), mp::ValueError);
    EXPECT_THROW(a.unlink(), mp::ValueError);
    EXPECT_EQ(b.name(), name);
    put(b.buf(), 0, "moved");
    mp::SharedMemory c(std::nullopt, true, 10);
    const std::string c_name = c.name();
    guard.add(c_name);
    c = std::move(b);  // c's old mapping is closed, not unlinked
    EXPECT_EQ(c.name(), name);
    EXPECT_EQ(str(c.buf().first(5)), "moved");
    EXPECT_FALSE(mapped(c_name));
    EXPECT_TRUE(shm_exists(c_name));
    std::vector<mp::SharedMemory> many;
    many.push_back(std::move(c));
    EXPECT_EQ(str(many[0].buf().first(5)), "moved");
}

TEST_F(SharedMemoryApi, NoDescriptorOrMappingLeaks) {
    {  // the tracker's pipe is opened once per process, by the first tracked creation
        mp::SharedMemory warm(std::nullopt, true, 64);
        warm.unlink();
    }
    const int before = count_fds();
    Unlinker guard;
    for (int i = 0; i < 20; ++i) {
        mp::SharedMemory a(std::nullopt, true, 4096);
        guard.add(a.name());
        mp::SharedMemory b(a.name());
        mp::SharedMemory c(std::nullopt, true, 64, false);
        guard.add(c.name());
        EXPECT_THROW((void)mp::SharedMemory(a.name(), true, 64), std::system_error);
        EXPECT_THROW((void)mp::SharedMemory(test_name("nothing")), std::system_error);
        EXPECT_THROW((void)mp::SharedMemory(std::nullopt, true, 0), mp::ValueError);
        b.close();
        a.unlink();
        c.unlink();
        EXPECT_EQ(count_fds(), before);  // open segments hold a mapping, not a descriptor
    }
    EXPECT_EQ(count_fds(), before);
}

// ---------------------------------------------------------------------------------------------
// Python interoperability (CPython 3.11 registers segments it merely attaches to with its own
// resource tracker and unlinks them at exit: the Python side unregisters right after attaching).

namespace {

mp::Process start_python(const std::string& script, const std::vector<std::string>& args, mp::Connection& stdout_r,
                         mp::Connection* stdin_w = nullptr) {
    auto [out_r, out_w] = mp::Pipe(false);
    auto [in_r, in_w] = mp::Pipe(false);
    stdout_r = std::move(out_r);
    if (stdin_w) *stdin_w = std::move(in_w);
    mp::Process p(
        [](mp::Connection& child_stdout, mp::Connection& child_stdin, const std::string& code,
           const std::vector<std::string>& code_args) {
            ::dup2(child_stdout.fileno(), STDOUT_FILENO);
            ::dup2(child_stdin.fileno(), STDIN_FILENO);
            std::vector<char*> argv{const_cast<char*>(POLYPROC_TEST_PYTHON), const_cast<char*>("-c"),
                                    const_cast<char*>(code.c_str())};
            for (const auto& a : code_args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(POLYPROC_TEST_PYTHON, argv.data());
            std::_Exit(127);
        },
        std::move(out_w), std::move(in_r), script, args);
    p.start();
    return p;
}

}  // namespace

TEST_F(SharedMemoryApi, PythonAttachesToOurSegment) {
    mp::SharedMemory shm(std::nullopt, true, 4096);
    Unlinker guard(shm.name());
    put(shm.buf(), 0, "hello from C++!!");
    const std::string script = R"(
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1])
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.name, shm.size, bytes(shm.buf[:16]).decode(), flush=True)
shm.buf[16:33] = b"written by python"
shm.close()
)";
    mp::Connection out;
    auto py = start_python(script, {shm.name()}, out);
    EXPECT_EQ(read_line(out.fileno()), shm.name() + " 4096 hello from C++!!");
    py.join();
    EXPECT_EQ(py.exitcode(), 0);
    EXPECT_EQ(str(shm.buf().subspan(16, 17)), "written by python");
    EXPECT_TRUE(shm_exists(shm.name()));
    shm.unlink();
}

TEST_F(SharedMemoryApi, WeAttachToAPythonSegment) {
    const std::string script = R"(
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(create=True, size=1000)
shm.buf[:5] = b"hello"
print(shm.name, flush=True)
sys.stdin.readline()
print(bytes(shm.buf[5:10]).decode(), flush=True)
shm.close()
shm.unlink()
)";
    mp::Connection out, in;
    auto py = start_python(script, {}, out, &in);
    const std::string name = read_line(out.fileno());
    ASSERT_FALSE(name.empty());
    Unlinker guard(name);
    EXPECT_TRUE(std::regex_match(name, std::regex("psm_[0-9a-f]{8}"))) << name;
    {
        mp::SharedMemory shm(name);
        EXPECT_EQ(shm.size(), 1000u);
        EXPECT_EQ(str(shm.buf().first(5)), "hello");
        put(shm.buf(), 5, "world");
    }
    ASSERT_EQ(::write(in.fileno(), "go\n", 3), 3);
    EXPECT_EQ(read_line(out.fileno()), "world");
    py.join();
    EXPECT_EQ(py.exitcode(), 0);
    EXPECT_FALSE(shm_exists(name));  // Python unlinked it
}

// ---------------------------------------------------------------------------------------------
// The resource tracker

class SharedMemoryTracker : public ProcessTest {};

TEST_F(SharedMemoryTracker, SigkilledTreeIsCleanedUpOnceItsLastProcessIsGone) {
    mp::SharedMemory outside(std::nullopt, true, 64, false);  // created by us; the helper attaches
    Unlinker guard(outside.name());
    Helper helper("tree", outside.name());
    const auto words = split(read_line(helper.out.fileno()));
    ASSERT_EQ(words.size(), 5u) << "helper said: " << read_until_eof(helper.err.fileno(), 1s);
    const std::string tracked = words[0], untracked = words[1], unlinked = words[2];
    const pid_t child = std::stoi(words[3]), tracker = std::stoi(words[4]);
    guard.add(tracked);
    guard.add(untracked);
    EXPECT_TRUE(shm_exists(tracked));
    EXPECT_TRUE(shm_exists(untracked));
    EXPECT_FALSE(shm_exists(unlinked));

    // The tracker has left the tree's process group and session, and ignores polite signals.
    ASSERT_TRUE(running(tracker));
    EXPECT_EQ(::getsid(tracker), tracker);
    EXPECT_NE(::getpgid(tracker), helper.pgid);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::kill(tracker, sig);
    // Once set up (it gets there on its own, after detaching), it holds no descriptor but its pipe
    // (fd 3), stderr and /dev/null as stdin and stdout, and no shared mapping (that would keep the
    // memory of unlinked segments alive).
    const std::string proc = "/proc/" + std::to_string(tracker);
    auto fds = [&] {
        std::set<std::string> out;
        if (DIR* d = ::opendir((proc + "/fd").c_str())) {
            while (dirent* e = ::readdir(d))
                if (e->d_name[0] != '.') out.insert(e->d_name);
            ::closedir(d);
        }
        return out;
    };
    auto shared_mappings = [&] {
        std::vector<std::string> out;
        std::ifstream maps(proc + "/maps");
        for (std::string line; std::getline(maps, line);)
            if (const auto fields = split(line); fields.size() < 2 || fields[1].size() < 4 || fields[1][3] == 's')
                out.push_back(line);
        return out;
    };
    const std::set<std::string> expected_fds{"0", "1", "2", "3"};
    EXPECT_TRUE(eventually([&] { return fds() == expected_fds && shared_mappings().empty(); }));
    EXPECT_EQ(fds(), expected_fds);
    EXPECT_EQ(shared_mappings(), std::vector<std::string>{});
    EXPECT_TRUE(std::ifstream(proc + "/maps").peek() != EOF);  // the file was readable at all

    // The helper dies, but its child still holds the pipe: nothing is cleaned up yet.
    ::kill(helper.process.pid(), SIGKILL);
    helper.process.join();
    EXPECT_EQ(helper.process.exitcode(), -SIGKILL);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(running(child));
    EXPECT_TRUE(running(tracker));
    EXPECT_TRUE(shm_exists(tracked));

    helper.kill_tree();  // the rest of the tree: the child
    EXPECT_TRUE(eventually([&] { return !shm_exists(tracked); })) << "the tracker did not unlink " << tracked;
    bool eof = false;
    const std::string err = read_until_eof(helper.err.fileno(), 10s, &eof);
    EXPECT_TRUE(eof) << "the tracker is still running";
    EXPECT_EQ(err,
              "polyproc resource_tracker: There appear to be 1 leaked shared_memory objects to clean up at "
              "shutdown: ['" +
                  tracked + "']\n");
    EXPECT_TRUE(eventually([&] { return !running(tracker); }));
    EXPECT_TRUE(shm_exists(untracked));       // track=false: persists
    EXPECT_TRUE(shm_exists(outside.name()));  // attached, never registered
    mp::SharedMemory(untracked).unlink();
}

TEST_F(SharedMemoryTracker, ANormalExitWithEverythingUnlinkedIsSilent) {
    Helper helper("clean");
    const auto words = split(read_line(helper.out.fileno()));
    ASSERT_EQ(words.size(), 2u);
    Unlinker guard(words[0]);
    guard.add(words[1]);
    helper.process.join();
    EXPECT_EQ(helper.process.exitcode(), 0);
    bool eof = false;
    EXPECT_EQ(read_until_eof(helper.err.fileno(), 10s, &eof), "");
    EXPECT_TRUE(eof);
    EXPECT_FALSE(shm_exists(words[0]));
    EXPECT_FALSE(shm_exists(words[1]));
}

TEST_F(SharedMemoryTracker, AKilledTrackerIsRelaunchedWithPythonsWarning) {
    Helper helper("relaunch");
    const auto words = split(read_line(helper.out.fileno()));
    ASSERT_EQ(words.size(), 4u) << "helper said: " << read_until_eof(helper.err.fileno(), 1s);
    const std::string lost = words[0], kept = words[1];
    const pid_t first = std::stoi(words[2]), second = std::stoi(words[3]);
    Unlinker guard(lost);
    guard.add(kept);
    EXPECT_NE(first, second);
    EXPECT_FALSE(proc_stat(first)) << "the dead tracker was not reaped";
    EXPECT_TRUE(running(second));
    helper.kill_tree();
    EXPECT_TRUE(eventually([&] { return !shm_exists(kept); }));
    bool eof = false;
    const std::string err = read_until_eof(helper.err.fileno(), 10s, &eof);
    EXPECT_TRUE(eof);
    EXPECT_EQ(
        err,
        "polyproc resource_tracker: process died unexpectedly, relaunching.  Some resources might leak.\n"
        "polyproc resource_tracker: There appear to be 1 leaked shared_memory objects to clean up at shutdown: ['" +
            kept + "']\n");
    // What only the killed tracker knew is lost, as the warning says (and as in Python).
    EXPECT_TRUE(shm_exists(lost));
}

TEST_F(SharedMemoryTracker, ConcurrentRegistrationsFromManyProcessesAreAllCleanedUp) {
    const std::string tag = test_name("many");
    auto count = [&] {
        int n = 0;
        DIR* d = ::opendir("/dev/shm");
        while (dirent* e = ::readdir(d))
            if (std::string_view(e->d_name).starts_with(tag)) ++n;
        ::closedir(d);
        return n;
    };
    struct Sweep {  // whatever happens, remove the helper's segments
        std::function<void()> f;
        ~Sweep() { f(); }
    } sweep{[&] {
        DIR* d = ::opendir("/dev/shm");
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d))
            if (std::string_view(e->d_name).starts_with(tag)) names.emplace_back(e->d_name);
        ::closedir(d);
        for (const auto& n : names) ::shm_unlink(("/" + n).c_str());
    }};
    Helper helper("many", tag);
    ASSERT_EQ(read_line(helper.out.fileno()), "ready");
    EXPECT_EQ(count(), 100);
    helper.kill_tree();
    bool eof = false;
    const std::string err = read_until_eof(helper.err.fileno(), 10s, &eof);
    EXPECT_TRUE(eof);
    EXPECT_EQ(count(), 0);
    EXPECT_TRUE(
        err.starts_with("polyproc resource_tracker: There appear to be 100 leaked shared_memory objects to clean "
                        "up at shutdown: ['" +
                        tag))
        << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one tracker, one line: " << err;
    EXPECT_TRUE(err.ends_with(", ...]\n")) << err;  // the list is cut to one line of at most 4 KiB
    EXPECT_LE(err.size(), 4096u);
}
