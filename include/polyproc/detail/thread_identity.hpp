// polyproc/detail/thread_identity.hpp — the calling thread's pid and tid, cached per thread so
// that ownership checks (a Lock's owner) and sleepers' bookkeeping (a futex waiter's slot) need
// no syscall. Refreshed in a fork child by the one after-fork hook (src/fork_safety.cpp).
// Internal.
#pragma once

#include <sys/types.h>

namespace polyproc::detail {

struct ThreadIdentity {
    pid_t pid = 0;  // 0: not known yet in this thread
    pid_t tid = 0;
};
extern constinit thread_local ThreadIdentity this_thread_identity [[gnu::tls_model("initial-exec")]];
void refresh_thread_identity() noexcept;
inline const ThreadIdentity& this_thread() noexcept {
    if (this_thread_identity.pid == 0) [[unlikely]]
        refresh_thread_identity();
    return this_thread_identity;
}

}  // namespace polyproc::detail
