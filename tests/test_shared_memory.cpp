// SharedMemory tests: in progress (issue #3).
#include <gtest/gtest.h>
