// pipe_myprocess_three_children — seed 001 (001_94d79d745d84608d.txt), lines 158-178: results
// come back through a pipe. Three MyProcess children all send on the same child_conn, and the
// main process calls recv() once per child. The text (lines 180-182) warns that the numbers of
// sends and receives must be known exactly, and that one failure probably makes the pipe unusable.
//
// The seed is broken (as written, an IndentationError): the scraper merged the class body with
// func, losing __init__, run and `def func(name, child_conn):`, and added a stray ")". This is
// the evident program: MyProcess as in myprocess_result_lost, with run() calling
// self.func(*self.args), and func(name, child_conn) sending name.upper() through the pipe.
// (Joining before recv() works only because the messages are small enough to fit in the pipe.)
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
    using Func = std::function<void(const std::string&, mp::Connection&)>;
    using Args = std::tuple<std::string, std::reference_wrapper<mp::Connection>>;

    MyProcess(std::string name, Func function, Args arguments)
        : mp::Process(), func(std::move(function)), args(std::move(arguments)) {
        set_name(std::move(name));
    }

    void run() override { std::apply(func, args); }

    Func func;
    Args args;
};

void func(const std::string& name, mp::Connection& child_conn) {
    std::cout << "start process...\n" << std::flush;
    std::string upper = name;  // name.upper()
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    child_conn.send(upper);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<MyProcess> processes;
    auto [parent_conn, child_conn] = mp::Pipe();
    for (int i = 0; i < 3; ++i) {
        MyProcess p("process", func, {"kel", std::ref(child_conn)});
        processes.push_back(std::move(p));
    }
    for (auto& i : processes) i.start();
    for (auto& i : processes) i.join();
    for ([[maybe_unused]] auto& i : processes) std::cout << parent_conn.recv<std::string>() << "\n" << std::flush;
}
