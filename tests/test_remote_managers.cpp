// Remote managers (issue 15): BaseManager on TCP, Python's wire both ways. The distributed-processes
// tutorial's master and worker (examples/task_master.cpp, task_worker.cpp, and Python's originals
// in tests/python/) run against each other in all four pairings under Python 3.11 and 3.13; a
// wrong key, an empty key, a peer that never authenticates and a master that goes away are
// refused or reported, never hung on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sys/file.h>

#include "manager_client.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;

const std::string kExamples = POLYPROC_EXAMPLES_DIR;
const std::string kPythonDir = std::string(POLYPROC_TEST_DIR) + "/python";

// Python 3.11 and 3.13, the interpreters the issue names (those of them this machine has).
std::vector<std::string> find_tutorial_pythons() {
    std::vector<std::string> chosen;
    for (const auto& python : python_interpreters()) {
        const auto version = python_output(python, "import sys; print('%d.%d' % sys.version_info[:2])");
        if (!version.empty() && (version[0] == "3.11" || version[0] == "3.13") &&
            std::none_of(chosen.begin(), chosen.end(), [&](const std::string& c) {
                return python_output(c, "import sys; print('%d.%d' % sys.version_info[:2])") == version;
            }))
            chosen.push_back(python);
    }
    return chosen;
}

const std::vector<std::string>& tutorial_pythons() {
    static const std::vector<std::string> found = find_tutorial_pythons();
    return found;
}

std::vector<std::string> master_command(const std::string& python) {
    if (python.empty()) return {kExamples + "/example_task_master", "0"};
    return {python, kPythonDir + "/task_master.py", "0"};
}
std::vector<std::string> worker_command(const std::string& python, std::uint16_t port, const std::string& seconds) {
    if (python.empty()) return {kExamples + "/example_task_worker", "127.0.0.1", std::to_string(port), seconds};
    return {python, kPythonDir + "/task_worker.py", "127.0.0.1", std::to_string(port), seconds};
}

// The master's port, once it listens (it prints it first when given port 0).
std::uint16_t port_of(Command& master) {
    const auto line = master.next_line(30s);
    EXPECT_TRUE(line && line->starts_with("Listening on port ")) << master.output();
    return line && line->starts_with("Listening on port ") ? static_cast<std::uint16_t>(std::stoi(line->substr(18)))
                                                           : 0;
}

// Waits for "Try get results..." (every task is queued), so that a worker never finds the queue
// empty before the master has filled it.
void until_tasks_are_queued(Command& master) {
    while (auto line = master.next_line(30s))
        if (*line == "Try get results...") return;
    ADD_FAILURE() << "the master never queued its tasks:\n" << master.output();
}

// Checks the master's whole output: ten tasks put, ten results that are those tasks squared.
void expect_master_results(const std::string& output) {
    std::multiset<long long> put, answered;
    int results = 0;
    bool exited = false;
    std::istringstream lines(output);
    const std::regex put_line(R"(Put task (\d+)\.\.\.)"), result_line(R"(Result: (\d+) \* (\d+) = (\d+))");
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (std::regex_match(line, m, put_line)) put.insert(std::stoll(m[1]));
        if (std::regex_match(line, m, result_line)) {
            ++results;
            const long long n = std::stoll(m[1]);
            EXPECT_EQ(std::stoll(m[2]), n) << line;
            EXPECT_EQ(std::stoll(m[3]), n * n) << line;
            answered.insert(n);
        }
        exited = exited || line == "master exit.";
    }
    EXPECT_EQ(put.size(), 10u) << output;
    EXPECT_EQ(results, 10) << output;
    EXPECT_EQ(put, answered) << output;
    EXPECT_TRUE(exited) << output;
}

// The tasks a worker says it ran.
std::multiset<long long> tasks_run(const std::string& output) {
    std::multiset<long long> ran;
    std::istringstream lines(output);
    const std::regex run_line(R"(run task (\d+) \* (\d+)\.\.\.)");
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (std::regex_match(line, m, run_line)) ran.insert(std::stoll(m[1]));
    }
    return ran;
}

// A worker is done when it ran `tasks` tasks and either exited (status 0, "worker exit.") or was
// told its master had gone: the tutorial's master shuts its manager down as soon as it has its
// last result, which may be before the server answered that result's put (Python's pair does
// the same). `status` is nullopt for a worker that hung.
void expect_worker_done(const Command& worker, std::optional<int> status, std::optional<std::size_t> tasks) {
    ASSERT_TRUE(status) << "the worker hung:\n" << worker.output();
    if (tasks) {
        EXPECT_EQ(tasks_run(worker.output()).size(), *tasks) << worker.output();
    }
    if (*status == 0) {
        EXPECT_NE(worker.output().find("worker exit."), std::string::npos) << worker.output();
        return;
    }
    const std::string& out = worker.output();
    const bool told = out.find("is gone") != std::string::npos || out.find("EOFError") != std::string::npos ||
                      out.find("ConnectionResetError") != std::string::npos ||
                      out.find("BrokenPipeError") != std::string::npos ||
                      out.find("ConnectionRefusedError") != std::string::npos;
    EXPECT_TRUE(told) << "the worker failed otherwise:\n" << out;
}

struct Pairing {
    std::string master_python, worker_python;  // empty: the C++ program
    std::string name;
};

void PrintTo(const Pairing& p, std::ostream* out) { *out << p.name; }

std::vector<Pairing> pairings() {
    std::vector<Pairing> all{{"", "", "cpp_master_cpp_worker"}};
    for (const auto& python : tutorial_pythons()) {
        const std::string v = python_output(python, "import sys; print('%d%d' % sys.version_info[:2])").at(0);
        all.push_back({python, "", "python" + v + "_master_cpp_worker"});
        all.push_back({"", python, "cpp_master_python" + v + "_worker"});
        all.push_back({python, python, "python" + v + "_master_python" + v + "_worker"});
    }
    return all;
}

class TutorialPairing : public ::testing::TestWithParam<Pairing> {};

TEST_P(TutorialPairing, EveryTaskComesBackSquared) {
    HangGuard guard(120s, "the tutorial's master and worker");
    const Pairing& p = GetParam();
    Command master(master_command(p.master_python));
    const std::uint16_t port = port_of(master);
    ASSERT_NE(port, 0);
    until_tasks_are_queued(master);
    Command worker(worker_command(p.worker_python, port, "0.01"));
    const auto worker_status = worker.wait(60s);
    const auto master_status = master.wait(60s);
    EXPECT_EQ(master_status, 0) << master.output();
    expect_master_results(master.output());
    expect_worker_done(worker, worker_status, 10);
}

INSTANTIATE_TEST_SUITE_P(FourWays, TutorialPairing, ::testing::ValuesIn(pairings()),
                         [](const auto& pairing) { return pairing.param.name; });

// Two workers, one of each language, share the master's tasks; when the master has its ten results
// it shuts down, and a worker still waiting on the queue is told so at once (Python: EOFError;
// C++: mp::ProcessError "the manager at ... is gone") instead of hanging.
TEST(RemoteManager, ACppAndAPythonWorkerShareOneMaster) {
    HangGuard guard(120s, "two workers on one master");
    Command master(master_command(""));
    const std::uint16_t port = port_of(master);
    ASSERT_NE(port, 0);
    until_tasks_are_queued(master);
    Command cpp(worker_command("", port, "0.2"));
    Command python(worker_command(python_interpreters().front(), port, "0.2"));
    EXPECT_EQ(master.wait(60s), 0) << master.output();
    expect_master_results(master.output());
    const auto cpp_status = cpp.wait(30s), python_status = python.wait(30s);
    ASSERT_TRUE(cpp_status && python_status) << "a worker hung after its master went away";
    const std::size_t by_cpp = tasks_run(cpp.output()).size(), by_python = tasks_run(python.output()).size();
    EXPECT_EQ(by_cpp + by_python, 10u) << cpp.output() << python.output();
    expect_worker_done(cpp, cpp_status, std::nullopt);  // their sum is what counts
    expect_worker_done(python, python_status, std::nullopt);
}

// Under ThreadSanitizer, a manager server forked from this threaded test process mistakes a new
// connection thread for one it still counts ("dup thread with used id") when connections come and
// go quickly; a spawned server starts with a runtime of its own. (The start method is not what
// these tests are about.)
void spawn_under_tsan() {
#if defined(__SANITIZE_THREAD__)
    mp::set_start_method("spawn", true);
#endif
}

class RemoteManagerServer : public ProcessTest {
protected:
    void SetUp() override { spawn_under_tsan(); }
};

// A Python SyncManager serving on 127.0.0.1 (key "abc"), which says its port first; `registered`
// registers more typeids on its class M (a queue.Queue `q` is there for them).
std::vector<std::string> python_sync_manager(const std::string& python, const std::string& registered = {}) {
    return {python, "-c",
            "import queue\n"
            "from multiprocessing.managers import SyncManager\n"
            "q = queue.Queue()\n"
            "class M(SyncManager): pass\n" +
                registered +
                "m = M(address=('127.0.0.1', 0), authkey=b'abc')\n"
                "s = m.get_server()\n"
                "print('Listening on port %d' % s.address[1], flush=True)\n"
                "s.serve_forever()\n"};
}

// A manager on TCP loopback, its queue registered as the tutorial's master registers it.
mp::BaseManager tutorial_manager(const std::string& authkey = "abc") {
    mp::BaseManager manager(mp::InetAddress{"127.0.0.1", 0}, authkey);
    manager.register_shared("get_task_queue", "Queue");
    manager.start();
    return manager;
}

TEST_F(RemoteManagerServer, AWrongKeyIsRefusedAndTheServerGoesOn) {
    HangGuard guard(60s, "a wrong authkey");
    auto manager = tutorial_manager();
    mp::BaseManager wrong(manager.address(), std::string("abd"));
    EXPECT_THROW_WITH(wrong.connect(), mp::AuthenticationError, "digest");
    const auto port = std::get<mp::InetAddress>(manager.address()).port;
    const auto lines =
        python_output(python_interpreters().back(),
                      "from multiprocessing.managers import BaseManager\n"
                      "import multiprocessing\n"
                      "m = BaseManager(address=('127.0.0.1', " +
                          std::to_string(port) +
                          "), authkey=b'abd')\n"
                          "try:\n    m.connect()\n"
                          "except multiprocessing.AuthenticationError as e:\n    print('refused:', e)\n");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].starts_with("refused: ")) << lines[0];
    mp::BaseManager right(manager.address(), std::string("abc"));
    right.connect();
    mp::QueueProxy<int> queue(right.create("get_task_queue"));
    queue.put(7);
    EXPECT_EQ(queue.get(), 7);
}

TEST_F(RemoteManagerServer, AnEmptyKeyIsRefusedOnTcp) {
    mp::BaseManager open(mp::InetAddress{"127.0.0.1", 0}, std::string());
    EXPECT_THROW_WITH(open.start(), mp::ValueError, "needs a non-empty authkey");
    mp::BaseManager open_too(mp::InetAddress{"127.0.0.1", 0}, std::string());
    EXPECT_THROW_WITH(open_too.get_server(), mp::ValueError, "needs a non-empty authkey");
}

TEST_F(RemoteManagerServer, APortInUseIsTheStartersError) {
    auto manager = tutorial_manager();
    mp::BaseManager second(manager.address(), std::string("abc"));
    EXPECT_THROW_WITH(second.start(), std::system_error, "bind");
}

// Before it has authenticated, a peer cannot make the server read more than a handshake frame:
// one that announces a 1 GiB message is cut off at once, and everyone else is served meanwhile.
TEST_F(RemoteManagerServer, AnUnauthenticatedPeerCannotMakeTheServerReadMuch) {
    HangGuard guard(60s, "a hostile peer");
    auto manager = tutorial_manager();
    const auto& where = std::get<mp::InetAddress>(manager.address());
    const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(sock, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(where.port);
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ASSERT_EQ(::connect(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    // Read the challenge, then claim a huge response.
    char challenge[256];
    ASSERT_GT(::recv(sock, challenge, sizeof challenge, 0), 0);
    const std::uint32_t huge = htonl(1u << 30);
    ASSERT_EQ(::send(sock, &huge, 4, MSG_NOSIGNAL), 4);
    char byte;
    pollfd p{sock, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the server kept waiting for the announced gigabyte";
    EXPECT_LE(::recv(sock, &byte, 1, 0), 0) << "the connection should be closed";
    ::close(sock);
    mp::BaseManager client(manager.address(), std::string("abc"));
    client.connect();
    mp::QueueProxy<int> queue(client.create("get_task_queue"));
    queue.put(1);
    EXPECT_EQ(queue.get(), 1);
}

// A server on every interface holds the proxies a client stores whatever name it reached the
// server by ("localhost" here): the stored list outlives the client's own proxy to it.
TEST_F(RemoteManagerServer, AStoredProxyIsHeldWhateverNameTheClientUsed) {
    if (tutorial_pythons().empty()) GTEST_SKIP() << "no Python 3.11 or 3.13 here";
    HangGuard guard(60s, "a proxy stored through localhost");
    mp::SyncManager manager(mp::InetAddress{"", 0}, std::string("abc"));
    manager.start();
    const auto port = std::get<mp::InetAddress>(manager.address()).port;
    const auto lines = python_output(tutorial_pythons().front(),
                                     "import gc, multiprocessing\n"
                                     "from multiprocessing.managers import SyncManager\n"
                                     "multiprocessing.current_process().authkey = b'abc'\n"
                                     "m = SyncManager(address=('localhost', " +
                                         std::to_string(port) +
                                         "), authkey=b'abc')\n"
                                         "m.connect()\n"
                                         "d = m.dict()\n"
                                         "d['l'] = m.list([1, 2])\n"
                                         "gc.collect()\n"
                                         "print(d['l'][:], m._number_of_objects())\n");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "[1, 2] 2");
}

// A peer's counts are bounded, not trusted: a list multiplied by 2**62 neither loops nor allocates.
TEST_F(RemoteManagerServer, AHugeRepeatCountIsAMemoryErrorNotAHang) {
    HangGuard guard(60s, "a huge repeat count");
    mp::SyncManager manager(mp::InetAddress{"127.0.0.1", 0}, std::string("abc"));
    manager.start();
    auto empty = manager.list<int>();
    const mp::Object huge = std::int64_t{1} << 62;
    EXPECT_EQ(empty._callmethod("__mul__", mp::Object::tuple({huge})).size(), 0u);  // [] * n, at once
    auto one = manager.list<int>(std::vector<int>{1});
    EXPECT_ANY_THROW(one._callmethod("__mul__", mp::Object::tuple({huge})));
    EXPECT_ANY_THROW(one._callmethod("__imul__", mp::Object::tuple({std::int64_t{4} << 60})));  // wraps to 0
    EXPECT_EQ(one.size(), 1u);
    EXPECT_EQ(one._callmethod("__mul__", mp::Object::tuple({3})).size(), 3u);
}

// A master that goes away: a client waiting on its queue is told at once, and so is the next call.
TEST_F(RemoteManagerServer, AMasterThatDiesIsAClearErrorAtOnce) {
    HangGuard guard(60s, "a master that died");
    auto manager = tutorial_manager();
    mp::BaseManager client(manager.address(), std::string("abc"));
    client.connect();
    mp::QueueProxy<int> queue(client.create("get_task_queue"));
    std::thread killer([&] {
        std::this_thread::sleep_for(300ms);
        ::kill(*manager.pid(), SIGKILL);
    });
    EXPECT_THROW_WITH(queue.get(true, 30s), mp::ProcessError, "is gone");
    killer.join();
    EXPECT_THROW_WITH(queue.put(1), mp::ProcessError, "is gone");
}

// A polyproc client of a Python manager: its registered queue (empty is mp::Empty, as queue.Empty
// is there), and a SyncManager's dict with Python's KeyError.
TEST_F(RemoteManagerServer, OurClientUsesAPythonManager) {
    if (tutorial_pythons().empty()) GTEST_SKIP() << "no Python 3.11 or 3.13 here";
    HangGuard guard(120s, "a Python manager");
    for (const auto& python : tutorial_pythons()) {
        Command server(python_sync_manager(python, "M.register('get_task_queue', callable=lambda: q)\n"));
        const std::uint16_t port = port_of(server);
        ASSERT_NE(port, 0) << python;
        mp::BaseManager client(mp::InetAddress{"127.0.0.1", port}, std::string("abc"));
        client.connect();
        mp::QueueProxy<std::string> queue(client.create("get_task_queue"));
        EXPECT_THROW(queue.get(true, 100ms), mp::Empty) << python;
        queue.put("x");
        mp::QueueProxy<std::string> again(client.create("get_task_queue"));  // the same queue.Queue
        EXPECT_EQ(again.qsize(), 1u) << python;
        EXPECT_EQ(again.get(), "x") << python;
        mp::DictProxy<std::string, int> d(client.create("dict"));
        d["a"] = 1;
        d["b"] = 2;
        EXPECT_EQ(d.size(), 2u) << python;
        EXPECT_EQ(static_cast<int>(d["b"]), 2) << python;
        EXPECT_THROW((void)static_cast<int>(d["zz"]), mp::KeyError) << python;
        mp::ListProxy<int> l(client.create("list"));
        l.append(3);
        l.append(1);
        l.sort();
        EXPECT_EQ(l.size(), 2u) << python;
        EXPECT_EQ(static_cast<int>(l[0]), 1) << python;
        auto lock = mp::LockProxy(client.create("Lock"));
        EXPECT_TRUE(lock.acquire());
        lock.release();
        EXPECT_THROW_WITH(lock.release(), mp::RuntimeError, "release unlocked lock");
    }
}

// Proxies inside containers cross in Python's own form (RebuildProxy(ListProxy, Token, ...)), both
// ways: a Python client stores polyproc proxies and gets live ones back; a polyproc client stores
// its proxies in a Python manager's dict and gets live ones back.
TEST_F(RemoteManagerServer, NestedProxiesCrossInPythonsForm) {
    if (tutorial_pythons().empty()) GTEST_SKIP() << "no Python 3.11 or 3.13 here";
    HangGuard guard(120s, "nested proxies with Python");
    mp::SyncManager manager(mp::InetAddress{"127.0.0.1", 0}, std::string("abc"));
    manager.start();
    const auto port = std::get<mp::InetAddress>(manager.address()).port;
    auto shared = manager.dict();
    for (const auto& python : tutorial_pythons()) {
        const auto lines =
            python_output(python,
                          "import multiprocessing\n"
                          "from multiprocessing.managers import SyncManager\n"
                          "multiprocessing.current_process().authkey = b'abc'  # what a rebuilt proxy connects with\n"
                          "m = SyncManager(address=('127.0.0.1', " +
                              std::to_string(port) +
                              "), authkey=b'abc')\n"
                              "m.connect()\n"
                              "d = m.dict()\n"
                              "l = m.list([1, 2])\n"
                              "d['inner'] = l\n"
                              "d['inner'].append(3)\n"
                              "print(type(d['inner']).__name__, list(d['inner']), l[:])\n"
                              "q = m.Queue()\n"
                              "d['q'] = q\n"
                              "d['q'].put(5)\n"
                              "print(type(d['q']).__name__, q.get())\n"
                              "lock = m.Lock()\n"
                              "d['lock'] = lock\n"
                              "print(d['lock'].acquire(), lock.acquire(False))\n"
                              "outer = m.dict()\n"
                              "outer['d'] = d\n"
                              "print(sorted(outer['d'].keys()))\n");
        ASSERT_EQ(lines.size(), 4u) << python;
        EXPECT_EQ(lines[0], "ListProxy [1, 2, 3] [1, 2, 3]") << python;
        EXPECT_TRUE(lines[1].starts_with("AutoProxy[Queue] 5")) << python << ": " << lines[1];
        EXPECT_EQ(lines[2], "True False") << python;
        EXPECT_EQ(lines[3], "['inner', 'lock', 'q']") << python;
    }
    for (const auto& python : tutorial_pythons()) {
        Command server(python_sync_manager(python));
        const std::uint16_t python_port = port_of(server);
        ASSERT_NE(python_port, 0) << python;
        mp::SyncManager client(mp::InetAddress{"127.0.0.1", python_port}, std::string("abc"));
        client.connect();
        auto d = client.dict<std::string, mp::Object>();
        auto l = client.list<int>();
        l.append(1);
        d["inner"] = mp::Object(mp::BaseProxy(l));
        mp::ListProxy<int> inner(d.at("inner").template as<mp::BaseProxy>());
        inner.append(2);
        EXPECT_EQ(l.size(), 2u) << python;
        EXPECT_EQ(static_cast<int>(l[1]), 2) << python;
    }
}

// Two hosts (support.hpp); the manager servers are spawned under TSan, as in the tests above.
class RemoteTwoHosts : public TwoHosts {
protected:
    void SetUp() override {
        spawn_under_tsan();
        TwoHosts::SetUp();
    }
};

// The tutorial across hosts: the master here, listening on every interface; the worker on the
// other host, reaching it by its address there.
TEST_F(RemoteTwoHosts, TheTutorialsMasterAndWorkerOnTwoHosts) {
    HangGuard guard(120s, "the tutorial across two hosts");
    Command master(master_command(""));
    const std::uint16_t port = port_of(master);
    ASSERT_NE(port, 0);
    until_tasks_are_queued(master);
    Command worker(there({kExamples + "/example_task_worker", here_, std::to_string(port), "0.01"}));
    const auto worker_status = worker.wait(60s);
    EXPECT_EQ(master.wait(60s), 0) << master.output();
    expect_master_results(master.output());
    expect_worker_done(worker, worker_status, 10);
    for (const auto& python : tutorial_pythons()) {  // and a Python worker there
        Command master_again(master_command(""));
        const std::uint16_t again = port_of(master_again);
        until_tasks_are_queued(master_again);
        Command python_worker(there({python, kPythonDir + "/task_worker.py", here_, std::to_string(again), "0.01"}));
        const auto python_status = python_worker.wait(60s);
        EXPECT_EQ(master_again.wait(60s), 0) << master_again.output();
        expect_master_results(master_again.output());
        expect_worker_done(python_worker, python_status, 10);
    }
}

// The server's reference counts, by object id (debug_info).
std::map<std::string, int> refcounts(const mp::Address& address) {
    const std::string text =
        mp::detail::manager::one_shot(address, "abc", "debug_info").as_str();  // "  <id>: refcount=<n>" lines
    std::map<std::string, int> counts;
    std::istringstream lines(text);
    const std::regex line_re(R"(\s*(\w+): refcount=(\d+))");
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (std::regex_match(line, m, line_re)) counts[m[1]] = std::stoi(m[2]);
    }
    return counts;
}

// A worker host that disappears mid-run (its link deleted while it holds a task) never hangs the
// master: the other worker takes the remaining tasks, and the server finds the vanished worker's
// connections dead (keepalive) and drops its references.
TEST_F(RemoteTwoHosts, AWorkerHostThatVanishesHangsNothingAndItsReferencesGo) {
    HangGuard guard(170s, "a worker host that vanished");
    mp::BaseManager manager(mp::InetAddress{"", 0}, std::string("abc"));
    manager.register_shared("get_task_queue", "Queue");
    manager.register_shared("get_result_queue", "Queue");
    manager.start();
    const auto port = std::get<mp::InetAddress>(manager.address()).port;
    const mp::Address local = mp::InetAddress{"127.0.0.1", port};
    mp::QueueProxy<int> tasks(manager.create("get_task_queue"));
    mp::QueueProxy<std::string> results(manager.create("get_result_queue"));
    for (int n = 1; n <= 11; ++n) tasks.put(n);
    const auto before = refcounts(local);

    // The far worker takes one task and is cut off while it works on it (30 s per task).
    Command far(there({kExamples + "/example_task_worker", here_, std::to_string(port), "30"}));
    std::optional<std::string> line;
    while ((line = far.next_line(30s)) && !line->starts_with("run task"))
        ;
    ASSERT_TRUE(line) << far.output();
    EXPECT_NE(refcounts(local), before) << "the far worker holds references";
    vanish();

    // The near worker takes the other ten, and the master has their results.
    Command near(worker_command("", port, "0.01"));
    EXPECT_EQ(near.wait(60s), 0) << near.output();
    const std::regex result_line(R"((\d+) \* (\d+) = (\d+))");
    std::set<long long> answered;
    for (int i = 0; i < 10; ++i) {
        std::string r;
        ASSERT_NO_THROW(r = results.get(true, 30s));
        std::smatch m;
        ASSERT_TRUE(std::regex_match(r, m, result_line)) << r;
        const long long n = std::stoll(m[1]);
        EXPECT_EQ(std::stoll(m[3]), n * n) << r;
        answered.insert(n);
    }
    EXPECT_EQ(answered.size(), 10u) << "each of the other ten tasks, once";
    EXPECT_EQ(tasks.qsize(), 0u);

    // Within keepalive's bound (about 20 s of silence), the vanished worker's references are dropped.
    EXPECT_TRUE(eventually([&] { return refcounts(local) == before; }, 60s))
        << "the vanished worker's references were never dropped";
}

}  // namespace
