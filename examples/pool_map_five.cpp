// pool_map_five — seed 002 (002_99cc650f6dfa1104.txt), lines 3-19: the first Pool example, an
// IPython session. Pool(5) starts five worker processes; map(f, [1, 2, 3]) sends each item to a
// worker and returns the list of results, in input order. The text (line 5): unlike threads,
// processes are not limited by the GIL, so a program can use several processors.
//
// The session runs as written (the stray `;` after `return x*x` is legal Python). Changes: the
// list is printed as Python prints it. The seed never closes the pool (Python cleans it up at
// exit); here the Pool's destructor terminates the workers, like leaving Python's `with` block.
#include <iostream>
#include <string>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

int f(int x) { return x * x; }

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool p(5);
    std::cout << py::repr(p.map(f, std::vector{1, 2, 3})) << "\n" << std::flush;
}
