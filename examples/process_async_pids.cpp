// process_async_pids — seed 003 (003_c397d4ee5c18e9b7.txt), lines 340-364: start() returns at
// once, so the main process goes on printing while the child runs (asynchronously); the child's
// getppid() is the main process's getpid().
//
// Variant B of the seed, the runnable one (variant A, lines 317-332, is entirely commented out).
// The Chinese output is printed in English; time.sleep(1) is 0.5 s here.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// getpid() gets our own process id
// getppid() gets the id of our parent process

void func() {
    std::cout << "aaaa\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::cout << "child process>> " << getpid() << "\n" << std::flush;
    std::cout << "this child's parent>> " << getppid() << "\n" << std::flush;
    std::cout << 12345 << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);
    // Running this file starts a process: the main process.

    mp::Process p(func);
    p.start();
    std::cout << std::string(10, '*') << "\n" << std::flush;
    std::cout << "parent process>> " << getpid() << "\n" << std::flush;
    std::cout << "parent's parent>> " << getppid() << "\n" << std::flush;
}
