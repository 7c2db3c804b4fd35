// Must NOT compile: a raw pointer points into this process's memory.
#include <polyproc/polyproc.hpp>
int main() {
    auto [a, b] = polyproc::Pipe();
    int x = 0;
#ifndef POLYPROC_COMPILE_OK
    a.send(&x);
#else
    a.send(x);
#endif
}
