// pool_callback_in_main — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2446-2491: callbacks. As
// soon as a task in the pool is done, the main process is told and calls the callback with the
// task's result: put the slow (blocking) work in the pool, and the callback, which the main
// process runs, does not wait for the I/O. func1 runs in a worker; its return value (10 * 10) is
// passed to func2, the callback, which runs in the main process: func2 prints the main process's
// pid. (If it ran in the worker, its code could just as well be written into func1.) The
// callback takes exactly one parameter: a task returning several values passes them as one
// tuple (text at line 2491). The arguments of apply_async go to func1; none can be passed to the
// callback directly.
//
// The seed runs as written. Changes: printed text in English (主进程 is "main process"); the
// seed's '主进程: ' ends with a space and print() adds another, which the port drops. In polyproc
// the callback runs on the pool's result thread, in the main process, as in Python; p.join()
// returns after the callbacks have run.
#include <iostream>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

int func1(int n) {
    std::cout << "func1>> " << getpid() << "\n" << std::flush;
    std::cout << "func1\n" << std::flush;
    return n * n;
}

void func2(int nn) {
    std::cout << "func2>> " << getpid() << "\n" << std::flush;
    std::cout << "func2\n" << std::flush;
    std::cout << nn << "\n" << std::flush;
    // std::this_thread::sleep_for(500ms);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::cout << "main process: " << getpid() << "\n" << std::flush;
    mp::Pool p(5);
    // The 10 of the arguments goes to func1; func1's return value goes as the argument to the
    // function given as callback; arguments cannot be passed to the callback directly, it can only
    // [take the return value].
    // for (int i = 10; i < 20; ++i)  // with several tasks run by several processes, once every child
    //                                // has given its result to the callback, the callback again runs
    //                                // in the main process
    //     p.apply_async(mp::Callbacks{.callback = func2}, func1, i);
    p.apply_async(mp::Callbacks{.callback = func2}, func1, 10);

    p.close();
    p.join();
}

// result
// main process: 11852   <- the callback ran in the main process; indeed, if it ran in the child,
//                          we could just write its code into the task function func1
// func1>> 17332
// func1
// func2>> 11852
// func2
