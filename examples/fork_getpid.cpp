// fork_getpid — seed 000 (000_0c14cfd96ef94e62.txt), lines 7-14: os.fork() returns twice, 0 in
// the child (which reads its parent's pid with getppid()) and the child's pid in the parent.
//
// The seed lost the indentation under `if`/`else` (as written it is an IndentationError); this is
// the evident program. As in the Python, it calls fork() and getpid() directly, without polyproc.
// Two additions, both marked below: stdout is flushed before fork() (otherwise the child inherits
// the buffered first line and prints it a second time when stdout is a pipe or a file), and the
// parent reaps its child with waitpid(), so the child still has its parent when it calls
// getppid() and no zombie or orphan is left behind.
#include <cstdio>

#include <sys/wait.h>
#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// # multiprocessing.py
int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::printf("Process (%d) start...\n", getpid());
    std::fflush(stdout);  // added: flush before fork()
    pid_t pid = fork();
    if (pid == 0) {
        std::printf("I am child process (%d) and my parent is %d.\n", getpid(), getppid());
        std::fflush(stdout);
    } else {
        std::printf("I (%d) just created a child process (%d).\n", getpid(), pid);
        std::fflush(stdout);
        waitpid(pid, nullptr, 0);  // added: reap the child
    }
}
