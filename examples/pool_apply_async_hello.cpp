// pool_apply_async_hello — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2317-2344: "I: using a pool
// (asynchronous call, apply_async)", the first of two programs in one block (the second is
// pool_apply_hello). apply_async returns at once, so "=====>" is printed while the tasks run, 3
// at a time; calling get() right after apply_async would wait there and make the program
// synchronous. Without the join (or get) below, the program would end before the pool's tasks
// have run. The list holds result objects, not results; get() after join() returns the results,
// in submission order.
//
// The seed runs as written. Changes: each task sleeps 0.1 s instead of 1 s. Python prints the
// list as [<multiprocessing.pool.ApplyResult object at 0x10357c4e0>, ...]; the port prints each as
// <AsyncResult> (AsyncResult::repr() would give the address, which differs on every run; the point
// being: objects, not results).
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;

std::string func(const std::string& msg) {
    std::cout << "msg: " << msg << "\n" << std::flush;
    std::this_thread::sleep_for(100ms);  // time.sleep(1) in the seed
    return msg;
}

// What print() shows of a list of result objects: [<AsyncResult>, <AsyncResult>, ...]
std::string repr(const std::vector<mp::AsyncResult<std::string>>& list) {
    std::string out = "[";
    for (std::size_t k = 0; k < list.size(); ++k) out += k ? ", <AsyncResult>" : "<AsyncResult>";
    return out + "]";
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool pool(3);
    std::vector<mp::AsyncResult<std::string>> res_l;
    for (int i = 0; i < 10; ++i) {
        std::string msg = "hello " + std::to_string(i);
        auto res = pool.apply_async(func, msg);  // keeps `processes` tasks running: when one finishes, the
                                                 // next goes to its worker
        res_l.push_back(res);
        // std::string s = res.get();  // calling get() on the result object right here would make the
        //                             // program synchronous, since get() waits here
    }
    std::cout << "=====>\n"
              << std::flush;  // without the join or get below, the program would end before
                                           // the pool's tasks [have run]

    pool.close();  // close the pool, preventing further operations; pending tasks complete before the
                   // workers end
    pool.join();   // call close() before join(), or it is an error; after close() no new task joins the
                   // pool, and join() waits for all the workers

    std::cout << repr(res_l) << "\n" << std::flush;  // a list of result objects, not the final results
    for (auto& i : res_l)
        std::cout << i.get() << "\n" << std::flush;  // get() fetches apply_async's result; apply has no
        // get(): it runs synchronously and returns the result at once
}
