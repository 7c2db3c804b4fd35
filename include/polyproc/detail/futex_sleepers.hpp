// polyproc/detail/futex_sleepers.hpp — who may be asleep on a futex word: the bookkeeping of
// polyproc's one waiter shape (os::futex_wait_until and os::futex_wake_sleepers, src/os.hpp).
// It sits next to its word, in shared memory for the process-shared primitives and queues, in a
// plain object for a Pool's AsyncResult. Internal.
#pragma once

#include <cstdint>

#include <sys/types.h>

namespace polyproc::detail {

// `count` tells a waker whether FUTEX_WAKE is needed at all. A sleeper SIGKILLed in its sleep
// never takes itself off the count, which would make every later waker pay a useless syscall; so
// a sleeper also notes its pid in a slot, and a waker whose wake-ups keep finding nobody takes
// the slots of dead processes off the count.
struct FutexSleepers {
    static constexpr int kSlots = 30;
    std::uint32_t count = 0;         // sleepers, dead ones included until healed
    std::uint32_t futile_wakes = 0;  // FUTEX_WAKEs in a row that woke nobody
    pid_t slots[kSlots] = {};        // a sleeping process's pid, or 0
};
static_assert(sizeof(FutexSleepers) == 128);

}  // namespace polyproc::detail
