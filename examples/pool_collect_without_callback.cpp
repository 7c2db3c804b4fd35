// pool_collect_without_callback — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2620-2648: when the
// main process waits until all the pool's tasks are done and then handles the results together,
// no callback is needed (text at line 2620). Ten tasks on a Pool() (cpu_count() workers); close()
// and join() wait for them; get() on each result collects them, in submission order.
//
// The seed runs as written. Changes: each task sleeps 0.1 s instead of 1 s; n**2 is n * n; the
// list is printed as Python prints it. The seed's unused imports (random, os) are left out.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

int work(int n) {
    std::this_thread::sleep_for(100ms);  // time.sleep(1) in the seed
    return n * n;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool p;

    std::vector<mp::AsyncResult<int>> res_l;
    for (int i = 0; i < 10; ++i) {
        auto res = p.apply_async(work, i);
        res_l.push_back(res);
    }

    p.close();
    p.join();  // wait until all the processes of the pool have finished

    std::vector<int> nums;
    for (auto& res : res_l) nums.push_back(res.get());  // get all the results
    std::cout << py::repr(nums) << "\n"
              << std::flush;  // the main process has all the results and can process
                                                  // them together
}
