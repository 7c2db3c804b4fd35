// polyproc/mpi.hpp: the whole Pool API on the worker ranks of an MPI job. This binary runs under
// mpiexec (ctest: mpi.pool, three ranks): rank 0 runs the tests, ranks 1 and 2 serve as workers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "leak_check.hpp"
#include "polyproc/mpi.hpp"
#include "polyproc/polyproc.hpp"
#include "support.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

namespace {

mp::PoolOptions on_ranks(mp::PoolOptions o = {}) {
    o.backend = mp::mpi::world();
    return o;
}

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int rank_here(int) { return mp::mpi::rank(); }
// Long enough that a rank holds only a couple at a time (its window is about 1 ms of work).
int rank_after(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return mp::mpi::rank();
}
int fail_on_odd(int x) {
    if (x % 2) throw std::out_of_range("odd " + std::to_string(x));
    return x;
}
struct Unregistered : std::runtime_error {
    using std::runtime_error::runtime_error;
};
int throw_unregistered(int) { throw Unregistered("not known to rank 0"); }
int crash_on_three(int x) {
    if (x == 3) {
        std::signal(SIGSEGV, SIG_DFL);  // under sanitizers, their handler would turn it into exit(1)
        std::raise(SIGSEGV);
    }
    return x;
}
int slow(int x) {
    std::this_thread::sleep_for(std::chrono::seconds(x));
    return x;
}
int initialized = 0;
void set_initialized(int v) { initialized = v; }
int read_initialized(int) { return initialized; }

// CPU seconds this process (or another, by pid) has used.
double cpu_seconds(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(stat)), {});
    std::istringstream rest(s.substr(s.rfind(')') + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) stime = std::stol(field);
    }
    return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST(MpiWorld, KnowsItsWorkerRanks) {
    ASSERT_EQ(mp::mpi::rank(), 0);
    ASSERT_EQ(mp::mpi::size(), 3) << "run under mpiexec -n 3";
    const auto w = mp::mpi::workers();
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0].rank, 1);
    EXPECT_EQ(w[1].rank, 2);
    for (const auto& r : w) {
        EXPECT_TRUE(r.same_program);
        EXPECT_TRUE(r.alive);
        EXPECT_GT(r.pid, 0);
        EXPECT_FALSE(r.host.empty());
    }
}

TEST(MpiPool, TheWholeApiRunsOnTheRanks) {
    HangGuard guard(120s, "the Pool API on MPI ranks");
    mp::Pool pool(on_ranks());
    EXPECT_EQ(pool.size(), 2u);
    EXPECT_EQ(pool.apply(square, 7), 49);
    EXPECT_EQ(pool.apply_async(add, 2, 3).get(10s), 5);

    std::vector<int> xs(1000);
    std::iota(xs.begin(), xs.end(), 0);
    const auto squares = pool.map(square, xs);
    ASSERT_EQ(squares.size(), xs.size());
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(squares[std::size_t(i)], i * i);
    EXPECT_EQ(pool.map(square, xs, 1), squares);   // chunksize 1
    EXPECT_EQ(pool.map(square, xs, 300), squares); // large chunks
    EXPECT_EQ(pool.map_async(square, xs).get(30s), squares);

    std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7, 11}));

    std::vector<int> ordered;
    for (int r : pool.imap(square, xs, 7)) ordered.push_back(r);
    EXPECT_EQ(ordered, squares);
    std::multiset<int> unordered;
    for (int r : pool.imap_unordered(square, xs)) unordered.insert(r);
    EXPECT_EQ(unordered, std::multiset<int>(squares.begin(), squares.end()));

    // Both ranks did work (each rank runs its tasks in a forked worker: rank() is the rank's).
    const auto ranks = pool.map(rank_after, std::vector<int>(20, 10), 1);
    EXPECT_EQ(std::set<int>(ranks.begin(), ranks.end()), (std::set<int>{1, 2}));

    // Callbacks run in rank 0.
    std::atomic<int> called{0};
    auto r = pool.apply_async(mp::Callbacks{.callback = [&](int v) { called += v; }}, square, 4);
    r.wait(10s);
    EXPECT_TRUE(r.successful());
    EXPECT_EQ(called.load(), 16);

    pool.close();
    pool.join();
    EXPECT_THROW(pool.apply(square, 1), mp::ValueError);
}

TEST(MpiPool, ExceptionsComeBackAsTheyDoLocally) {
    HangGuard guard(60s, "exceptions from MPI ranks");
    mp::Pool pool(on_ranks());
    EXPECT_EQ(message_of<std::out_of_range>([&] { pool.apply(fail_on_odd, 3); }), "odd 3");
    auto results = pool.map_async(fail_on_odd, std::vector{0, 2, 5, 4}, 1);
    EXPECT_THROW(results.get(30s), std::out_of_range);
    // A type rank 0 does not know: RemoteError, naming the rank and its host.
    const std::string what = message_of<mp::RemoteError>([&] { pool.apply(throw_unregistered, 0); });
    EXPECT_NE(what.find("not known to rank 0"), std::string::npos) << what;
    EXPECT_NE(what.find("MPI rank "), std::string::npos) << what;
    EXPECT_NE(what.find("host '"), std::string::npos) << what;
    EXPECT_EQ(pool.apply(square, 3), 9);  // and the pool goes on
}

TEST(MpiPool, ACrashingTaskFailsAloneAndTheRankGoesOn) {
    HangGuard guard(120s, "a crash on an MPI rank");
    mp::Pool pool(on_ranks());
    std::vector<int> xs{0, 1, 2, 3, 4, 5, 6, 7};
    std::vector<mp::AsyncResult<int>> rs;
    for (int x : xs) rs.push_back(pool.apply_async(crash_on_three, x));
    for (int x : xs) {
        if (x == 3) {
            const std::string what = message_of<mp::WorkerLostError>([&] { rs[std::size_t(x)].get(60s); });
            EXPECT_NE(what.find("SIGSEGV"), std::string::npos) << what;
            EXPECT_NE(what.find("MPI rank "), std::string::npos) << what;
        } else {
            EXPECT_EQ(rs[std::size_t(x)].get(60s), x);
        }
    }
    EXPECT_EQ(pool.size(), 2u);  // both ranks are still there
    EXPECT_EQ(pool.map(square, std::vector{1, 2, 3}), (std::vector{1, 4, 9}));
}

TEST(MpiPool, TimeoutsInitializerAndMaxtasksperchild) {
    HangGuard guard(120s, "options on MPI ranks");
    {
        mp::Pool pool(on_ranks({.task_timeout = 500ms}));
        EXPECT_THROW(pool.apply(slow, 5), mp::TimeoutError);
        EXPECT_EQ(pool.apply(slow, 0), 0);
    }
    {
        mp::Pool pool(on_ranks({.initializer = mp::PoolInitializer(set_initialized, 42), .maxtasksperchild = 2}));
        const auto got = pool.map(read_initialized, std::vector<int>(20, 0), 1);
        EXPECT_EQ(got, std::vector<int>(20, 42));
    }
    // processes takes that many ranks; more than there are is refused.
    {
        mp::Pool one(on_ranks({.processes = 1}));
        EXPECT_EQ(one.size(), 1u);
        const auto ranks = one.map(rank_here, std::vector<int>(20, 0), 1);
        EXPECT_EQ(std::set<int>(ranks.begin(), ranks.end()), std::set<int>{1});
    }
    EXPECT_THROW(mp::Pool(on_ranks({.processes = 3})), mp::ValueError);
    EXPECT_THROW(mp::Pool(on_ranks({.max_processes = 2})), mp::ValueError);
    EXPECT_THROW(mp::Pool(on_ranks({.start_method = "spawn"})), mp::ValueError);
}

TEST(MpiPool, OnePoolAtATimeAndThenTheNext) {
    HangGuard guard(60s, "pools one after another");
    mp::Pool first(on_ranks());
    EXPECT_THROW(mp::Pool second(on_ranks()), mp::ValueError);
    first.terminate();
    first.join();
    for (int i = 0; i < 5; ++i) {
        mp::Pool next(on_ranks());
        EXPECT_EQ(next.apply(square, i), i * i);
    }
}

TEST(MpiPool, TerminateMidMapFailsWhatIsLeftAndReturns) {
    HangGuard guard(60s, "terminate on MPI ranks");
    mp::Pool pool(on_ranks());
    auto r = pool.map_async(slow, std::vector<int>(10, 1), 1);
    std::this_thread::sleep_for(200ms);
    pool.terminate();
    pool.join();
    EXPECT_THROW(r.get(10s), mp::ProcessError);
    mp::Pool again(on_ranks());
    EXPECT_EQ(again.apply(square, 5), 25);
}

// Nothing spins while idle: rank 0 and the worker ranks use next to no CPU while a pool waits
// (a busy-polling MPI would use a whole core each). A generous bound, not a measurement.
TEST(MpiPool, IdleRanksBurnNoCpu) {
    mp::Pool pool(on_ranks());
    EXPECT_EQ(pool.apply(square, 2), 4);
    std::vector<pid_t> pids{::getpid()};
    for (const auto& w : mp::mpi::workers()) pids.push_back(w.pid);
    std::vector<double> before;
    for (pid_t p : pids) before.push_back(cpu_seconds(p));
    std::this_thread::sleep_for(2s);
    for (std::size_t i = 0; i < pids.size(); ++i)
        EXPECT_LT(cpu_seconds(pids[i]) - before[i], 0.3) << "process " << pids[i] << " was busy while the pool idled";
}

int main(int argc, char** argv) {
    mp::mpi::init(argc, argv);  // ranks 1 and 2 serve here
    testing::InitGoogleTest(&argc, argv);
    polyproc_test::install_leak_check();  // no /dev/shm of its own: Open MPI's shared memory is there
    return RUN_ALL_TESTS();
}
