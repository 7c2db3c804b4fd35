// zombie_no_join — seed 003 (003_c397d4ee5c18e9b7.txt), lines 868-926: a child that has finished
// but was never join()ed (waited for) stays a zombie (state Z, <defunct>) while its parent lives;
// join() reaps it.
//
// In the seed the parent sleeps 1000 s while the author runs `ps aux | grep Z` in another shell
// and sees the child in state Z; remedy 2 of the text is to join() the children. Here the parent
// sleeps 0.5 s and then does what the shell did, reading the child's state from /proc, and then
// applies remedy 2: after join() the zombie is gone. Printed text is in English.
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void run() { std::cout << "child " << getpid() << "\n" << std::flush; }

// What `ps` shows in its STAT column, from /proc/<pid>/stat ("pid (comm) S ...").
std::string state_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(f, stat)) return "gone (reaped)";
    const char s = stat.at(stat.rfind(')') + 2);
    return s == 'Z' ? "Z (zombie, <defunct>)" : std::string(1, s);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Process p(run);
    p.start();

    std::cout << "main " << getpid() << "\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the seed: time.sleep(1000)

    // ps aux | grep Z
    std::cout << "child " << p.pid() << " state: " << state_of(p.pid()) << "\n" << std::flush;

    // Remedy 2: join() the children you start; join() waits for the child and so reaps the zombie.
    p.join();
    std::cout << "after join, child " << p.pid() << " state: " << state_of(p.pid()) << "\n" << std::flush;
}
