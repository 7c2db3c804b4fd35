// The main of every test binary: mp::init first (a spawn or forkserver child of a test runs its
// target there), then GoogleTest. The start method comes from POLYPROC_START_METHOD, which CTest
// sets to run each behavioural test once per method (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include "polyproc/context.hpp"

int main(int argc, char** argv) {
    polyproc::init(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
