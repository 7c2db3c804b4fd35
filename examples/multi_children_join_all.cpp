// multi_children_join_all — seed 003 (003_c397d4ee5c18e9b7.txt), lines 487-514: start 10
// children in a loop, keeping them in a list, and join them all after the loop. The children run
// concurrently (their lines come in any order) and the main process's last line waits for all.
//
// The seed passes the literal string '姑娘%s%i' where it evidently meant '姑娘%s' % i (a
// numbered "Girl"); this port does the intended formatting. Printed text is in English.
#include <iostream>
#include <string>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void func(const std::string& x, const std::string& y) {
    std::cout << x << "\n" << std::flush;
    // time.sleep(1)  # process switching: without this pause, each child tends to print its x
    //                # and then its y before the next child prints
    std::cout << y << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<mp::Process> p_list;
    for (int i = 0; i < 10; ++i) {
        mp::Process& p = p_list.emplace_back(func, "Girl" + std::to_string(i), std::string("Come and play!"));
        p.start();
    }

    // 4. The solution: all the children are already running; now wait for every one of them.
    for (auto& ap : p_list) ap.join();

    // p.join()  # 1. inside the for loop, this would make every child (and the parent) run one
    //           #    after another, synchronously
    // 2. What we want: the children run asynchronously, and the main process goes on only when
    //    all of them are done.
    // p.join()  # 3. here, after the loop, it waits only for the last child: run it a few times
    //           #    and the main process sometimes finishes before some of the children
    std::cout << "It's free~~~~~!\n" << std::flush;
}
