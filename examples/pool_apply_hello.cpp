// pool_apply_hello — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2346-2376: "II: using a pool
// (synchronous call, apply)", the second program of the block that starts with
// pool_apply_async_hello. apply returns the task's result itself, after the task has run: the
// tasks run one at a time, in order, and "=====>" comes only after all of them; the list holds the
// final results, and there is no get().
//
// The scraper split the program after `pool = Pool(processes = 3)` and the rest lost its
// indentation; joined up it runs as written (the dedented part runs at module level, in the main
// process only under fork). Here it is all in main. Otherwise unchanged (the seed already sleeps
// 0.1 s); the list is printed as Python prints it.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

std::string func(const std::string& msg) {
    std::cout << "msg: " << msg << "\n" << std::flush;
    std::this_thread::sleep_for(100ms);
    return msg;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool pool(3);

    std::vector<std::string> res_l;
    for (int i = 0; i < 10; ++i) {
        std::string msg = "hello " + std::to_string(i);
        std::string res = pool.apply(func, msg);  // keeps `processes` tasks running: when one finishes,
                                                  // the next goes to its worker
        res_l.push_back(res);  // synchronous: run one, get its result, then run the next
    }
    std::cout << "=====>\n" << std::flush;
    pool.close();
    pool.join();  // call close() before join(), or it is an error; after close() no new task joins the
                  // pool, and join() waits for all the workers!

    std::cout << py::repr(res_l) << "\n" << std::flush;  // the list of the final results
    for (const auto& i : res_l)  // apply is synchronous, so the results come directly: no get()
        std::cout << i << "\n" << std::flush;
}
