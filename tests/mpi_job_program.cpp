// A program tests/test_mpi_jobs.cpp runs under mpiexec, one scenario per run (argv[1]):
//   lose-rank: rank 2's agent is SIGKILLed by one of its own tasks, mid-burst;
//   stop-rank: rank 2's agent is SIGSTOPped by one of its own tasks, mid-burst;
//   refused:   nothing but a pool start (the test runs other binaries on ranks 1 and 2);
//   two-hosts: tasks that say which network namespace ran them, and one that crashes on rank 2
//              (the test puts rank 2 on another "host");
//   idle-rank-dies: rank 2's agent is killed between two pools; the second starts on rank 1;
//   busy-not-lost: a rank running one long task, with a window grown large by short ones, is
//              still answering: nothing is lost (lost_after 2 s, the task 4 s);
//   vanish:    a burst of tasks during which the test cuts rank 2's host off the network.
// It prints what rank 0 saw, a line per fact, for the test to check.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "polyproc/mpi.hpp"
#include "polyproc/polyproc.hpp"

namespace mp = polyproc;

namespace {
// Rank 2's third task sends `fault` to its agent (the worker's parent). main runs on rank 0 only:
// what the ranks must know travels with the task.
int tasks_here = 0;
int task(int x, int fault) {
    if (mp::mpi::rank() == 2 && ++tasks_here == 3) ::kill(::getppid(), fault);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return x;
}
int square(int x) { return x * x; }
std::string network_namespace(int ms) {  // sleeps first: a rank then holds only a couple at a time
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    char link[64] = {};
    return ::readlink("/proc/self/ns/net", link, sizeof link - 1) > 0 ? link : "?";
}
int crash_on_rank_2(int x) {
    if (mp::mpi::rank() == 2) {
        std::signal(SIGSEGV, SIG_DFL);  // under sanitizers, their handler would turn it into exit(1)
        std::raise(SIGSEGV);
    }
    return x;
}

// Kills this rank's agent (the worker's parent) half a second from now, from a process of its own
// that outlives the pool.
int kill_my_agent_soon(int) {
    if (mp::mpi::rank() != 2) return 0;
    const pid_t agent = ::getppid();
    if (::fork() == 0) {
        ::setsid();
        ::usleep(500'000);
        ::kill(agent, SIGKILL);
        ::_exit(0);
    }
    return 1;
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

// Waits for every result of a burst (the i-th should be expected[i]) and prints what came back:
// how many were right or lost, whether any was lost, and the last loss. Returns the losses.
int report_burst(std::vector<mp::AsyncResult<int>>& results, const std::vector<int>& expected) {
    int ok = 0, lost = 0;
    std::string lost_what;
    for (std::size_t i = 0; i < results.size(); ++i) {
        try {
            ok += results[i].get(std::chrono::seconds(60)) == expected[i];
        } catch (const mp::WorkerLostError& e) {
            ++lost;
            lost_what = e.what();
        }
    }
    std::cout << "ok+lost " << ok + lost << std::endl;
    std::cout << "lost some " << (lost > 0) << std::endl;
    std::cout << "lost: " << lost_what << std::endl;
    return lost;
}

void idle_rank_dies() {
    {
        mp::Pool pool(mp::PoolOptions{.backend = mp::mpi::world()});
        int armed = 0;
        for (int i = 0; i < 20 && !armed; ++i) armed = pool.map(kill_my_agent_soon, std::vector{0, 0}, 1)[1];
        std::cout << "armed " << armed << std::endl;
        pool.close();
        pool.join();
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));  // rank 2's agent dies meanwhile, unwatched
    {
        mp::Pool second(mp::PoolOptions{.backend = mp::mpi::world()});
        std::cout << "second pool size " << second.size() << std::endl;
        std::cout << "second pool works " << second.map(square, std::vector{1, 2, 3}).back() << std::endl;
    }
    mp::Pool third(mp::PoolOptions{.backend = mp::mpi::world()});
    std::cout << "third pool size " << third.size() << std::endl;
}

void busy_not_lost() {
    mp::Pool pool(
        mp::PoolOptions{.backend = mp::mpi::world(mp::mpi::WorldOptions{.lost_after = std::chrono::seconds(2)})});
    std::vector<int> xs(20000, 0);
    pool.map(sleep_ms, xs, 1);  // short tasks: both windows grow large
    std::vector<mp::AsyncResult<int>> results;
    std::vector<int> expected{4000};
    results.push_back(pool.apply_async(sleep_ms, 4000));
    for (int i = 0; i < 10; ++i) {
        results.push_back(pool.apply_async(sleep_ms, 1));
        expected.push_back(1);
    }
    const int lost = report_burst(results, expected);
    std::cout << "lost " << lost << " workers " << pool.size() << std::endl;
}

void vanish() {
    mp::Pool pool(
        mp::PoolOptions{.backend = mp::mpi::world(mp::mpi::WorldOptions{.lost_after = std::chrono::seconds(3)})});
    std::vector<mp::AsyncResult<int>> results;
    for (int i = 0; i < 100; ++i) results.push_back(pool.apply_async(sleep_ms, 100));
    std::cout << "burst started" << std::endl;
    report_burst(results, std::vector<int>(100, 100));
    std::cout << "workers now " << pool.size() << std::endl;
}

void two_hosts() {
    mp::Pool pool(mp::PoolOptions{.backend = mp::mpi::world()});
    const auto where = pool.map(network_namespace, std::vector<int>(40, 10), 1);
    const std::set<std::string> namespaces(where.begin(), where.end());
    std::cout << "rank 0 in " << network_namespace(0) << std::endl;
    for (const auto& n : namespaces) std::cout << "tasks ran in " << n << std::endl;
    std::vector<int> xs(2000);
    for (int i = 0; i < 2000; ++i) xs[std::size_t(i)] = i;
    const auto squares = pool.map(square, xs);
    bool right = squares.size() == xs.size();
    for (int i = 0; right && i < 2000; ++i) right = squares[std::size_t(i)] == i * i;
    std::cout << "squares right " << right << std::endl;
    int lost = 0;
    for (int i = 0; i < 20; ++i) {
        try {
            pool.apply(crash_on_rank_2, i);
        } catch (const mp::WorkerLostError&) {
            ++lost;
        }
    }
    std::cout << "crashes on rank 2 lost alone " << (lost > 0) << std::endl;
    std::cout << "after " << pool.map(square, std::vector{1, 2, 3}).back() << std::endl;
}
}  // namespace

int main(int argc, char** argv) {
    mp::mpi::init(argc, argv);
    const std::string what = argc > 1 ? argv[1] : "";
    try {
        const std::map<std::string, void (*)()> scenarios{{"two-hosts", two_hosts},
                                                          {"idle-rank-dies", idle_rank_dies},
                                                          {"vanish", vanish},
                                                          {"busy-not-lost", busy_not_lost}};
        if (const auto it = scenarios.find(what); it != scenarios.end()) {
            it->second();
            return 0;
        }
        if (what == "refused") {
            mp::Pool pool(mp::PoolOptions{.backend = mp::mpi::world()});
            std::cout << "started" << std::endl;
            return 1;
        }
        const int fault = what == "stop-rank" ? SIGSTOP : SIGKILL;
        mp::Pool pool(
            mp::PoolOptions{.backend = mp::mpi::world(mp::mpi::WorldOptions{.lost_after = std::chrono::seconds(3)})});
        std::vector<mp::AsyncResult<int>> results;
        std::vector<int> expected;
        for (int x = 0; x < 60; ++x) {
            results.push_back(pool.apply_async(task, x, fault));
            expected.push_back(x);
        }
        report_burst(results, expected);
        std::cout << "workers now " << pool.size() << std::endl;
        std::cout << "after " << pool.map(square, std::vector{1, 2, 3}).back() << std::endl;
        for (const auto& w : mp::mpi::workers()) std::cout << "rank " << w.rank << " alive " << w.alive << std::endl;
    } catch (const std::exception& e) {
        std::cout << what << ": " << e.what() << std::endl;
    }
}
