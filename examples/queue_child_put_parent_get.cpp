// queue_child_put_parent_get — seed 002 (002_99cc650f6dfa1104.txt), lines 76-95 (the Queue
// example from Python's documentation): the child puts an object on a Queue and the main process's
// get() blocks until the object arrives. Queues are safe to use from threads and processes alike
// (line 95).
//
// The same program, putting "Hello World", opens seed 004's Queue section (lines 52-59);
// queue_put_get_timeout ports that one. The Python list [42, None, 'hello'] is a vector of
// variants here: None, an int or a string (as in pipe_child_send_parent_recv).
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

using PyObject = std::variant<std::monostate, int, std::string>;  // None, an int or a str

void f(mp::Queue<std::vector<PyObject>>& q) { q.put({42, std::monostate{}, "hello"}); }

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Queue<std::vector<PyObject>> q;
    mp::Process p(f, q);
    p.start();
    std::cout << py::repr(q.get()) << "\n" << std::flush;
    p.join();
}
