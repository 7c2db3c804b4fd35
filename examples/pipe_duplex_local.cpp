// pipe_duplex_local — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1847-1851: a pipe is full-duplex
// by default, so both ends can send and receive, even within one process: a message sent on one
// end is received on the other. (With Pipe(false), Python's duplex=False, the first end can only
// receive and the second can only send; text at 003:1806 and 004:62-65.)
#include <iostream>
#include <string>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

int main(int argc, char** argv) {
    mp::init(argc, argv);

    auto [conn1, conn2] = mp::Pipe();
    conn1.send(std::string("123456"));
    std::cout << conn2.recv<std::string>() << "\n" << std::flush;
}
