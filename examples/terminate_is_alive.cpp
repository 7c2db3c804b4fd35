// terminate_is_alive — seed 003 (003_c397d4ee5c18e9b7.txt), lines 744-767: the process methods
// terminate() and is_alive(). terminate() sends SIGTERM and does not wait: is_alive() called right
// away may still say True; after a short wait it says False.
//
// Printed text is in English (a neutral rendering of the seed's slang). Two deliberate changes,
// so that the program shows what the tutorial's comments describe (#结果为True, then
// #结果为False):
// - Timing. In the seed the child sleeps 2 s and the main process 5 s, so the child has already
//   finished when terminate() is called and both is_alive() calls print False (verified with
//   Python 3.11). Here the main process waits only 0.3 s, so terminate() stops the child during
//   its 2 s sleep (which thus costs nothing) and its second line never appears. The first
//   is_alive() races with the signal's delivery: usually True, sometimes False. The last wait is
//   0.2 s instead of 1 s.
// - The name. The seed sets self.name = name before super().__init__(), which resets it, so
//   Python prints Piao-1 (process_name_pid explains this). A C++ base class is always constructed
//   first, so set_name() in the constructor keeps "Taibai", as the tutorial intended.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

class Piao : public mp::Process {
public:
    explicit Piao(const std::string& name) : mp::Process() { set_name(name); }

    void run() override {
        std::cout << name() << " is busy\n" << std::flush;
        // s = input('???')  # no input() in a child: its stdin is /dev/null (EOFError)
        std::this_thread::sleep_for(std::chrono::seconds(2));  // cut short by terminate()
        std::cout << name() << " is done being busy\n" << std::flush;
    }
};

int main(int argc, char** argv) {
    mp::init(argc, argv);

    Piao p1("Taibai");
    p1.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the seed: time.sleep(5)
    // Stops the process, but not at once: the operating system needs a moment to end it, so
    // is_alive() right after may still report that it is alive.
    p1.terminate();
    std::cout << py::repr(p1.is_alive()) << "\n" << std::flush;  // True
    std::cout << "wait a moment...\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::cout << py::repr(p1.is_alive()) << "\n" << std::flush;  // False
}
