// join_sync — seed 003 (003_c397d4ee5c18e9b7.txt), lines 465-476: code before join() still runs
// at the same time as the child; join() blocks the main process until the child ends, turning
// asynchronous execution into synchronous.
//
// The seed block has no imports (it relies on an earlier block) and has its output pasted after
// the code (as written, a SyntaxError); this is the evident program. Printed text is in English;
// time.sleep(1) is 0.5 s here.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void func(const std::string& x, const std::string& y) {
    std::cout << x << "\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::cout << y << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Process p(func, std::string("Girl"), std::string("Come and play!"));
    p.start();
    std::cout << "I am asynchronous here!\n" << std::flush;  // still asynchronous with the child
    p.join();  // only join() blocks: asynchronous becomes synchronous here
    std::cout << "Parent process finished!\n" << std::flush;
}
