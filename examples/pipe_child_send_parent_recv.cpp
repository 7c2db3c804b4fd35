// pipe_child_send_parent_recv — seed 002 (002_99cc650f6dfa1104.txt), lines 97-117 (the example
// from Python's documentation): Pipe() gives two connected ends; the child sends an object through
// its end and closes it, and the main process's recv() blocks until the object arrives.
//
// The same program appears in seed 003, lines 1824-1843 (sending "Hello 妹妹") and seed 004,
// lines 70-78 (sending "Hello World", with its indentation lost); only the object sent differs.
// The Python list [42, None, 'hello'] is a vector of variants here: None, an int or a string.
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

using PyObject = std::variant<std::monostate, int, std::string>;  // None, an int or a str

void f(mp::Connection conn) {
    conn.send(std::vector<PyObject>{42, std::monostate{}, "hello"});
    conn.close();
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    auto [parent_conn, child_conn] = mp::Pipe();
    mp::Process p(f, std::move(child_conn));
    p.start();
    std::cout << py::repr(parent_conn.recv<std::vector<PyObject>>()) << "\n" << std::flush;
    p.join();
}
