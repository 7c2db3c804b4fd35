// value_array_shared — seed 002 (002_99cc650f6dfa1104.txt), lines 154-172: state shared through
// shared memory. A child sets a Value('d') to 3.1415927 and negates every element of an
// Array('i', range(10)); the main process, after join(), sees both changes (compare
// data_isolation_global, where a plain global does not change).
//
// The seed is a Python 2 IPython session (print num.value); here it is a program. num.value is
// printed as Python prints a float (the shortest text that reads back as the same double), arr[:]
// as Python prints a list. a[i] = -a[i] is not locked per item here as in Python (see
// docs/sharedctypes.md); nothing else touches the array meanwhile.
#include <cstddef>
#include <iostream>
#include <numeric>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

void f(mp::Value<double>& n, mp::Array<int>& a) {
    n.set_value(3.1415927);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = -a[i];
}

// range(n) as a list.
std::vector<int> range(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Value<double> num(0.0);
    mp::Array<int> arr(range(10));
    mp::Process p(f, num, arr);
    p.start();
    p.join();
    std::cout << py::repr(num.value()) << "\n";
    std::cout << py::repr(arr.to_vector()) << "\n";  // print arr[:]
}
