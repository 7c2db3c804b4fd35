// Must NOT compile: a manager's Pool takes what a local Pool takes, so a lambda capturing a
// std::string cannot be its task either; the state must be passed as an argument instead.
#include <polyproc/polyproc.hpp>
#include <string>
int main(int argc, char** argv) {
    polyproc::init(argc, argv);
    auto manager = polyproc::Manager();
    auto pool = manager.Pool(1);
    std::string greeting = "hello ";
#ifndef POLYPROC_COMPILE_OK
    return pool.apply([greeting](int x) { return greeting.size() + std::size_t(x); }, 1) > 0 ? 0 : 1;
#else
    return pool.apply([](const std::string& g, int x) { return g.size() + std::size_t(x); }, greeting, 1) > 0 ? 0 : 1;
#endif
}
