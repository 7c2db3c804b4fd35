// A library that test_context loads with dlopen() after the program started: its functions must
// still reach spawn and forkserver children (the child loads it too), by position or, when
// registered with POLYPROC_REGISTER, by name.
#include <cstdlib>

#include "polyproc/detail/code_ref.hpp"

extern "C" void plugin_exit_with_7() { std::_Exit(7); }
extern "C" int plugin_square(int x) { return x * x; }

namespace {
int plugin_registered_cube(int x) { return x * x * x; }
}  // namespace
POLYPROC_REGISTER(plugin_registered_cube);

using CubeFn = int (*)(int);
extern "C" CubeFn plugin_cube() { return &plugin_registered_cube; }
