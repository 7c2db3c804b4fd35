// daemon_process — seed 003 (003_c397d4ee5c18e9b7.txt), lines 948-967: p.daemon = True makes the
// child die when the main process's code ends, instead of keeping the program alive. The rules
// (lines 938-942): a daemon ends when the main process's code finishes; a daemon may not create
// children; daemon must be set before start().
//
// Printed text is in English. Changes: the seed's commented-out time.sleep(1) in the main process
// is enabled (0.5 s), so the daemon prints its two lines before it is killed; without it the
// daemon usually dies before printing anything, a race. A line is added after the daemon's
// time.sleep(3); it never appears, because the daemon is killed 0.5 s into that sleep.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <utility>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

class Myprocess : public mp::Process {
public:
    explicit Myprocess(std::string who) : mp::Process(), person(std::move(who)) {}

    void run() override {
        std::cout << getpid() << " " << name() << "\n" << std::flush;
        std::cout << person << " is chatting with the female streamer\n" << std::flush;
        std::this_thread::sleep_for(std::chrono::seconds(3));  // cut short: the daemon is killed
        std::cout << "never printed: the daemon is killed when main's code ends\n" << std::flush;  // added
    }

    std::string person;
};

int main(int argc, char** argv) {
    mp::init(argc, argv);

    Myprocess p("Taibai");
    // Must be set before p.start(): makes p a daemon, which may not create children and is
    // terminated as soon as the main process's code has finished.
    p.set_daemon(true);
    p.start();
    // While this sleeps, look the pid up on Linux: ps -ef | grep <pid>
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::cout << "main\n" << std::flush;
}
