// multi_children_unordered — seed 003 (003_c397d4ee5c18e9b7.txt), lines 980-993: children
// started in a loop, without join(), run in an order the scheduler picks, not in creation order:
// neither the "running" lines nor the "done" lines come out in the order 0-4.
//
// time.sleep(random.random()) sleeps up to 1 s; here up to 0.5 s. The main process ends its
// code without join(); as in Python, the program still waits for its children at exit.
#include <chrono>
#include <iostream>
#include <random>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void work(int n) {
    std::mt19937 gen(std::random_device{}());
    std::uniform_real_distribution<double> random(0.0, 0.5);  // random.random(), scaled to 0.5 s
    std::cout << n << ": " << getpid() << " is running\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::duration<double>(random(gen)));
    std::cout << n << ": " << getpid() << " is done\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    for (int i = 0; i < 5; ++i) {
        mp::Process p(work, i);
        p.start();
    }
}
