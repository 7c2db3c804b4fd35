// Condition (synchronize.hpp): each waiter takes a slot and a ticket; notify(n) hands n
// notifications to the n oldest waiters and wakes only those.
//
// Why not one sequence word that every notify bumps (what a Barrier sleeps on): a waiter still in
// its spin sees the bump too, so notify(1) woke every spinning waiter, and wait() returned true in
// waiters nobody chose. Python's Condition is exact; so is this one.
//
// The protocol. Taking a slot, tickets and notify run under the Condition's lock. A slot's state
// word moves
//     free --(the waiter, under the lock)--> waiting --(notify, under the lock)--> notified
//                                                     --(the waiter's timeout)---> cancelled
// and then the waiter stores free. The two ways out of `waiting` are compare-and-swaps, so a
// notification and a timeout that meet resolve one way: the waiter either was notified (and
// returns true) or had left (and notify chooses someone else).
// Death: the waiter holds its slot's robust mutex from taking the slot until after freeing it. A
// trylock that returns EOWNERDEAD (the kernel marks the mutex when the thread dies, before its
// process is even a zombie) shows a dead waiter, whose slot notify skips and frees. A live
// waiter's mutex is busy, which trylock sees without a system call.
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <string>

#include "os.hpp"
#include "polyproc/synchronize.hpp"

namespace polyproc {

namespace detail {

struct ConditionSlot {
    pthread_mutex_t alive;    // robust, process-shared; held by the slot's waiter
    std::uint32_t state = 0;  // futex word: a SlotState, plus kAsleep while its waiter may sleep
    std::uint32_t ticket = 0;  // arrival order; wraps, so ages are next_ticket - ticket
};

struct ConditionState {
    std::uint32_t next_ticket = 0;  // both under the Condition's lock
    std::uint32_t slots_used = 0;   // slots [0, slots_used) have an initialized mutex
    ConditionSlot slots[Condition::kMaxWaiters];
};
static_assert(sizeof(ConditionState) <= 16 * 1024, "a Condition's shared memory is 16 KiB");

}  // namespace detail

namespace {

using detail::ConditionSlot;
using detail::ConditionState;

enum SlotState : std::uint32_t { kFree = 0, kWaiting = 1, kNotified = 2, kCancelled = 3 };
constexpr std::uint32_t kAsleep = 0x100;  // set by a waiter before FUTEX_WAIT: the notifier wakes it

std::atomic_ref<std::uint32_t> state_of(ConditionSlot& slot) noexcept { return std::atomic_ref(slot.state); }
bool is_waiting(std::uint32_t state) noexcept { return (state & ~kAsleep) == kWaiting; }

enum class Holder { none, alive, dead };

// Tries the slot's mutex: `none` (it is ours now, and was free), `dead` (ours now, and its last
// holder died holding it) or `alive` (a live waiter holds it; nothing changed).
Holder try_take_mutex(ConditionSlot& slot) {
    const int rc = ::pthread_mutex_trylock(&slot.alive);
    switch (rc) {
        case 0:
            return Holder::none;
        case EBUSY:
            return Holder::alive;
        case EOWNERDEAD:
            ::pthread_mutex_consistent(&slot.alive);
            return Holder::dead;
        default:
            os::throw_errno("pthread_mutex_trylock", rc);
    }
}

// Under the Condition's lock: a slot for the calling thread, its mutex held.
ConditionSlot& take_slot(ConditionState& c) {
    for (std::uint32_t i = 0; i < c.slots_used; ++i) {  // a slot whose waiter has left
        ConditionSlot& slot = c.slots[i];
        if (state_of(slot).load() == kFree && try_take_mutex(slot) != Holder::alive) return slot;
    }
    if (c.slots_used < Condition::kMaxWaiters) {
        ConditionSlot& slot = c.slots[c.slots_used];
        detail::init_robust_mutex(slot.alive, PTHREAD_MUTEX_NORMAL);
        if (const int rc = ::pthread_mutex_lock(&slot.alive); rc != 0) os::throw_errno("pthread_mutex_lock", rc);
        std::atomic_ref(c.slots_used).store(c.slots_used + 1);  // repr() reads it without the lock
        return slot;
    }
    for (std::uint32_t i = 0; i < c.slots_used; ++i) {  // full: a slot whose waiter died in it
        ConditionSlot& slot = c.slots[i];
        if (try_take_mutex(slot) != Holder::alive) return slot;
    }
    throw ValueError("Condition.wait(): " + std::to_string(Condition::kMaxWaiters) +
                     " threads are waiting on this Condition already, the most it holds");
}

// The waiter leaves its slot: free first, then the mutex, so that a slot reads free only once its
// waiter has stopped looking at it, and a waiter that dies in between still shows as dead.
void leave_slot(ConditionSlot& slot) noexcept {
    state_of(slot).store(kFree);
    ::pthread_mutex_unlock(&slot.alive);
}

// The waiter, done waiting: cancels its wait unless a notification came first; whether one did.
bool settle(ConditionSlot& slot) noexcept {
    auto state = state_of(slot);
    std::uint32_t s = state.load();
    while (is_waiting(s))
        if (state.compare_exchange_weak(s, kCancelled)) return false;
    return (s & ~kAsleep) == kNotified;
}

// The waiter, without the lock: waits until its slot is notified or the deadline passes; then
// settles which it was.
bool await_notification(ConditionSlot& slot, const detail::Deadline& deadline) {
    auto state = state_of(slot);
    auto settled = [&] { return !is_waiting(state.load(std::memory_order_acquire)); };
    if (!deadline.expired() && !os::spin_until(settled)) {
        while (!settled()) {
            std::uint32_t expected = kWaiting;
            // The notifier swaps the state and, seeing kAsleep, wakes us: set it before sleeping.
            if (!state.compare_exchange_strong(expected, kWaiting | kAsleep) && !is_waiting(expected)) break;
            if (deadline.expired()) break;
            os::futex_wait(&slot.state, kWaiting | kAsleep, deadline);
        }
    }
    return settle(slot);
}

// The notifier, under the lock: hands the slot its notification if it still waits.
bool hand_notification(ConditionSlot& slot) {
    auto state = state_of(slot);
    std::uint32_t s = state.load();
    while (is_waiting(s)) {
        if (state.compare_exchange_weak(s, kNotified)) {
            if (s & kAsleep) os::futex_wake(&slot.state, 1);
            return true;
        }
    }
    return false;  // its timeout came first
}

// Under the lock: notifies the waiter in `slot` if it is alive and still waiting. A dead waiter's
// slot is freed.
bool notify_slot(ConditionSlot& slot) {
    switch (try_take_mutex(slot)) {
        case Holder::alive:
            return hand_notification(slot);
        case Holder::dead:
            state_of(slot).store(kFree);
            break;
        case Holder::none:  // its waiter left after cancelling, between our look and the trylock
            if (is_waiting(state_of(slot).load())) state_of(slot).store(kFree);  // cannot happen
            break;
    }
    ::pthread_mutex_unlock(&slot.alive);
    return false;
}

// The waiting slot with the oldest ticket, or null.
ConditionSlot* oldest_waiter(ConditionState& c) noexcept {
    ConditionSlot* oldest = nullptr;
    std::uint32_t oldest_age = 0;
    for (std::uint32_t i = 0; i < c.slots_used; ++i) {
        ConditionSlot& slot = c.slots[i];
        if (!is_waiting(state_of(slot).load())) continue;
        const std::uint32_t age = c.next_ticket - slot.ticket;
        if (!oldest || age > oldest_age) {
            oldest = &slot;
            oldest_age = age;
        }
    }
    return oldest;
}

}  // namespace

Condition::Condition(detail::LockBase&& lock) : lock_(std::move(lock)) {
    auto [region, state] = detail::make_shared_object<detail::ConditionState>();
    region_ = std::move(region);
    state_ = state;
}

Condition::Condition(detail::ChildReader& r)
    : lock_(r), region_(r.region()), state_(detail::region_object<detail::ConditionState>(*region_)) {}

bool Condition::wait(Timeout timeout) {
    if (!lock_.is_mine()) throw ValueError("must acquire() condition before using wait()");
    // Python's wait(0) releases and re-acquires, never sleeps; a notification in between counts.
    const detail::Deadline deadline(timeout.non_blocking() ? Timeout(std::chrono::nanoseconds(0)) : timeout);
    detail::MutexState& m = lock_.state();
    ConditionSlot& slot = take_slot(*state_);
    slot.ticket = state_->next_ticket++;
    state_of(slot).store(kWaiting);
    // Release every RLock level, and restore the depth however we leave.
    const std::uint32_t depth = m.depth;
    m.depth = 1;
    struct Restore {
        detail::MutexState& m;
        std::uint32_t depth;
        ~Restore() {
            if (detail::mutex_is_mine(m)) m.depth = depth;
        }
    } restore{m, depth};
    bool notified = false;
    try {
        detail::mutex_release(m);
        notified = await_notification(slot, deadline);
    } catch (...) {
        (void)settle(slot);  // a notification handed meanwhile is lost with the error, as it must be
        leave_slot(slot);
        if (!detail::mutex_is_mine(m)) detail::mutex_acquire(m, true, {});  // wait() returns holding it
        throw;
    }
    leave_slot(slot);
    detail::mutex_acquire(m, true, {});  // OwnerDiedError propagates with the lock held at its old depth
    return notified;
}

void Condition::notify(int n) {
    if (!lock_.is_mine()) throw ValueError("lock is not owned");
    for (int woken = 0; woken < n;) {
        ConditionSlot* slot = oldest_waiter(*state_);
        if (!slot) return;
        if (notify_slot(*slot)) ++woken;
    }
}

std::string Condition::repr() const {
    int waiters = 0;  // read without the lock: a moment's count, as Python's
    for (std::uint32_t i = 0; i < std::atomic_ref(state_->slots_used).load(); ++i)
        if (is_waiting(state_of(state_->slots[i]).load())) ++waiters;
    const detail::MutexState& m = lock_.state();
    return "<Condition(" + detail::mutex_repr(m, m.recursive ? "RLock" : "Lock") + ", " + std::to_string(waiters) +
           ")>";
}

void Condition::notify_all() {
    if (!lock_.is_mine()) throw ValueError("lock is not owned");
    for (std::uint32_t i = 0; i < state_->slots_used; ++i)
        if (is_waiting(state_of(state_->slots[i]).load())) notify_slot(state_->slots[i]);
}

}  // namespace polyproc
