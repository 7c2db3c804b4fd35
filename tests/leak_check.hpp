// tests/leak_check.hpp — the leak check of every test binary (tests/main.cpp): a GoogleTest
// listener that fails a test which leaves behind a file descriptor, a /dev/shm entry, a child
// process or a thread it did not start with, once the test and its fixture are done.
//
// What the library keeps for the rest of the process's life by design (fork_safety.hpp's keep():
// the forkserver, the resource tracker, the resource sharer, the current shared-memory arena) is
// not a leak. Threads and children get a few seconds to finish going away before they count. A
// leaked child is SIGKILLed and reaped after the report, so that it cannot disturb later tests.
// POLYPROC_LEAK_CHECK=0 turns the check off (to look at a leak in a debugger, say).
#pragma once

namespace polyproc_test {

// Gives this test process (and every process it starts) a /dev/shm of its own: a tmpfs in a
// private mount namespace. Tests running in parallel then never see each other's segments, and
// the check sees exactly this test's. Call first thing in main, before any thread starts. Does
// nothing in polyproc's own children (spawn and forkserver re-run main). Where the process may not
// make a mount namespace (not root), /dev/shm stays shared and the check leaves it out.
void give_this_process_its_own_dev_shm();

// Adds the listener (after GoogleTest's printer, so that its failures are reported as the
// test's). Call after testing::InitGoogleTest.
void install_leak_check();

}  // namespace polyproc_test
