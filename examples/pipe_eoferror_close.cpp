// pipe_eoferror_close — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1859-1879: recv() raises
// EOFError only once every copy of the other end, in every process, is closed. A process should
// close the pipe ends it does not use: the producer its receiving end, the consumer its sending
// end; otherwise the consumer may hang in recv() (text at lines 1855 and 1883-1888).
//
// As written, the seed hangs forever after printing "hello": `parent_conn.close()` in the child
// is commented out ("without close, EOFError will not be raised"), so the child's own inherited
// copy of parent_conn keeps the pipe open, its recv() never sees EOF and p.join() never returns.
// This is the intended program, with that line enabled. Both ends are passed to the child by
// reference (std::ref): the main process keeps using them, and the child works on the copies
// that fork() gave it, as in Python.
#include <functional>
#include <iostream>
#include <string>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void f(mp::Connection& parent_conn, mp::Connection& child_conn) {
    parent_conn.close();  // enabled: without this close, EOFError is never raised
    while (true) {
        try {
            std::cout << child_conn.recv<std::string>() << "\n" << std::flush;
        } catch (const mp::EOFError&) {
            child_conn.close();
            break;
        }
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    auto [parent_conn, child_conn] = mp::Pipe();
    mp::Process p(f, std::ref(parent_conn), std::ref(child_conn));
    p.start();
    child_conn.close();
    parent_conn.send(std::string("hello"));
    parent_conn.close();
    p.join();
}
