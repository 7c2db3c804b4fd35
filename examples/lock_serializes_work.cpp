// lock_serializes_work — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1031-1093: a Lock turns
// concurrent work into serial work. Each of five children takes the lock, prints that it is
// running, sleeps, prints that it is done and releases the lock: a child's two lines are always
// next to each other (without the lock, multi_children_unordered shows them interleaved). The
// children get the lock in an order the scheduler picks.
//
// time.sleep(1) is 0.2 s here. The main process ends its code without join(); as in Python, the
// program still waits for its children at exit.
#include <chrono>
#include <iostream>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// Serialized: while one process holds the lock, every other process that asks for it waits.
void work(int n, mp::Lock& lock) {
    lock.acquire();
    std::cout << n << ": " << getpid() << " is running\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // time.sleep(1)
    std::cout << n << ":" << getpid() << " is done\n" << std::flush;
    // Released: now another process may take it.
    lock.release();
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Lock lock;
    for (int i = 0; i < 5; ++i) {
        mp::Process p(work, i, lock);
        p.start();
    }
}
