// The main of every test binary: a /dev/shm of its own, mp::init (a spawn or forkserver child of a
// test runs its target there), then GoogleTest with the leak check (leak_check.hpp). The start
// method comes from POLYPROC_START_METHOD, which CTest sets to run each behavioural test once per
// method (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "polyproc/context.hpp"

int main(int argc, char** argv) {
    polyproc_test::give_this_process_its_own_dev_shm();
    polyproc::init(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    polyproc_test::install_leak_check();
    return RUN_ALL_TESTS();
}
