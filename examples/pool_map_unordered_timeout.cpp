// pool_map_unordered_timeout — seed 002 (002_99cc650f6dfa1104.txt), lines 202-261 ("using a set
// of worker processes"; the program is the Pool example of Python 2's documentation): a Pool
// object creates a set of worker processes. map returns the results in input order;
// imap_unordered yields them as they finish, in any order; apply_async(f, 20) runs f in only one
// worker, and get(timeout=1) waits for its result; os.getpid run through the pool returns the
// pid of the worker that ran it, and several apply_async calls *may* use several workers;
// get(timeout=1) on a task that sleeps 10 s raises multiprocessing.TimeoutError (the task keeps
// running).
//
// The seed runs as written. Changes: the lists are printed as Python prints them; range(10) is
// std::views::iota(0, 10). time.sleep returns None, which `print res.get(timeout=1)` would print;
// a void task's get() returns nothing, so the port prints "None" after it (never reached: get()
// raises). The seed reuses one variable `res` for results of three types (int, pid_t, None);
// here they are res, res2 and res3. The sleeping worker is not waited for: the Pool's destructor
// terminates it at the end of main, as Python's exit does, so the program ends after about 1 s,
// as Python's does.
#include <chrono>
#include <iostream>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

int f(int x) { return x * x; }

// time.sleep
void sleep_seconds(int seconds) { std::this_thread::sleep_for(std::chrono::seconds(seconds)); }

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool pool(4);  // start 4 worker processes

    // print "[0, 1, 4,..., 81]"
    std::cout << py::repr(pool.map(f, std::views::iota(0, 10))) << "\n" << std::flush;

    // print same numbers in arbitrary order
    for (int i : pool.imap_unordered(f, std::views::iota(0, 10))) std::cout << i << "\n" << std::flush;

    // evaluate "f(20)" asynchronously
    auto res = pool.apply_async(f, 20);       // runs in *only* one process
    std::cout << res.get(1s) << "\n" << std::flush;  // prints "400"

    // evaluate "os.getpid()" asynchronously
    auto res2 = pool.apply_async(getpid);       // runs in *only* one process
    std::cout << res2.get(1s) << "\n" << std::flush;  // prints the PID of that process

    // launching multiple evaluations asynchronously *may* use more processes
    std::vector<mp::AsyncResult<pid_t>> multiple_results;
    for (int i = 0; i < 4; ++i) multiple_results.push_back(pool.apply_async(getpid));
    std::vector<pid_t> pids;
    for (auto& r : multiple_results) pids.push_back(r.get(1s));
    std::cout << py::repr(pids) << "\n" << std::flush;

    // make a single worker sleep for 10 secs
    auto res3 = pool.apply_async(sleep_seconds, 10);
    try {
        res3.get(1s);
        std::cout << "None\n" << std::flush;  // what time.sleep returns
    } catch (const mp::TimeoutError&) {
        std::cout << "We lacked patience and got a multiprocessing.TimeoutError\n" << std::flush;
    }
}
