// sleeper_parent_child — seed 004 (004_22a7b71a27b014c2.txt), lines 10-25: the child prints its
// pid and parent pid and sleeps; the main process goes on after start(), blocks in join() until
// the child ends, and then prints its own parent (the shell).
//
// The seed lost its indentation and kept list numbers (a SyntaxError as written), and line "10"
// lost its statement, leaving only "))". From its uses it created the child:
// child_proc = Process(target=sleeper, args=('bob', 5)); this port restores that line, with a
// sleep of 0.5 s instead of 5 s.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void sleeper(const std::string& name, double seconds) {
    std::cout << "Process ID# " << getpid() << "\n" << std::flush;
    std::cout << "Parent Process ID# " << getppid() << "\n" << std::flush;
    std::cout << name << " will sleep for " << seconds << " seconds\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Process child_proc(sleeper, std::string("bob"), 0.5);  // restored line
    child_proc.start();
    std::cout << "in parent process after child process start\n" << std::flush;
    std::cout << "parent process abount to join child process\n" << std::flush;
    child_proc.join();
    std::cout << "in parent process after child process join\n" << std::flush;
    std::cout << "the parent's parent process: " << getppid() << "\n" << std::flush;
}
