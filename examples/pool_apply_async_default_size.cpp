// pool_apply_async_default_size — seed 000 (000_0c14cfd96ef94e62.txt), lines 51-95: to start many
// children, create them in batches with a process pool. Five tasks go to the pool with
// apply_async (the results are not kept); close() then join() waits for all of them (close() must
// come first, and after it no task can be added). The pool runs at most as many tasks at once as
// it has workers: tasks 0-3 start at once, task 4 waits until a worker is free and runs on the
// worker that finished first. The text (lines 90-95): Pool's default size is the number of CPU
// cores (4 on the author's machine), a limit designed into Pool, not one of the OS; Pool(5)
// would run all 5 at once.
//
// The seed lost its indentation (as written, an IndentationError); this is the evident program.
// Changes:
// - Pool(4), the author's default, instead of Pool(): this machine has 2 cores, and the output
//   should show what the tutorial's does (4 tasks at once, the 5th waiting).
// - Fixed sleeps instead of random.random() * 3: task i sleeps {1.0, 0.6, 0.2, 0.4, 0.6}[i] s, so
//   task 2 ends first, task 4 then runs on its worker and ends at 0.8 s, between tasks 1 and 0;
//   every completion is 0.2 s away from the next one, so the order of the lines is fixed.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using Clock = std::chrono::steady_clock;

const double sleep_seconds[] = {1.0, 0.6, 0.2, 0.4, 0.6};  // instead of random.random() * 3

void long_time_task(int name) {
    std::cout << "Run task " << name << " (" << getpid() << ")...\n" << std::flush;
    auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(sleep_seconds[name]));
    auto end = Clock::now();
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%0.2f", std::chrono::duration<double>(end - start).count());
    std::cout << "Task " << name << " runs " << seconds << " seconds.\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::cout << "Parent process " << getpid() << ".\n" << std::flush;
    mp::Pool p(4);  // Pool() in the seed: the author's cpu_count() was 4
    for (int i = 0; i < 5; ++i) p.apply_async(long_time_task, i);
    std::cout << "Waiting for all subprocesses done...\n" << std::flush;
    p.close();
    p.join();
    std::cout << "All subprocesses done.\n" << std::flush;
}
