// multi_children_pids — seed 001 (001_94d79d745d84608d.txt), lines 16-39: two children are
// created in a list, all are started, the main process prints, then joins them all. Each child
// reports the same parent pid and its own pid.
//
// time.sleep(3) is 0.5 s here.
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void func([[maybe_unused]] int name) {
    std::cout << "start a process\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::cout << "the process parent id : " << getppid() << "\n" << std::flush;
    std::cout << "the process id is : " << getpid() << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<mp::Process> processes;
    for (int i = 0; i < 2; ++i) {
        mp::Process p(func, i);
        processes.push_back(std::move(p));
    }
    for (auto& i : processes) i.start();
    std::cout << "start all process\n" << std::flush;
    for (auto& i : processes) {
        i.join();
        // pass
    }
    std::cout << "all sub process is done!\n" << std::flush;
}
