// process_args_no_join — seed 003 (003_c397d4ee5c18e9b7.txt), lines 427-436: positional args
// for the target, Process(target=func, args=(x, y)). Without join() the main process's line
// comes first, while the child is still running.
//
// The seed block has no imports (it relies on an earlier block) and has its output pasted after
// the code (as written, a SyntaxError); this is the evident program. Printed text is in English;
// time.sleep(1) is 0.5 s here. The main process ends its code without join(); as in Python, the
// program still waits for the (non-daemonic) child at exit.
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

    mp::Process p(func, std::string("Girl"), std::string("Come and play!"));  // how func's arguments are passed
    p.start();
    std::cout << "Parent process finished!\n" << std::flush;
}
