// Must NOT compile: a lambda capturing a std::string cannot be sent to a pool worker (its bytes
// are not its state); the state must be passed as an argument instead.
#include <polyproc/polyproc.hpp>
#include <string>
int main() {
    polyproc::Pool pool(1);
    std::string greeting = "hello ";
#ifndef POLYPROC_COMPILE_OK
    return pool.apply([greeting](int x) { return greeting.size() + std::size_t(x); }, 1) > 0 ? 0 : 1;
#else
    return pool.apply([](const std::string& g, int x) { return g.size() + std::size_t(x); }, greeting, 1) > 0 ? 0 : 1;
#endif
}
