// pipe_none_sentinel — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1892-1912: instead of closing
// the ends, the sender follows its data with an end marker, None, and the receiver stops when it
// sees it. There is no join(), but the (non-daemonic) child still finishes: the program waits for
// it at exit.
//
// Printed text is in English. A message that may be None is a std::optional<std::string> here.
#include <iostream>
#include <optional>
#include <string>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void func(mp::Connection conn) {
    while (true) {
        std::optional<std::string> msg = conn.recv<std::optional<std::string>>();
        if (!msg) break;  // msg is None
        std::cout << *msg << "\n" << std::flush;
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    auto [conn1, conn2] = mp::Pipe();
    mp::Process p(func, std::move(conn1));
    p.start();
    for (int i = 0; i < 10; ++i) conn2.send(std::optional<std::string>("let's meet up"));
    conn2.send(std::optional<std::string>());  // None
}
