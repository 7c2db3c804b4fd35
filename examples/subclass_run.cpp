// subclass_run — seed 003 (003_c397d4ee5c18e9b7.txt), lines 596-634: the second way to create a
// process, by inheritance. Subclass Process, take parameters in the constructor (after the base
// class is initialised) and put the work in run(); start() calls run() in the child. Inside the
// child, the process's own pid() is the child's getpid().
//
// The seed block is broken: it lacks its imports (NameError: name 'Process' is not defined), and
// the last line of run() was split into a second block. This is the intended program, with the
// print inside run(). Printed text is in English.
#include <iostream>
#include <string>
#include <utility>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

class MyProcess : public mp::Process {  // write our own class, inheriting from Process
public:
    // The constructor takes the parameters: with only a run() method we could not pass any,
    // because an object receives its arguments when it is created.
    explicit MyProcess(std::string who) : mp::Process(), person(std::move(who)) {}

    void run() override {
        std::cout << getpid() << "\n" << std::flush;
        std::cout << pid() << "\n" << std::flush;
        std::cout << pid() << "\n" << std::flush;
        std::cout << person << " is chatting with the female streamer\n" << std::flush;
    }

    // void start() {
    //     // If you really want your own start method, write it like this, with other logic
    //     // before and after run().
    //     run();
    // }

    std::string person;
};

int main(int argc, char** argv) {
    mp::init(argc, argv);

    MyProcess p1("Jedan");
    MyProcess p2("Taibai");
    MyProcess p3("alexDSB");

    p1.start();  // start() calls run() for us, in the child
    p2.start();
    // p2.run();
    p3.start();

    p1.join();
    p2.join();
    p3.join();
}
