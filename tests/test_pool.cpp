// Pool: CPython's API and semantics (docs/pool.md), with real worker processes.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <csignal>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int sleep_ms_then(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
int worker_pid(int) { return ::getpid(); }

struct MyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct Unregistered : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class PoolApi : public ProcessTest {};

TEST_F(PoolApi, ApplyRunsInAWorkerAndReturnsTheValue) {
    mp::Pool pool(2);
    EXPECT_EQ(pool.apply(square, 7), 49);
    EXPECT_EQ(pool.apply(add, 2, 3), 5);
    const int pid = pool.apply([] { return static_cast<int>(::getpid()); });
    EXPECT_NE(pid, ::getpid());
    const auto pids = pool.worker_pids();
    EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end());
    EXPECT_EQ(pool.apply([](const std::string& s) { return s + "!"; }, std::string("hi")), "hi!");
    EXPECT_EQ(pool.apply([](const std::string& s) { return s + "!"; }, "a literal"), "a literal!");
}

// A task that takes its arguments by rvalue reference gets them moved in (call_with's fallback),
// for apply and for starmap's tuple and pair items alike.
TEST_F(PoolApi, FunctionsTakingRvalueReferencesGetTheArgumentsMovedIn) {
    mp::Pool pool(2);
    EXPECT_EQ(pool.apply([](std::string&& s) { return std::move(s) + "!"; }, std::string("moved")), "moved!");
    const std::vector<std::tuple<std::string, int>> items{{"a", 1}, {"bb", 2}};
    EXPECT_EQ(pool.starmap([](std::string&& s, int&& n) { return s.size() * std::size_t(n); }, items),
              (std::vector<std::size_t>{1, 4}));
    const std::vector<std::pair<int, int>> pairs{{2, 3}, {4, 5}};
    EXPECT_EQ(pool.starmap([](int&& a, int&& b) { return a * b; }, pairs), (std::vector{6, 20}));
}

TEST_F(PoolApi, LambdaWithTriviallyCopyableCapturesTravels) {
    mp::Pool pool(2);
    const int base = 100;
    const double scale = 2.5;
    EXPECT_EQ(pool.apply([base, scale](int x) { return base + x * scale; }, 4), 110.0);
    EXPECT_EQ(pool.map([base](int x) { return base + x; }, std::vector{1, 2, 3}), (std::vector{101, 102, 103}));
}

TEST_F(PoolApi, ApplyAsyncGetTimeoutReadySuccessful) {
    mp::Pool pool(2);
    auto r = pool.apply_async(sleep_ms_then, 300);
    EXPECT_FALSE(r.ready());
    EXPECT_THROW_WITH(r.successful(), mp::ValueError, "not ready");
    EXPECT_EQ(r.repr().rfind("<polyproc.pool.AsyncResult object at 0x", 0), 0u) << r.repr();
    EXPECT_THROW(r.get(20ms), mp::TimeoutError);
    r.wait(10ms);
    EXPECT_EQ(r.get(), 300);
    EXPECT_TRUE(r.ready());
    EXPECT_TRUE(r.successful());
    EXPECT_EQ(r.get(), 300);  // again: the same value

    auto v = pool.apply_async([] {});
    v.get();
    EXPECT_TRUE(v.successful());
}

TEST_F(PoolApi, MapKeepsInputOrderForEveryChunksize) {
    mp::Pool pool(2);
    std::vector<int> xs(1000);
    std::iota(xs.begin(), xs.end(), 0);
    std::vector<int> expected;
    for (int x : xs) expected.push_back(x * x);
    EXPECT_EQ(pool.map(square, xs), expected);
    EXPECT_EQ(pool.map(square, xs, 1), expected);
    EXPECT_EQ(pool.map(square, xs, 7), expected);
    EXPECT_EQ(pool.map(square, xs, 5000), expected);
    EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
    EXPECT_TRUE(pool.map(square, std::vector<int>{}, 1).empty());
}

TEST_F(PoolApi, MapTakesAnyRangeAndAnySerializableTypes) {
    mp::Pool pool(2);
    std::vector<std::string> words{"a", "bb", "ccc"};
    EXPECT_EQ(pool.map([](const std::string& s) { return s.size(); }, words), (std::vector<std::size_t>{1, 2, 3}));
    EXPECT_EQ(pool.map([](int x) { return std::vector<int>(x, x); }, std::views::iota(0, 3)),
              (std::vector<std::vector<int>>{{}, {1}, {2, 2}}));
    EXPECT_EQ(pool.map([](int x) { return x % 2 == 0; }, std::vector{1, 2, 3, 4}),
              (std::vector<bool>{false, true, false, true}));
    pool.map([](int) {}, std::vector{1, 2, 3});  // void tasks: map returns nothing
}

TEST_F(PoolApi, StarmapUnpacksTuples) {
    mp::Pool pool(2);
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    EXPECT_EQ(pool.starmap(add, pairs), (std::vector{3, 7, 11}));
    std::vector<std::pair<std::string, int>> reps{{"ab", 2}, {"c", 3}};
    auto r = pool.starmap_async(
        [](const std::string& s, int n) {
            std::string out;
            for (int i = 0; i < n; ++i) out += s;
            return out;
        },
        reps);
    EXPECT_EQ(r.get(), (std::vector<std::string>{"abab", "ccc"}));
}

TEST_F(PoolApi, ImapIsOrderedAndImapUnorderedHasEveryResult) {
    mp::Pool pool(2);
    std::vector<int> xs(200);
    std::iota(xs.begin(), xs.end(), 0);
    std::vector<int> got;
    for (int r : pool.imap(square, xs)) got.push_back(r);
    std::vector<int> expected;
    for (int x : xs) expected.push_back(x * x);
    EXPECT_EQ(got, expected);

    got.clear();
    for (int r : pool.imap(square, xs, 7)) got.push_back(r);
    EXPECT_EQ(got, expected);

    std::multiset<int> unordered;
    for (int r : pool.imap_unordered(square, xs, 3)) unordered.insert(r);
    EXPECT_EQ(unordered, std::multiset<int>(expected.begin(), expected.end()));

    EXPECT_THROW_WITH(pool.imap(square, xs, 0), mp::ValueError, "Chunksize must be 1+, not 0");
    EXPECT_THROW_WITH(pool.imap_unordered(square, xs, 0), mp::ValueError, "Chunksize must be 1+, not 0");
}

TEST_F(PoolApi, ImapNextHasPythonsTimeout) {
    mp::Pool pool(2);
    auto it = pool.imap(sleep_ms_then, std::vector{300, 0});
    EXPECT_THROW(it.next(20ms), mp::TimeoutError);
    EXPECT_EQ(it.next(), 300);
    EXPECT_EQ(it.next(), 0);
    EXPECT_EQ(it.next(), std::nullopt);
    EXPECT_EQ(it.next(), std::nullopt);
}

TEST_F(PoolApi, CallbacksRunInTheParentInArrivalOrderBeforeReady) {
    mp::Pool pool(2);
    std::vector<int> seen;  // touched only by the callbacks, which run one at a time
    std::atomic<int> thread_checks{0};
    const pid_t parent = ::getpid();
    std::vector<mp::AsyncResult<int>> results;
    for (int i = 0; i < 20; ++i)
        results.push_back(pool.apply_async(mp::Callbacks{.callback =
                                                             [&, parent](int v) {
                                                                 if (::getpid() == parent) thread_checks++;
                                                                 seen.push_back(v);
                                                             }},
                                           square, i));
    for (auto& r : results) {
        r.get();
        EXPECT_TRUE(r.ready());
    }
    EXPECT_EQ(thread_checks.load(), 20);
    std::vector<int> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> expected;
    for (int i = 0; i < 20; ++i) expected.push_back(i * i);
    EXPECT_EQ(sorted, expected);

    // The callback has run by the time ready() is true.
    std::atomic<bool> called{false};
    auto r = pool.apply_async(mp::Callbacks{.callback =
                                                [&](int) {
                                                    std::this_thread::sleep_for(50ms);
                                                    called = true;
                                                }},
                              square, 3);
    r.wait();
    EXPECT_TRUE(called.load());
}

TEST_F(PoolApi, ErrorCallbackGetsTheTasksException) {
    mp::Pool pool(2);
    std::string message;
    std::atomic<int> successes{0};
    auto r = pool.apply_async(
        mp::Callbacks{.callback = [&](int) { successes++; },
                      .error_callback = [&](const std::exception& e) { message = e.what(); }},
        [](int x) -> int { throw std::out_of_range("index " + std::to_string(x)); }, 5);
    r.wait();
    EXPECT_EQ(message, "index 5");
    EXPECT_EQ(successes.load(), 0);
    EXPECT_FALSE(r.successful());
    EXPECT_THROW_WITH(r.get(), std::out_of_range, "index 5");
}

TEST_F(PoolApi, MapAsyncRunsEveryChunkThenReportsTheFirstFailureOnce) {
    mp::Pool pool(2);
    std::atomic<int> errors{0}, successes{0};
    std::vector<int> xs(40);
    std::iota(xs.begin(), xs.end(), 0);
    auto r = pool.map_async(
        mp::Callbacks{.callback = [&](const std::vector<int>&) { successes++; },
                      .error_callback = [&](std::exception_ptr) { errors++; }},
        [](int x) {
            if (x == 13) throw std::invalid_argument("thirteen");
            return x;
        },
        xs, 1);
    EXPECT_THROW_WITH(r.get(), std::invalid_argument, "thirteen");
    EXPECT_EQ(errors.load(), 1);
    EXPECT_EQ(successes.load(), 0);
    pool.close();
    pool.join();  // no deadlock after a failing map

    mp::Pool pool2(2);
    std::vector<int> got;
    auto ok = pool2.map_async(mp::Callbacks{.callback = [&](const std::vector<int>& v) { got = v; }}, square, xs);
    ok.wait();
    EXPECT_EQ(got.size(), 40u);
    EXPECT_EQ(got[39], 39 * 39);
}

TEST_F(PoolApi, ExceptionsComeBackAsTheirOwnTypeOrAsRemoteError) {
    mp::register_exception<MyError>();
    mp::Pool pool(1);
    EXPECT_THROW_WITH(pool.apply([] { throw std::runtime_error("plain"); }), std::runtime_error, "plain");
    EXPECT_THROW_WITH(pool.apply([] { throw std::length_error("long"); }), std::length_error, "long");
    EXPECT_THROW_WITH(pool.apply([] { throw mp::ValueError("bad value"); }), mp::ValueError, "bad value");
    EXPECT_THROW_WITH(pool.apply([] { throw MyError("mine"); }), MyError, "mine");
    EXPECT_THROW_WITH(pool.apply([] { throw mp::KeyError("'k'"); }), mp::KeyError, "'k'");
    EXPECT_THROW_WITH(pool.apply([] { throw mp::TypeError("unhashable type: 'list'"); }), mp::TypeError,
                      "unhashable type: 'list'");
    try {
        pool.apply([] { throw std::system_error(ENOENT, std::generic_category(), "open x"); });
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_EQ(std::string(e.what()), std::system_error(ENOENT, std::generic_category(), "open x").what());
    }
    const int worker = pool.worker_pids().at(0);
    try {
        pool.apply([] { throw Unregistered("not registered"); });
        FAIL() << "no exception";
    } catch (const mp::RemoteError& e) {
        EXPECT_NE(e.type_name().find("Unregistered"), std::string::npos) << e.type_name();
        EXPECT_EQ(e.remote_message(), "not registered");
        EXPECT_EQ(e.pid(), worker);
    }
    try {
        pool.apply([] { throw 42; });
        FAIL() << "no exception";
    } catch (const mp::RemoteError& e) {
        EXPECT_EQ(e.type_name(), "int");
    }
    EXPECT_EQ(pool.apply(square, 3), 9);  // the worker survived all of it
    EXPECT_EQ(pool.worker_pids().at(0), worker);
}

TEST_F(PoolApi, MisuseRaisesPythonsErrors) {
    EXPECT_THROW_WITH(mp::Pool(-1), mp::ValueError, "Number of processes must be at least 1");
    EXPECT_THROW_WITH(mp::Pool(mp::PoolOptions{.processes = 1, .maxtasksperchild = -1}), mp::ValueError,
                      "maxtasksperchild must be a positive int or None");
    mp::Pool pool(1);
    EXPECT_THROW_WITH(pool.join(), mp::ValueError, "Pool is still running");
    EXPECT_EQ(pool.repr(), "<polyproc.Pool state=RUN pool_size=1>");
    pool.close();
    EXPECT_THROW_WITH(pool.apply_async(square, 1), mp::ValueError, "Pool not running");
    EXPECT_THROW_WITH(pool.map(square, std::vector{1}), mp::ValueError, "Pool not running");
    EXPECT_THROW_WITH(pool.imap(square, std::vector{1}), mp::ValueError, "Pool not running");
    pool.join();
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.repr(), "<polyproc.Pool state=CLOSE pool_size=0>");
    pool.terminate();
    EXPECT_THROW_WITH(pool.apply(square, 1), mp::ValueError, "Pool not running");
}

TEST_F(PoolApi, CloseLetsQueuedTasksFinishAndJoinWaitsForThem) {
    mp::Pool pool(2);
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 10; ++i) rs.push_back(pool.apply_async(sleep_ms_then, 20));
    pool.close();
    pool.join();
    for (auto& r : rs) {
        EXPECT_TRUE(r.ready());
        EXPECT_EQ(r.get(), 20);
    }
    EXPECT_TRUE(pool.worker_pids().empty());
}

TEST_F(PoolApi, TerminateStopsWorkersAndFailsPendingResults) {
    std::vector<pid_t> pids;
    mp::AsyncResult<int> pending = [&] {
        mp::Pool pool(2);
        pids = pool.worker_pids();
        std::vector<mp::AsyncResult<int>> rs;
        for (int i = 0; i < 1000; ++i) rs.push_back(pool.apply_async(sleep_ms_then, 100));
        return rs.back();
    }();  // the destructor terminates, like leaving Python's `with` block
    EXPECT_THROW_WITH(pending.get(5s), mp::ProcessError, "Pool was terminated");
    for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0) == 0 && ::waitpid(pid, nullptr, WNOHANG) == 0, true);
}

TEST_F(PoolApi, InitializerRunsOncePerWorker) {
    POLYPROC_FORK_ONLY();  // a capturing initializer; InitializerArgumentsReachEveryWorker is its spawnable form
    mp::Queue<int> started;
    mp::Pool pool(mp::PoolOptions{.processes = 3, .initializer = [started] { started.put(::getpid()); }});
    std::set<int> pids;
    for (int i = 0; i < 3; ++i) pids.insert(started.get(true, 10s));
    EXPECT_EQ(pids.size(), 3u);
    const auto workers = pool.worker_pids();
    EXPECT_EQ(pids, std::set<int>(workers.begin(), workers.end()));
    EXPECT_THROW(started.get(true, 100ms), mp::Empty);
}

// Python's Pool(initializer=f, initargs=(q, counter, "tag")): handles and values reach every
// worker under every start method.
void announce_worker(mp::Queue<std::string> started, mp::Value<int> counter, std::string tag) {
    {
        std::lock_guard lock(counter.get_lock());
        counter.set_value(counter.value() + 1);
    }
    started.put(tag + ":" + std::to_string(::getpid()));
}

TEST_F(PoolApi, InitializerArgumentsReachEveryWorker) {
    mp::Queue<std::string> started;
    mp::Value<int> counter(0);
    mp::Pool pool(
        mp::PoolOptions{.processes = 3, .initializer = mp::PoolInitializer(announce_worker, started, counter, "w")});
    std::set<std::string> seen;
    for (int i = 0; i < 3; ++i) seen.insert(started.get(true, 30s));
    std::set<std::string> expected;
    for (pid_t pid : pool.worker_pids()) expected.insert("w:" + std::to_string(pid));
    EXPECT_EQ(seen, expected);
    EXPECT_EQ(counter.value(), 3);
}

TEST_F(PoolApi, ANullInitializerIsNoInitializer) {
    void (*none)() = nullptr;
    mp::Pool a(mp::PoolOptions{.processes = 1, .initializer = none});
    EXPECT_EQ(a.apply(square, 5), 25);
    mp::Pool b(mp::PoolOptions{.processes = 1, .initializer = std::function<void()>()});
    EXPECT_EQ(b.apply(square, 6), 36);
}

TEST_F(PoolApi, InitializerArgumentsThatCannotTravelAreAStartTimeError) {
    if (mp::get_start_method() == "fork") GTEST_SKIP() << "under fork, any argument works";
    std::vector<mp::Lock> locks(2);
    try {
        mp::Pool pool(
            mp::PoolOptions{.processes = 1, .initializer = mp::PoolInitializer([](std::vector<mp::Lock>) {}, locks)});
        ADD_FAILURE() << "the pool started";
    } catch (const mp::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("initializer cannot be sent"), std::string::npos) << e.what();
    }
}

int initializer_runs = 0;  // per process: counts the initializer's runs in this worker
void count_initializer_run() { ++initializer_runs; }
std::pair<int, int> pid_and_initializer_runs(int) {
    std::this_thread::sleep_for(2ms);  // lets every worker take some tasks
    return {::getpid(), initializer_runs};
}

// The same under every start method: a plain function as initializer, seen through a global.
TEST_F(PoolApi, InitializerFunctionRunsOnceInEveryWorkerBeforeItsFirstTask) {
    mp::Pool pool(mp::PoolOptions{.processes = 3, .initializer = count_initializer_run});
    std::vector<int> xs(30);
    std::iota(xs.begin(), xs.end(), 0);
    const auto seen = pool.map(pid_and_initializer_runs, xs, 1);
    const auto workers = pool.worker_pids();
    for (const auto& [pid, runs] : seen) {
        EXPECT_EQ(runs, 1) << "in worker " << pid;
        EXPECT_NE(std::find(workers.begin(), workers.end(), pid), workers.end()) << pid;
    }
    EXPECT_EQ(initializer_runs, 0);  // never in the parent
}

TEST_F(PoolApi, MaxTasksPerChildReplacesWorkersAndLosesNothing) {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .maxtasksperchild = 3});
    std::vector<int> xs(30);
    std::iota(xs.begin(), xs.end(), 0);
    const auto pids = pool.map(worker_pid, xs, 1);
    EXPECT_GE(std::set<int>(pids.begin(), pids.end()).size(), 10u);  // 30 tasks / 3 per worker
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 10; ++i) rs.push_back(pool.apply_async(square, i));
    pool.close();
    pool.join();  // must not hang with lifetime-limited workers and pending tasks
    for (int i = 0; i < 10; ++i) EXPECT_EQ(rs[std::size_t(i)].get(), i * i);
}

}  // namespace
