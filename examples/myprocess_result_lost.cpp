// myprocess_result_lost — seed 001 (001_94d79d745d84608d.txt), lines 74-109: a result that the
// child stores on the process object (self.res), or returns from run(), does not reach the main
// process's copy of that object, because process memory is not shared. The tutorial's verdict:
// "...however, there was no result" (the same code works with threads).
//
// As written, the seed calls MyProcess('process', ('kel',)) without the func argument, so Python
// stops with "TypeError: __init__() takes exactly 4 arguments (3 given)" before starting
// anything. This is the intended program, MyProcess('process', func, ('kel',)).
#include <algorithm>
#include <cctype>
#include <functional>
#include <iostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

class MyProcess : public mp::Process {
public:
    using Func = std::function<std::string(const std::string&)>;
    using Args = std::tuple<std::string>;

    MyProcess(std::string name, Func function, Args arguments) : mp::Process() {
        set_name(std::move(name));
        func = std::move(function);
        args = std::move(arguments);
        res = "";
    }

    void run() override {
        res = std::apply(func, args);
        std::cout << name() << "\n" << std::flush;
        std::cout << res << "\n" << std::flush;
        // return (self.res, 'kel'): run() returns nothing in C++; Python discards its value too.
    }

    Func func;
    Args args;
    std::string res;
};

std::string func(const std::string& name) {
    std::cout << "start process...\n" << std::flush;
    std::string upper = name;  // name.upper()
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    return upper;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<MyProcess> processes;
    std::vector<std::string> result;
    for (int i = 0; i < 3; ++i) {
        MyProcess p("process", func, {"kel"});
        processes.push_back(std::move(p));
    }
    for (auto& i : processes) i.start();
    for (auto& i : processes) i.join();
    for (auto& i : processes) result.push_back(i.res);
    for (auto& i : result) std::cout << i << "\n" << std::flush;
}
