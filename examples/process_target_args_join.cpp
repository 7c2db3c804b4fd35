// process_target_args_join — seed 000 (000_0c14cfd96ef94e62.txt), lines 29-40: a child process
// runs a target function with a tuple of arguments, Process(target=run_proc, args=('test',)), and
// join() makes the parent wait for it before going on.
//
// The seed lost its indentation (as written it is an IndentationError); this is the evident
// program. The same demo appears in seed 002, lines 21-35 (an IPython session with
// f(name) printing 'hello', name); process_info_pids ports that one's longer version.
#include <iostream>
#include <string>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// the code the child process runs
void run_proc(const std::string& name) {
    std::cout << "Run child process " << name << " (" << getpid() << ")...\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::cout << "Parent process " << getpid() << ".\n" << std::flush;
    mp::Process p(run_proc, std::string("test"));
    std::cout << "Process will start.\n" << std::flush;
    p.start();
    p.join();
    std::cout << "Process end.\n" << std::flush;
}
