// process_info_pids — seed 002 (002_99cc650f6dfa1104.txt), lines 40-58: the same info() function
// runs in the main process and then in a child, showing that the child's parent process is the
// main process.
//
// C++ has no modules, so there is no __name__; the program prints what Python prints there
// (__main__, in both processes with the fork start method). hasattr(os, 'getppid') is always true
// on Linux.
#include <iostream>
#include <string>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

const std::string module_name = "__main__";  // Python's __name__

void info(const std::string& title) {
    std::cout << title << "\n" << std::flush;
    std::cout << "module name: " << module_name << "\n" << std::flush;
    std::cout << "parent process: " << getppid() << "\n" << std::flush;
    std::cout << "process id: " << getpid() << "\n" << std::flush;
}

void f(const std::string& name) {
    info("function f");
    std::cout << "hello " << name << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    info("main line");
    mp::Process p(f, std::string("john"));
    p.start();
    p.join();
}
