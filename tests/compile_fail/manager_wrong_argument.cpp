// Must NOT compile: a registered class's method called through its proxy with an argument of the
// wrong type (a string for an int). The control build (POLYPROC_COMPILE_OK) passes an int.
#include <polyproc/polyproc.hpp>
#include <string>

struct Counter {
    void add(int n) { total += n; }
    int total = 0;
};
using CounterType = polyproc::Registration<"Counter", &polyproc::construct<Counter>,
                                           polyproc::Method<"add", &Counter::add>>;

int main() {
    polyproc::AutoProxy<CounterType> counter;
#ifdef POLYPROC_COMPILE_OK
    if (counter.valid()) counter.call<&Counter::add>(1);
#else
    if (counter.valid()) counter.call<&Counter::add>(std::string("one"));
#endif
}
