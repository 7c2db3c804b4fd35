// pool_apply_async_get_timeout — seed 001 (001_94d79d745d84608d.txt), lines 208-228: apply_async
// takes several arguments directly. Seven tasks on a Pool(5): five start at once, two wait for a
// free worker. The text (line 228): keep the results in a list and get() them afterwards, since
// calling get() right after each apply_async would block and turn the program into a
// single-process one; get() takes a timeout (get(timeout=5)) and raises
// multiprocessing.TimeoutError when the result is not ready in time.
//
// The seed runs as written. Changes: each task sleeps 0.5 s instead of 2 s, and get() waits 1 s
// instead of 2.1 s: the 6th and 7th results come about 1 s after the start, when their get() has
// been waiting since about 0.5 s, so they have 0.5 s to spare (0.1 s in the seed). The results
// are kept in a std::vector<mp::AsyncResult<std::string>>.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;

std::string func(const std::string& name) {
    std::cout << "start process\n" << std::flush;
    std::this_thread::sleep_for(500ms);  // time.sleep(2) in the seed
    std::string upper = name;            // name.upper()
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    return upper;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<mp::AsyncResult<std::string>> results;
    mp::Pool p(5);
    for (int i = 0; i < 7; ++i) {
        mp::AsyncResult<std::string> res = p.apply_async(func, std::string("kel"));
        results.push_back(res);
    }
    for (auto& i : results) std::cout << i.get(1s) << "\n" << std::flush;  // i.get(2.1) in the seed
}
