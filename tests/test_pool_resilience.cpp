// Pool beyond CPython: workers that die mid-task, per-task timeouts, the elastic pool, lazy imap,
// the progress bar. Every test runs real worker processes and kills real ones.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <pty.h>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

class PoolResilience : public ProcessTest {};

int square(int x) { return x * x; }
int die_by_signal(int sig) {
    ::signal(sig, SIG_DFL);  // under sanitizers, their handlers would turn the signal into exit(1)
    ::raise(sig);
    return 0;
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

void expect_worker_lost(mp::AsyncResult<int>& r, int exitcode) {
    try {
        r.get(20s);
        FAIL() << "the task succeeded";
    } catch (const mp::WorkerLostError& e) {
        EXPECT_EQ(e.exitcode(), exitcode) << e.what();
        EXPECT_GT(e.pid(), 0);
        EXPECT_NE(std::string(e.what()).find("apply_async"), std::string::npos) << e.what();
    }
}

TEST_F(PoolResilience, AWorkerKilledBySignalFailsOnlyItsTaskAndIsReplaced) {
    mp::Pool pool(2);
    for (int sig : {SIGKILL, SIGSEGV, SIGABRT}) {
        std::vector<mp::AsyncResult<int>> before, after;
        for (int i = 0; i < 10; ++i) before.push_back(pool.apply_async(square, i));
        auto doomed = pool.apply_async(die_by_signal, sig);
        for (int i = 0; i < 10; ++i) after.push_back(pool.apply_async(square, i));
        expect_worker_lost(doomed, -sig);
        for (int i = 0; i < 10; ++i) {
            EXPECT_EQ(before[std::size_t(i)].get(20s), i * i);
            EXPECT_EQ(after[std::size_t(i)].get(20s), i * i);
        }
        EXPECT_TRUE(eventually([&] { return pool.size() == 2 && pool.worker_pids().size() == 2; }));
    }
    EXPECT_EQ(pool.apply(square, 12), 144);  // still usable
}

int crash_in_a_task_on_purpose(int value) {
    write_to_a_bad_address(value);
    return value;
}

// The worker's crash report (faulthandler) names the function it crashed in; the WorkerLostError
// says so beside the task and the signal.
TEST_F(PoolResilience, AWorkerLostErrorNamesTheTaskTheSignalAndWhereItCrashed) {
    mp::Pool pool(1);
    auto r = pool.apply_async(crash_in_a_task_on_purpose, 5);
    try {
        r.get(60s);
        FAIL() << "the task succeeded";
    } catch (const mp::WorkerLostError& e) {
        const std::string what = e.what();
        EXPECT_EQ(e.exitcode(), -SIGSEGV) << what;
        EXPECT_NE(what.find("apply_async"), std::string::npos) << what;
        EXPECT_NE(what.find(", crashed in write_to_a_bad_address("), std::string::npos) << what;
        EXPECT_NE(what.find("(killed by signal 11, SIGSEGV)"), std::string::npos) << what;
    }
    EXPECT_EQ(pool.apply(square, 3), 9);  // its replacement works
    auto killed = pool.apply_async(die_by_signal, SIGKILL);  // no report: nothing to say where
    try {
        killed.get(60s);
        FAIL() << "the task succeeded";
    } catch (const mp::WorkerLostError& e) {
        EXPECT_EQ(std::string(e.what()).find("crashed in"), std::string::npos) << e.what();
    }
}

TEST_F(PoolResilience, AWorkerThatCallsExitFailsItsTaskWithTheExitCode) {
    mp::Pool pool(2);
    auto r = pool.apply_async([](int code) -> int { std::exit(code); }, 3);
#if defined(__SANITIZE_ADDRESS__)
    // LeakSanitizer runs at exit() and reports what the task had allocated: its exit code wins.
    try {
        r.get(20s);
        FAIL() << "the task succeeded";
    } catch (const mp::WorkerLostError& e) {
        EXPECT_GT(e.exitcode(), 0) << e.what();
    }
#else
    expect_worker_lost(r, 3);
#endif
    EXPECT_EQ(pool.apply(square, 5), 25);
}

int& pid_in(mp::SharedMemory& slot) { return *reinterpret_cast<int*>(slot.buf().data()); }

TEST_F(PoolResilience, AWorkerKilledFromOutsideMidTaskFailsThatTask) {
    // The task tells which worker runs it through a named segment: a task's arguments are values,
    // so it gets the segment's name (this works under every start method).
    mp::SharedMemory slot(std::nullopt, true, sizeof(int));
    mp::Pool pool(2);
    auto r = pool.apply_async(
        [](const std::string& slot_name) {
            mp::SharedMemory pid_slot(slot_name);
            std::atomic_ref<int>(pid_in(pid_slot)).store(::getpid());
            std::this_thread::sleep_for(60s);
            return 0;
        },
        slot.name());
    int pid = 0;
    const bool reported = eventually([&] { return (pid = std::atomic_ref<int>(pid_in(slot)).load()) != 0; }, 20s);
    slot.unlink();
    ASSERT_TRUE(reported);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    try {
        r.get(20s);
        FAIL() << "no error";
    } catch (const mp::WorkerLostError& e) {
        EXPECT_EQ(e.pid(), pid);
        EXPECT_EQ(e.exitcode(), -SIGKILL);
    }
    EXPECT_EQ(pool.apply(square, 4), 16);
}

TEST_F(PoolResilience, AnIdleWorkerKilledFromOutsideIsReplacedSilently) {
    mp::Pool pool(2);
    const auto pids = pool.worker_pids();
    ASSERT_EQ(pids.size(), 2u);
    ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
    EXPECT_TRUE(eventually([&] {
        auto now = pool.worker_pids();
        return now.size() == 2 && std::find(now.begin(), now.end(), pids[0]) == now.end();
    }));
    std::vector<int> xs(100);
    std::iota(xs.begin(), xs.end(), 0);
    EXPECT_EQ(pool.map(square, xs, 1).at(99), 99 * 99);
}

TEST_F(PoolResilience, MapAndImapRaiseTheLossAtThatItemsPosition) {
    mp::Pool pool(2);
    auto f = [](int x) {
        if (x == 5) die_by_signal(SIGKILL);
        return x * 10;
    };
    std::vector<int> xs(12);
    std::iota(xs.begin(), xs.end(), 0);
    EXPECT_THROW_WITH(pool.map(f, xs, 1), mp::WorkerLostError, "map item 5");

    auto it = pool.imap(f, xs);
    for (int i = 0; i < 12; ++i) {
        if (i == 5) {
            EXPECT_THROW_WITH(it.next(20s), mp::WorkerLostError, "imap item 5");
        } else {
            EXPECT_EQ(it.next(20s), i * 10);
        }
    }
    EXPECT_EQ(it.next(), std::nullopt);
}

TEST_F(PoolResilience, RandomCrashesFailExactlyTheCrashedTasks) {
    mp::Pool pool(2);
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 300; ++i)
        rs.push_back(pool.apply_async(
            [](int x) {
                if (x % 10 == 7) die_by_signal(SIGKILL);
                return x + 1;
            },
            i));
    int lost = 0;
    for (int i = 0; i < 300; ++i) {
        if (i % 10 == 7) {
            EXPECT_THROW(rs[std::size_t(i)].get(60s), mp::WorkerLostError) << i;
            ++lost;
        } else {
            EXPECT_EQ(rs[std::size_t(i)].get(60s), i + 1);
        }
    }
    EXPECT_EQ(lost, 30);
}

// Busy for about `us` microseconds, then returns x squared.
int busy_square(int x, int us) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
    while (std::chrono::steady_clock::now() < end) {
    }
    return x * x;
}

// Workers SIGKILLed at random moments (between tasks, while taking one, mid-task): every task
// either succeeds or fails with WorkerLostError, none hangs, and no more fail than were killed.
TEST_F(PoolResilience, WorkersKilledAtRandomMomentsNeverLoseOrHangATask) {
    mp::Pool pool(2);
    constexpr int kTasks = 10000;
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < kTasks; ++i) rs.push_back(pool.apply_async(busy_square, i % 1000, 50));
    std::mt19937 rng(12345);
    int kills = 0;
    for (int k = 0; k < 30; ++k) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 5000));
        const auto pids = pool.worker_pids();
        if (pids.empty()) continue;
        if (::kill(pids[rng() % pids.size()], SIGKILL) == 0) ++kills;
    }
    int lost = 0;
    for (int i = 0; i < kTasks; ++i) {
        try {
            EXPECT_EQ(rs[std::size_t(i)].get(60s), (i % 1000) * (i % 1000));
        } catch (const mp::WorkerLostError&) {
            ++lost;
        }
    }
    EXPECT_LE(lost, kills);
    EXPECT_GE(lost, 1);  // the kills did land mid-task
    EXPECT_EQ(pool.apply(square, 3), 9);
}

// ---- crashes in the middle of large submissions (#12) ----
// 20 000 tasks are far more than the task queue's hot window holds and than a worker takes while
// they are being submitted: workers die while the parent is still writing tasks.
constexpr int kLargeSubmission = 20000;

int crash_at_2000(int x) {
    if (x == 2000) die_by_signal(SIGSEGV);
    return x + 1;
}
int crash_at_3000_and_11000(int x) {
    if (x == 3000 || x == 11000) die_by_signal(SIGSEGV);
    return x + 1;
}

TEST_F(PoolResilience, AWorkerDyingDuringALargeMapSubmissionFailsThatItem) {
    HangGuard guard(150s, "a chunksize-1 map of 20000 tasks with a crash at item 2000");
    mp::Pool pool(1);
    std::vector<int> xs(kLargeSubmission);
    std::iota(xs.begin(), xs.end(), 0);
    EXPECT_THROW_WITH(pool.map(crash_at_2000, xs, 1), mp::WorkerLostError, "map item 2000");
    // The replacement worker ran everything else; the pool goes on.
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
}

TEST_F(PoolResilience, ManyApplyAsyncWithCrashesMidSubmissionFailExactlyThoseTasks) {
    for (const int workers : {1, 2}) {
        SCOPED_TRACE(std::to_string(workers) + " workers");
        HangGuard guard(150s, "20000 apply_async with two crashes on Pool(" + std::to_string(workers) + ")");
        mp::Pool pool(workers);
        std::vector<mp::AsyncResult<int>> rs;
        rs.reserve(kLargeSubmission);
        for (int i = 0; i < kLargeSubmission; ++i) rs.push_back(pool.apply_async(crash_at_3000_and_11000, i));
        pool.close();  // close and join race the deaths and replacements too
        pool.join();
        for (int i = 0; i < kLargeSubmission; ++i) {
            if (i == 3000 || i == 11000) {
                EXPECT_THROW(rs[std::size_t(i)].get(0ms), mp::WorkerLostError) << i;
            } else {
                ASSERT_EQ(rs[std::size_t(i)].get(0ms), i + 1) << i;
            }
        }
    }
}

TEST_F(PoolResilience, AnImapFeederGoesOnPastAWorkerDyingMidStream) {
    HangGuard guard(150s, "an imap of 20000 items with a crash at item 2000");
    mp::Pool pool(mp::PoolOptions{.processes = 1, .imap_window = 4096});
    std::vector<int> xs(kLargeSubmission);
    std::iota(xs.begin(), xs.end(), 0);
    auto it = pool.imap(crash_at_2000, xs, 1);
    for (int i = 0; i < kLargeSubmission; ++i) {
        if (i == 2000) {
            EXPECT_THROW_WITH(it.next(60s), mp::WorkerLostError, "imap item 2000");
        } else {
            ASSERT_EQ(it.next(60s), i + 1) << i;
        }
    }
    EXPECT_EQ(it.next(), std::nullopt);
}

// A killer SIGKILLs a random worker every 20 ms while a chunksize-1 map of 20 000 tasks is
// submitted and run: the map finishes or raises WorkerLostError, never hangs.
TEST_F(PoolResilience, AMapUnderARandomKillerEndsEveryTime) {
    HangGuard guard(150s, "a chunksize-1 map of 20000 tasks under a killer");
    mp::Pool pool(2);
    std::vector<int> xs(kLargeSubmission);
    std::iota(xs.begin(), xs.end(), 0);
    std::atomic<int> kills{0};
    std::atomic<bool> stop{false};
    std::thread killer([&] {
        std::mt19937 rng(4242);
        for (int k = 0; k < 1500 && !stop.load(); ++k) {
            std::this_thread::sleep_for(20ms);
            const auto pids = pool.worker_pids();
            if (!pids.empty() && ::kill(pids[rng() % pids.size()], SIGKILL) == 0) ++kills;
        }
    });
    struct StopKiller {  // however the test ends
        std::atomic<bool>& stop;
        std::thread& killer;
        ~StopKiller() {
            stop.store(true);
            killer.join();
        }
    } stop_killer{stop, killer};
    int lost_maps = 0;
    for (int round = 0; round < 3; ++round) {
        try {
            const auto r = pool.map([](int x) { return busy_square(x % 1000, 20); }, xs, 1);
            ASSERT_EQ(r.size(), xs.size());
            for (int i = 0; i < kLargeSubmission; ++i) ASSERT_EQ(r[std::size_t(i)], (i % 1000) * (i % 1000));
        } catch (const mp::WorkerLostError&) {
            ++lost_maps;
        }
    }
    stop.store(true);
    EXPECT_GT(kills.load(), 0);
    EXPECT_GT(lost_maps, 0) << "the kills never landed mid-task";
}

// An argument whose encoding takes a while, in the submitting process only: close() lands while
// the task is being sized or written.
struct SlowToWrite {
    static inline pid_t writer = 0;
    int value = 0;
    std::string unused;  // not trivially copyable: encoded through save()
    template <class Archive>
    void save(Archive& ar) const {
        if (::getpid() == writer) std::this_thread::sleep_for(100ms);
        ar(value);
    }
    template <class Archive>
    void load(Archive& ar) {
        ar(value);
    }
};

// close() while another thread's task is in flight, on a pool whose only worker retires after
// each task: a task that was admitted runs (it is counted before close() can see the pool idle);
// one that was not raises "Pool not running". Never a hang, never a task failed as terminated.
TEST_F(PoolResilience, CloseRacingATaskInFlightRunsItOrRefusesIt) {
    HangGuard guard(150s, "close() racing a submission in flight");
    SlowToWrite::writer = ::getpid();
    int ran = 0;
    // The task is admitted after its two encodings, >= 200 ms: the early rounds close before
    // that, the late ones after it, with room to spare on a loaded machine (a margin of 10 ms
    // once failed CI's run).
    for (int round = 0; round < 5; ++round) {
        mp::Pool pool(mp::PoolOptions{.processes = 1, .maxtasksperchild = 1});
        EXPECT_EQ(pool.apply(square, 3), 9);  // its worker retires after this task
        std::optional<mp::AsyncResult<int>> r;
        std::thread submitter([&] {
            try {
                r.emplace(pool.apply_async([](SlowToWrite s) { return s.value * 2; }, SlowToWrite{21, {}}));
            } catch (const mp::ValueError&) {  // "Pool not running": closed before it was admitted
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(60 + 100 * round));
        pool.close();
        submitter.join();
        pool.join();
        if (r) {
            EXPECT_EQ(r->get(0ms), 42);
            ++ran;
        }
    }
    EXPECT_GT(ran, 0);
}

// terminate() while another thread submits and workers crash: submissions stop with "Pool not
// running", and every result submitted before settles (a result or an error), none hangs.
TEST_F(PoolResilience, TerminateRacingSubmissionsAndDeathsSettlesEveryResult) {
    HangGuard guard(150s, "terminate() racing a submitting thread and crashing workers");
    mp::Pool pool(2);
    std::vector<mp::AsyncResult<int>> rs;
    std::atomic<int> submitted{0};
    std::thread submitter([&] {
        for (int i = 0; i < 200000; ++i) {
            try {
                rs.push_back(pool.apply_async(
                    [](int x) {
                        if (x % 997 == 0) die_by_signal(SIGKILL);
                        return x;
                    },
                    i));
            } catch (const mp::ValueError&) {
                return;  // "Pool not running"
            }
            submitted.store(i + 1);
        }
    });
    eventually([&] { return submitted.load() >= 30000; }, 60s);
    pool.terminate();
    submitter.join();
    int done = 0, failed = 0;
    for (auto& r : rs) {
        try {
            r.get(60s);
            ++done;
        } catch (const mp::TimeoutError&) {
            ADD_FAILURE() << "a result never settled";
            break;
        } catch (const mp::ProcessError&) {  // WorkerLostError, or "Pool was terminated ..."
            ++failed;
        }
    }
    EXPECT_EQ(std::size_t(done + failed), rs.size());
}

TEST_F(PoolResilience, TaskTimeoutKillsTheStuckWorkerAndFailsOnlyThatTask) {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .task_timeout = 300ms});
    const auto pids_before = pool.worker_pids();
    auto stuck = pool.apply_async(sleep_ms, 60'000);
    std::vector<mp::AsyncResult<int>> quick;
    for (int i = 0; i < 20; ++i) quick.push_back(pool.apply_async(square, i));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW_WITH(stuck.get(30s), mp::TimeoutError, "task_timeout");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);  // does not hang
    for (int i = 0; i < 20; ++i) EXPECT_EQ(quick[std::size_t(i)].get(20s), i * i);
    // The stuck worker is gone and replaced.
    EXPECT_TRUE(eventually([&] {
        const auto now = pool.worker_pids();
        return now.size() == 2 &&
               std::set<pid_t>(now.begin(), now.end()) != std::set<pid_t>(pids_before.begin(), pids_before.end());
    }));
    // Tasks within the limit are untouched.
    EXPECT_EQ(pool.apply(sleep_ms, 50), 50);
    EXPECT_THROW_WITH(mp::Pool(mp::PoolOptions{.processes = 1, .task_timeout = 0ms}), mp::ValueError, "task_timeout");
}

// Holds its worker until `path` exists (at most 30 s), so that tasks keep waiting however slowly
// a loaded machine starts workers.
int hold_until_file_exists(std::string path) {
    for (int i = 0; i < 6000 && ::access(path.c_str(), F_OK) != 0; ++i) std::this_thread::sleep_for(5ms);
    return 200;
}

TEST_F(PoolResilience, ElasticPoolGrowsWhileTasksWaitAndShrinksWhenIdle) {
    mp::Pool pool(mp::PoolOptions{.min_processes = 1, .max_processes = 4, .idle_timeout = 300ms});
    EXPECT_EQ(pool.size(), 1u);
    const std::string release = testing::TempDir() + "polyproc-elastic-" + std::to_string(::getpid());
    ::unlink(release.c_str());
    struct Release {  // removes the file however the test ends (the pool's terminate ends the tasks)
        std::string path;
        ~Release() { ::unlink(path.c_str()); }
    } cleanup{release};
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 12; ++i) rs.push_back(pool.apply_async(hold_until_file_exists, release));
    std::size_t peak = 0;
    EXPECT_TRUE(eventually([&] {
        peak = std::max(peak, pool.size());
        return peak == 4;
    }));
    EXPECT_LE(pool.size(), 4u);  // never beyond max_processes
    FILE* f = std::fopen(release.c_str(), "w");
    ASSERT_NE(f, nullptr) << release;
    std::fclose(f);
    for (auto& r : rs) EXPECT_EQ(r.get(60s), 200);
    EXPECT_EQ(peak, 4u);
    EXPECT_TRUE(eventually([&] { return pool.size() == 1 && pool.worker_pids().size() == 1; }));
    EXPECT_EQ(pool.apply(square, 6), 36);  // the one left still works
    EXPECT_THROW_WITH(mp::Pool(mp::PoolOptions{.min_processes = 3, .max_processes = 2}), mp::ValueError,
                      "min_processes must not exceed max_processes");
}

TEST_F(PoolResilience, ImapPullsAnEndlessInputOnDemandInBoundedMemory) {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .imap_window = 16});
    std::size_t pulled = 0;
    auto endless = std::views::iota(0) | std::views::transform([&pulled](int i) {
                       ++pulled;
                       return i;
                   });
    std::size_t consumed = 0, most_ahead = 0;
    for (int r : pool.imap(square, endless, 4)) {
        EXPECT_EQ(r, int(consumed * consumed));
        ++consumed;
        most_ahead = std::max(most_ahead, pulled - consumed);
        if (consumed == 20000) break;
    }
    EXPECT_LE(most_ahead, 16u * 4 + 4);  // at most the window's chunks in flight
    std::size_t unordered = 0;
    for (int r : pool.imap_unordered(square, endless, 1)) {
        (void)r;
        if (++unordered == 5000) break;
    }
    EXPECT_EQ(unordered, 5000u);
}

TEST_F(PoolResilience, ImapInputThatThrowsSurfacesAfterTheResultsBeforeIt) {
    mp::Pool pool(2);
    auto failing = std::views::iota(0, 10) | std::views::transform([](int i) {
                       if (i == 3) throw std::runtime_error("input failed at 3");
                       return i;
                   });
    auto it = pool.imap(square, failing);
    EXPECT_EQ(it.next(), 0);
    EXPECT_EQ(it.next(), 1);
    EXPECT_EQ(it.next(), 4);
    EXPECT_THROW_WITH(it.next(), std::runtime_error, "input failed at 3");
    EXPECT_EQ(it.next(), std::nullopt);
    EXPECT_THROW_WITH(pool.map(square, failing), std::runtime_error, "input failed at 3");
    EXPECT_EQ(pool.apply(square, 2), 4);  // the pool stays usable
}

TEST_F(PoolResilience, JoinAfterCloseFinishesAnImapStillFeeding) {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .imap_window = 4});
    std::vector<int> xs(100);
    std::iota(xs.begin(), xs.end(), 0);
    auto it = pool.imap(square, xs);
    pool.close();
    pool.join();  // submits what is left and waits for it, like Python
    for (int i = 0; i < 100; ++i) EXPECT_EQ(it.next(0ms), i * i);
    EXPECT_EQ(it.next(), std::nullopt);
}

TEST_F(PoolResilience, AnInitializerThatAlwaysFailsBreaksThePoolInsteadOfLooping) {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .initializer = [] { throw std::runtime_error("no database"); }});
    // Whether the pool broke before this submission or after, the task fails saying why.
    EXPECT_THROW_WITH(pool.apply_async(square, 2).get(30s), mp::ProcessError, "initializer: no database");
    EXPECT_TRUE(eventually([&] {
        try {
            pool.apply_async(square, 2);
            return false;
        } catch (const mp::ProcessError& e) {
            return std::string(e.what()).find("no database") != std::string::npos;
        }
    }));
    EXPECT_TRUE(eventually([&] { return pool.worker_pids().empty(); }));
}

// Created before the pools below, so that their workers share it.
std::optional<mp::RawValue<int>> starts;

TEST_F(PoolResilience, SomeInitializerFailuresDoNotBreakAPoolWithHealthyWorkers) {
    POLYPROC_FORK_ONLY();  // the initializer counts its runs in `starts`, which only fork hands over (no initargs)
    starts.emplace(0);
    mp::Pool pool(mp::PoolOptions{.processes = 4, .initializer = [] {
                                      if (std::atomic_ref<int>(starts->get_obj()).fetch_add(1) < 3) {
                                          std::this_thread::sleep_for(200ms);  // the healthy one is ready first
                                          throw std::runtime_error("flaky start");
                                      }
                                  }});
    std::vector<int> xs(50);
    std::iota(xs.begin(), xs.end(), 0);
    EXPECT_EQ(pool.map(square, xs, 1).at(49), 49 * 49);
    // The three that failed were replaced (7 starts), and the pool still works.
    EXPECT_TRUE(eventually([&] { return starts->value() >= 7 && pool.worker_pids().size() == 4; }));
    EXPECT_EQ(pool.apply(square, 9), 81);
}

TEST_F(PoolResilience, AnImapWhosePoolWasTerminatedEndsInsteadOfThrowingForever) {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .imap_window = 4});
    auto it = pool.imap(sleep_ms, std::vector<int>(100, 1));
    EXPECT_EQ(it.next(20s), 1);
    pool.terminate();
    int values = 0, errors = 0;
    bool ended = false;
    for (int i = 0; i < 200 && !ended; ++i) {
        try {
            auto v = it.next(20s);
            if (!v)
                ended = true;
            else
                ++values;
        } catch (const mp::ProcessError&) {  // "Pool was terminated before the task finished"
            ++errors;
        } catch (const mp::ValueError&) {  // "Pool not running": no more input is submitted
            ++errors;
        }
    }
    EXPECT_TRUE(ended);
    EXPECT_LE(values + errors, 8);  // at most the window's chunks, plus the end
}

TEST(Progress, RendersPercentBarCountElapsedEtaAndRate) {
    EXPECT_EQ(mp::detail::render_progress(450, 1000, std::chrono::duration<double>(2.0), 10),
              " 45%|████▌     | 450/1000 [00:02<00:02, 225.00it/s]");
    EXPECT_EQ(mp::detail::render_progress(10, 10, std::chrono::duration<double>(65.0), 4),
              "100%|████| 10/10 [01:05<00:00, 0.15it/s]");
    EXPECT_EQ(mp::detail::render_progress(7, 0, std::chrono::duration<double>(1.0)), "7it [00:01, 7.00it/s]");
}

// Runs a pool with a progress bar in a child whose stderr is a pipe or a terminal; returns what
// the child wrote there. The descriptor reaches the child as an mp::DupFd.
std::string child_stderr(bool on_terminal) {
    int master = -1, out[2];
    if (on_terminal) {
        int slave = -1;
        if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return "openpty failed";
        out[0] = master;
        out[1] = slave;
    } else if (::pipe(out) != 0) {
        return "pipe failed";
    }
    mp::Process child(
        [](const mp::DupFd& handle) {
            const mp::FileDescriptor fd = handle.detach();
            ::dup2(fd.get(), STDERR_FILENO);
            mp::Pool pool(2);
            std::vector<int> xs(50);
            std::iota(xs.begin(), xs.end(), 0);
            long sum = 0;
            for (int r : mp::progress(pool.imap(square, xs), xs.size())) sum += r;
            if (sum != 40425) std::abort();
        },
        mp::DupFd(out[1]));
    ::close(out[1]);
    child.start();
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;  // EOF (pipe) or EIO (pty: the child is gone)
        text.append(buf, std::size_t(n));
    }
    ::close(out[0]);
    child.join();
    EXPECT_EQ(child.exitcode(), 0);
    return text;
}

TEST_F(PoolResilience, ProgressDrawsOnATerminalAndStaysQuietOtherwise) {
#if defined(__SANITIZE_THREAD__)
    // The DupFd starts the sharer thread, so the child is forked from a threaded process, and
    // ThreadSanitizer refuses to start the child pool's threads after that.
    if (mp::get_start_method() == "fork") GTEST_SKIP() << "ThreadSanitizer: no threads after a multi-threaded fork";
#endif
    EXPECT_EQ(child_stderr(false), "");
    const std::string drawn = child_stderr(true);
    EXPECT_NE(drawn.find("100%|"), std::string::npos) << drawn;
    EXPECT_NE(drawn.find("| 50/50 ["), std::string::npos) << drawn;
    EXPECT_NE(drawn.find("it/s]"), std::string::npos) << drawn;
}

}  // namespace
