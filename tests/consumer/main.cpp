// A program written by a user of the installed library.
#include <iostream>
#include <polyproc/polyproc.hpp>
namespace mp = polyproc;
int main(int argc, char** argv) {
    mp::init(argc, argv);
    auto [parent_conn, child_conn] = mp::Pipe();
    mp::Process p([&] { child_conn.send(std::string("hello from the child")); });
    p.start();
    std::cout << parent_conn.recv<std::string>() << "\n";
    p.join();
    return p.exitcode() == 0 ? 0 : 1;
}
