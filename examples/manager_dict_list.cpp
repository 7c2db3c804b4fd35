// manager_dict_list — seed 002 (002_99cc650f6dfa1104.txt), lines 176-199: a dict and a list held
// by a manager's server process, changed by a child, seen by the parent.
//
// The seed is a Python 2 IPython session; its printed dict is in Python 2's order. This port
// prints what Python 3 prints, insertion order: {1: '1', '2': 2, 0.25: None}. The dict holds
// mp::Object keys and values (an int, a str and a float key; a str, an int and None as values),
// and the list is a ListProxy<int> made from range(10).
#include <iostream>
#include <numeric>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void f(mp::DictProxy<> d, mp::ListProxy<int> l) {
    d[1] = "1";
    d["2"] = 2;
    d[0.25] = mp::None;
    l.reverse();
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    auto manager = mp::Manager();
    auto d = manager.dict();
    std::vector<int> range(10);
    std::iota(range.begin(), range.end(), 0);
    auto l = manager.list(range);
    mp::Process p(f, d, l);
    p.start();
    p.join();
    std::cout << d << "\n";
    std::cout << l << "\n";
}
