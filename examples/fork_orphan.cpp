// fork_orphan — seed 003 (003_c397d4ee5c18e9b7.txt), lines 829-847: an orphan process. The
// parent exits right after fork(); the child sleeps until its parent is gone and then finds that
// it has been adopted: getppid() no longer returns the pid of the process that forked it.
//
// Like the Python, this calls fork() directly. The tutorial shows the adopted child's parent as 1
// (init); on current systems it may also be a "subreaper" (systemd --user, a container's init),
// so the expected output accepts any pid. Changes: stdout is flushed before fork() (otherwise
// the child would print the first line a second time), and time.sleep(1) is 0.5 s here.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

int main(int argc, char** argv) {
    mp::init(argc, argv);

    pid_t pid = getpid();
    pid_t ppid = getppid();
    std::printf("im father pid %d ppid %d\n", pid, ppid);
    std::fflush(stdout);  // added: flush before fork()
    pid = fork();
    // Running pid = fork() creates a child process. The returned pid has two kinds of value:
    // if it is 0, we are in the child; if it is > 0, we are in the parent.
    if (pid > 0) {
        std::printf("father died..\n");
        std::fflush(stdout);
        std::exit(0);
    }

    // make sure the main process has finished exiting
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::printf("im child %d %d\n", getpid(), getppid());
    std::fflush(stdout);
}
