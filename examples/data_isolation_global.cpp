// data_isolation_global — seed 003 (003_c397d4ee5c18e9b7.txt), lines 638-662: data is not shared
// between processes. The child sets the global n to 0, which changes only its own copy; after
// join() the main process still sees n == 100.
//
// Printed text is in English.
#include <iostream>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

int n = 100;  // a global variable

void work() {
    n = 0;  // global n; n = 0
    std::cout << "inside child: " << n << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Process p(work);
    p.start();
    // Wait for the child to finish. If data were shared, the child's n = 0 would show here;
    // the main process's print says otherwise.
    p.join();
    std::cout << "inside main process: " << n << "\n" << std::flush;
}
