// process_name_pid — seed 003 (003_c397d4ee5c18e9b7.txt), lines 772-797: give a process a name of
// our own by setting it after the base class is initialised (the default would be Piao-1), and
// read the child's pid through p.pid() in the main process. Without join(), the (non-daemonic)
// child still finishes: the program waits for it at exit.
//
// Printed text is in English. time.sleep(random.randrange(1, 3)) sleeps 1 or 2 s; here 0.2 or
// 0.4 s. The seed has no `if __name__ == '__main__':` guard (fine with fork); C++ starts in main.
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

class Piao : public mp::Process {
public:
    explicit Piao(const std::string& name) : mp::Process() {
        // In Python, setting self.name = name before super().__init__() does not work: Process's
        // __init__ sets self.name = 'Piao-1' and overwrites it. A C++ base class is always
        // constructed before this body runs.

        // How to give the process we start a name of our own:
        set_name(name);
    }

    void run() override {
        std::mt19937 gen(std::random_device{}());
        std::uniform_int_distribution<int> randrange(1, 2);  // random.randrange(1, 3)
        std::cout << name() << " is piaoing\n" << std::flush;
        std::this_thread::sleep_for(randrange(gen) * std::chrono::milliseconds(200));
        std::cout << name() << " is piao end\n" << std::flush;
    }
};

int main(int argc, char** argv) {
    mp::init(argc, argv);

    Piao p("egon");
    p.start();
    std::cout << "start\n" << std::flush;
    std::cout << p.pid() << "\n" << std::flush;  // look at the pid
}
