// queue_myprocess_results — seed 001 (001_94d79d745d84608d.txt), lines 117-146: the fix for
// myprocess_result_lost. Results stored on the process object never reach the main process, so
// each MyProcess child puts its result on a multiprocessing Queue instead, and the main process,
// after joining the children, gets results while qsize() > 0. The text (lines 148-152): the
// Queue is what carries the data between processes; the exchange is between the parent and each
// child, and children taking items from one Queue between themselves would need care.
//
// The seed is broken (as written, a SyntaxError): the scraper merged `def __init__(self, name,
// func, args):` with `super(MyProcess, self).__init__()` into `def __init__(self,self).__init__()`
// and cut MyProcess('process', func, ('kel', q)) down to MyProcess('process',q)). This is the
// evident program: MyProcess as in myprocess_result_lost, and func(name, q) putting name.upper()
// on the queue. The queue handle is copied into each child's arguments; every copy is the same
// queue.
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
    using Func = std::function<void(const std::string&, mp::Queue<std::string>&)>;
    using Args = std::tuple<std::string, mp::Queue<std::string>>;

    MyProcess(std::string name, Func function, Args arguments)
        : mp::Process(), func(std::move(function)), args(std::move(arguments)) {
        set_name(std::move(name));
        res = "";
    }

    void run() override { std::apply(func, args); }  // self.res = self.func(*self.args): func returns None

    Func func;
    Args args;
    std::string res;
};

void func(const std::string& name, mp::Queue<std::string>& q) {
    std::cout << "start process...\n" << std::flush;
    std::string upper = name;  // name.upper()
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    q.put(upper);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<MyProcess> processes;
    mp::Queue<std::string> q;
    for (int i = 0; i < 3; ++i) {
        MyProcess p("process", func, {"kel", q});
        processes.push_back(std::move(p));
    }
    for (auto& i : processes) i.start();
    for (auto& i : processes) i.join();
    while (q.qsize() > 0) std::cout << q.get() << "\n" << std::flush;
}
