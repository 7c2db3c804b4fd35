// pool_map_imap_upper — seed 001 (001_94d79d745d84608d.txt), lines 184-206: the pool's map and
// imap. The text: a pool is the most convenient way to use several processes; it limits how many
// run at a time (by default cpu_count()), the other tasks queue. map returns the list of the
// function's results, in input order, once all tasks have run; imap returns an iterator that
// yields them one by one, in input order, as they arrive. Both call a function of one argument
// (several arguments must be combined; starmap does that).
//
// The scraper cut the imap line to `p.imap(func,'smile'])` (as written, a SyntaxError); the
// evident line, restored here, is `p.imap(func,['kel','smile'])`. Changes: the list is printed
// as Python prints it. The seed never closes the pool (Python cleans it up at exit); here the
// Pool's destructor terminates the workers.
#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

std::string func(const std::string& name) {
    std::cout << "start process\n" << std::flush;
    std::string upper = name;  // name.upper()
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    return upper;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Pool p(5);
    std::cout << py::repr(p.map(func, std::vector<std::string>{"kel", "smile"})) << "\n" << std::flush;
    for (const std::string& i : p.imap(func, std::vector<std::string>{"kel", "smile"}))  // restored: ['kel',
        std::cout << i << "\n" << std::flush;
}
