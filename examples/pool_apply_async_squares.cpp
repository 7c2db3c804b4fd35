// pool_apply_async_squares — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2279-2313: the
// asynchronous way. apply_async submits all 10 tasks at once and returns; at most 3 run at a time
// (the pool's size), and each worker takes a new task as soon as it has finished one (the three do
// not start or end together). The main process must close() the pool (no more tasks) and join()
// it (wait until the tasks are done), otherwise it could end before the pool ran them; then get()
// collects the results, in submission order (apply has no get(): it returns the result itself).
//
// Changes: the scraper split the program after `return n**2` and moved everything after the loop
// to column 0, so `res_l.append(res)` ended up after the loop and only the last result is kept:
// as written the program prints 10 "run" lines and then only 81. Here the append is inside the
// loop, as evidently intended, and the rest is in main (at module level it would also run only in
// the main process, under fork). Each task sleeps a random 0-100 ms instead of 0-1 s
// (random.random()); n**2 is n * n.
#include <chrono>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

int work(int n) {
    std::cout << getpid() << " run\n" << std::flush;
    std::mt19937 gen(std::random_device{}());
    std::uniform_real_distribution<double> random(0.0, 0.1);  // random.random() s in the seed
    std::this_thread::sleep_for(std::chrono::duration<double>(random(gen)));
    return n * n;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool p(3);  // the pool creates three processes from nothing; from then on these three run every task
    std::vector<mp::AsyncResult<int>> res_l;
    for (int i = 0; i < 10; ++i) {
        auto res = p.apply_async(work, i);  // runs asynchronously: at most 3 children (the pool's
        // size) run at a time; a worker returns its result, which goes into the list, and is given
        // back to run a new task. Note that the pool's three processes do not start or end together:
        // each is released as soon as it has finished, and takes a new task.
        res_l.push_back(res);  // restored into the loop: the seed has it after the loop
    }

    // With tasks submitted asynchronously the main process must join, waiting until the pool's
    // tasks are done, and can then collect the results with get; otherwise the main process ends
    // and the pool may end with it before running the tasks.
    p.close();  // does not close the pool: it stops the pool's accepting of tasks, so no new task comes
    p.join();   // notices that the pool's tasks are done; that can only be noticed once no new task can be
                // added, so close() must come before join()
    for (auto& res : res_l)
        std::cout << res.get() << "\n" << std::flush;  // get() fetches apply_async's result; apply has no
        // get(): it runs synchronously and returns the result at once
}
