// pool_apply_sync_squares — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2254-2277: the synchronous
// way (practical examples of the synchronous and the asynchronous way). apply() waits until the
// task has run and returns its result, so the 10 tasks run one after the other even though the
// pool has 3 workers; only 3 distinct pids appear, since the pool creates its three processes
// once and they run every task.
//
// The seed runs as written. Changes: each task sleeps 0.1 s instead of 1 s; the list is printed
// as Python prints it; n**2 is n * n.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

int work(int n) {
    std::cout << getpid() << " run\n" << std::flush;
    std::this_thread::sleep_for(100ms);  // time.sleep(1) in the seed
    return n * n;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool p(3);  // the pool creates three processes from nothing; from then on these three run every task
    std::vector<int> res_l;
    for (int i = 0; i < 10; ++i) {
        int res = p.apply(work, i);  // synchronous call: waits here until this task has run and res is
        // obtained; the task may block while it runs or not, but a synchronous call waits on the spot either way
        res_l.push_back(res);
    }
    std::cout << py::repr(res_l) << "\n" << std::flush;
}
