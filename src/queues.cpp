// Queue, SimpleQueue and JoinableQueue's shared engine. See queues.hpp for the contract.
//
// The ring. One reservation of address space (a memfd mapped MAP_SHARED | MAP_NORESERVE) holds
// a control block and a ring of `capacity` bytes, typically gigabytes, of which only touched pages
// cost memory. A record is an 8-byte header and its payload padded to 8 bytes. Where producers put
// the next record (straight on, at the start of the next lap, early back to the hot start, or
// around unread data through a skip record) is queue_ring.hpp's; consumers just follow skip
// records. When consumers drain a grown ring, the pages beyond kRetainedBytes are given back
// (discard_drained_pages).
//
// Locks and crashes. Producers take `wlock`, consumers `rlock` (robust mutexes, so a holder's
// death hands the lock on). A record is published by one store of `tail` after it is written, and
// taken by one store of `head` after it is read, so a process killed at any point leaves either
// the whole record or none of it. The item counters move in separate stores; each side records
// what it is about to do (an "intent") first, so that the next holder of a dead holder's lock
// can complete or undo the count (repair_after_dead_producer / _consumer).
//
// Waiting. A side that must wait spins briefly (a wake-up across cores costs ~40 µs here), then
// sleeps on a futex sequence word, counted so that the other side makes the FUTEX_WAKE syscall
// only when someone sleeps (os::futex_wait_until; a sleeper killed in its sleep is taken off that
// count by a waker whose wake-ups keep finding nobody, detail/futex_sleepers.hpp). Publishing and
// checking that count take no locked instruction: an asymmetric barrier (os::light_barrier /
// heavy_barrier, membarrier(2)) puts the cost on the side about to sleep. Sleeps are cut into
// slices of kRecheckInterval, so that a wake-up lost with a process that died right after
// receiving it delays, never wedges.
#include "polyproc/queues.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <new>
#include <optional>

#include "os.hpp"
#include "queue_ring.hpp"
#include "polyproc/synchronize.hpp"

namespace polyproc::detail {

namespace {

using ring::kHeaderBytes;
using ring::kHotWindow;
constexpr std::uint64_t kSkipFlag = 1;  // header bit 0: a skip record (else an item)
constexpr std::uint64_t kRetainedBytes = 32 << 20;  // kept resident after a drain
constexpr std::uint64_t kDiscardAtLeast = 8 << 20;  // do not bother discarding less
constexpr auto kRecheckInterval = std::chrono::milliseconds(200);

template <class T>
std::atomic_ref<T> atomic(T& x) noexcept {
    return std::atomic_ref<T>(x);
}

constexpr std::uint64_t round_up8(std::uint64_t n) { return (n + 7) & ~std::uint64_t(7); }

std::uint64_t default_capacity() {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer maps shadow memory for every mapping: keep the reservation modest.
    return std::uint64_t(1) << 30;
#else
    const std::uint64_t half_ram = os::physical_memory() / 2;
    return std::clamp<std::uint64_t>(half_ram, std::uint64_t(64) << 20, std::uint64_t(32) << 30);
#endif
}

}  // namespace

// The processes sleeping on one futex word (os::futex_wait_until): `seq` is bumped by a wake-up
// that finds someone counted in `who`.
struct Sleepers {
    std::uint32_t seq = 0;
    std::uint32_t unused = 0;
    FutexSleepers who;
};

// Each group below sits on its own cache lines: a lock and the fields only its holders touch,
// apart from what the other side reads (tail, put_count; head, got_count). Sharing a line with a
// field the other side polls would move the lock's line between cores on every lock and unlock.
struct QueueShared {
    // Fixed at creation.
    std::uint64_t capacity = 0;  // ring bytes
    std::uint64_t maxsize = 0;  // items; 0: unbounded

    // Producers' side, under wlock.
    alignas(64) MutexState wlock;
    std::uint64_t seen_head = 0;  // head as last read: space checks seldom touch the consumers' line
    std::uint64_t seen_got = 0;
    std::uint64_t head_read_at = 0;  // tail when seen_head was last read
    std::uint64_t touched_end = 0;  // ring offset below which pages may be resident
    std::uint64_t put_intent_count = 0;
    std::uint64_t put_intent_tail = 0;
    ring::Holes holes;  // positions skipped over that consumers have not passed (queue_ring.hpp)
    // What producers publish (written under wlock, read by everyone).
    alignas(64) std::uint64_t tail = 0;
    std::uint64_t put_count = 0;

    // Consumers' side, under rlock.
    alignas(64) MutexState rlock;
    std::uint64_t seen_tail = 0;
    std::uint64_t get_intent_head = 0;
    std::uint64_t get_intent_count = 0;
    // What consumers publish.
    alignas(64) std::uint64_t head = 0;
    std::uint64_t got_count = 0;

    // Who sleeps waiting for data, for room, and in JoinableQueue::join().
    alignas(64) Sleepers data;
    alignas(64) Sleepers space;
    alignas(64) Sleepers joiners;
    alignas(64) std::uint64_t done_count = 0;  // JoinableQueue: items task_done()'d
};

namespace {

std::size_t control_bytes() {
    const std::size_t page = os::page_size();
    return (sizeof(QueueShared) + page - 1) / page * page;
}

// How queues wait: a waker is on every put and get, so it pays only a compiler barrier (every
// process that publishes is registered: register_this_process); sleepers re-check in slices.
constexpr os::WaitStyle kQueueWait{.asymmetric = true, .recheck = kRecheckInterval};

// Sleeps until ready(). false when the deadline passed.
template <class Ready>
bool sleep_until(Sleepers& sleepers, Ready ready, const Deadline& deadline) {
    return os::futex_wait_until(sleepers.seq, sleepers.who, ready, deadline, kQueueWait);
}

// The waker's half. The caller made its change with a release store.
void wake_sleepers(Sleepers& s, int how_many) noexcept {
    os::futex_wake_sleepers(s.seq, s.who, how_many, os::Wake::bump_word, kQueueWait);
}

// The producers' and consumers' locks. When the previous holder died inside, its record was
// published (taken) whole or not at all; only its count may be half done: undo or finish it.
void refresh_seen_head(QueueShared& s) {
    s.seen_head = atomic(s.head).load(std::memory_order_acquire);
    s.head_read_at = s.tail;
}

// touched_end is written under wlock and read by consumers without it.
void raise_touched_end(QueueShared& s, std::uint64_t end) {
    if (end > s.touched_end) atomic(s.touched_end).store(end, std::memory_order_relaxed);
}

bool lock_producers(QueueShared& s, Timeout timeout) {
    try {
        return mutex_acquire(s.wlock, true, timeout);
    } catch (const OwnerDiedError&) {
        if (s.put_count == s.put_intent_count && s.tail != s.put_intent_tail)
            atomic(s.put_count).store(s.put_count - 1);
        const std::byte* ring = reinterpret_cast<const std::byte*>(&s) + control_bytes();
        s.holes.keep_verified(atomic(s.head).load(std::memory_order_acquire), s.tail, [&](std::uint64_t pos) {
            std::uint64_t word;
            std::memcpy(&word, ring + pos % s.capacity, sizeof word);
            return word;
        });
        return true;
    }
}

bool lock_consumers(QueueShared& s, Timeout timeout) {
    try {
        return mutex_acquire(s.rlock, true, timeout);
    } catch (const OwnerDiedError&) {
        if (s.head == s.get_intent_head && s.got_count != s.get_intent_count)
            atomic(s.got_count).store(s.get_intent_count);
        return true;
    }
}

Timeout remaining(const Deadline& deadline) { return deadline.is_never() ? Timeout{} : Timeout{*deadline.remaining()}; }

}  // namespace

namespace {

// Every process that publishes (put or get) uses the light barrier: registered once per process.
void register_this_process() noexcept {
    static std::atomic<pid_t> registered{0};
    const pid_t me = this_thread().pid;
    if (registered.load(std::memory_order_relaxed) == me) [[likely]]
        return;
    os::register_light_side();
    registered.store(me, std::memory_order_relaxed);
}

// The control block and the largest ring the system lets us reserve: under strict overcommit
// accounting a large reservation may be refused, so halve it down to 16 MiB.
std::shared_ptr<SharedRegion> reserve_queue_region() {
    std::uint64_t capacity = default_capacity() / os::page_size() * os::page_size();
    for (;;) {
        try {
            return std::make_shared<SharedRegion>(control_bytes() + capacity, SharedRegion::Commit::on_touch);
        } catch (const std::system_error&) {
            if (capacity <= (std::uint64_t(16) << 20)) throw;
            capacity /= 2;
        }
    }
}

}  // namespace

QueueCore::QueueCore(std::size_t maxsize, Kind kind)
    : region_(reserve_queue_region()),
      shared_(::new(region_->data()) QueueShared()),
      ring_(static_cast<std::byte*>(region_->data()) + control_bytes()),
      kind_(kind) {
    register_this_process();
    shared_->capacity = region_->size() - control_bytes();
    shared_->maxsize = maxsize;
    init_mutex(shared_->wlock, false);
    init_mutex(shared_->rlock, false);
}

QueueCore::QueueCore(std::shared_ptr<SharedRegion> region, Kind kind)
    : region_(std::move(region)),
      shared_(region_object<QueueShared>(*region_)),
      ring_(static_cast<std::byte*>(region_->data()) + control_bytes()),
      kind_(kind) {
    if (region_->size() < control_bytes() || shared_->capacity != region_->size() - control_bytes())
        throw DecodeError("polyproc: a received queue's shared memory does not match its ring size");
    register_this_process();
}

std::size_t QueueCore::max_message_size() const noexcept { return shared_->capacity / 2 - kHeaderBytes; }
std::size_t QueueCore::maxsize() const noexcept { return shared_->maxsize; }
std::uint32_t QueueCore::sleepers_waiting_for_data() const noexcept {
    return atomic(shared_->data.who.count).load(std::memory_order_relaxed);
}

std::size_t QueueCore::qsize() const noexcept {
    // got first: put_count only grows and is never behind got_count, so the difference is never
    // negative.
    const std::uint64_t got = atomic(shared_->got_count).load(std::memory_order_acquire);
    const std::uint64_t put = atomic(shared_->put_count).load(std::memory_order_acquire);
    return put - got;
}

bool QueueCore::full() const noexcept { return shared_->maxsize != 0 && qsize() >= shared_->maxsize; }

void QueueCore::throw_closed() const {
    switch (kind_) {
        case Kind::simple:
            os::throw_error(std::errc::bad_file_descriptor, "SimpleQueue: handle is closed");
        case Kind::joinable:
            throw ValueError("JoinableQueue is closed");
        case Kind::queue:
            break;
    }
    throw ValueError("Queue is closed");
}

void QueueCore::close() noexcept {
    if (closed_.exchange(true)) return;
    // Wake this process's blocked calls so that they see the flag; sleepers elsewhere re-check
    // and sleep again.
    QueueShared& s = *shared_;
    for (Sleepers* sleepers : {&s.data, &s.space, &s.joiners})
        os::wake_counted(sleepers->seq, sleepers->who, INT_MAX, os::Wake::bump_word);  // counted or not
}

// ---- producers ------------------------------------------------------------------------------

std::byte* QueueCore::begin_put(std::size_t size, bool block, Timeout timeout) {
    if (closed()) throw_closed();
    register_this_process();
    QueueShared& s = *shared_;
    if (size > max_message_size())
        throw ValueError("polyproc: a " + std::to_string(size) + "-byte item is larger than this queue takes (" +
                         std::to_string(max_message_size()) + " bytes, half its ring)");
    const std::uint64_t bytes = kHeaderBytes + round_up8(size);
    if (timeout.non_blocking()) block = false;
    const Deadline deadline = block ? Deadline(timeout) : Deadline();

    for (;;) {
        if (!lock_producers(s, remaining(deadline))) throw Full();
        bool room = true;
        if (s.maxsize != 0 && s.put_count - s.seen_got >= s.maxsize) {
            s.seen_got = atomic(s.got_count).load(std::memory_order_acquire);
            room = s.put_count - s.seen_got < s.maxsize;
        }
        std::optional<ring::Placement> where;
        if (room) {
            // A stale head also hides a chance to wrap back to the hot start of the ring: past the
            // hot window, look at the consumers' line again, at most once every kHotWindow / 4.
            const bool beyond_hot = s.tail % s.capacity >= kHotWindow && s.tail - s.head_read_at >= kHotWindow / 4;
            if (beyond_hot) refresh_seen_head(s);
#if defined(__SANITIZE_THREAD__)
            // seen_head may have been read by another producer process, whose acquire load
            // ThreadSanitizer cannot see: read it here, so that it sees the consumers' release.
            refresh_seen_head(s);
#endif
            s.holes.forget(s.seen_head, s.tail);
            where = ring::place(ring::RingView{s.capacity, s.tail, s.seen_head, s.holes}, bytes);
            if (!where && !beyond_hot) {
                refresh_seen_head(s);
                where = ring::place(ring::RingView{s.capacity, s.tail, s.seen_head, s.holes}, bytes);
            }
        }
        if (where) {
            const std::uint64_t at = s.tail % s.capacity;
            if (where->start != s.tail) {  // a jump: a skip record leads there
                const std::uint64_t skip = ((where->start - s.tail) << 1) | kSkipFlag;
                std::memcpy(ring_ + at, &skip, kHeaderBytes);
                raise_touched_end(s, at + kHeaderBytes);
                s.holes.add(s.tail + kHeaderBytes, where->start);  // forgotten unless published
            }
            const std::uint64_t offset = where->start % s.capacity;
            const std::uint64_t header = std::uint64_t(size) << 1;
            std::memcpy(ring_ + offset, &header, kHeaderBytes);
            raise_touched_end(s, offset + bytes);
            pending_tail_ = where->new_tail;
            return ring_ + offset + kHeaderBytes;
        }
        // Sleep until the consumers move on from what they have done by now (fresh values: a
        // stale one would read as progress at once and make this a busy loop).
        refresh_seen_head(s);
        s.seen_got = atomic(s.got_count).load(std::memory_order_acquire);
        const std::uint64_t seen_head = s.seen_head, seen_got = s.seen_got;
        mutex_release(s.wlock);
        if (!block) throw Full();
        const bool waited = wait_for_space(seen_head, seen_got, deadline);
        if (closed()) throw_closed();
        if (!waited) throw Full();
    }
}

void QueueCore::end_put(bool publish) noexcept {
    QueueShared& s = *shared_;
    if (publish) {
        // The count goes first (a consumer may call task_done() the moment the item is visible),
        // then the one store that publishes. A producer killed between them is undone by the next
        // holder of the lock, which finds the count recorded and the tail not moved.
        const std::uint64_t count = s.put_count + 1;
        atomic(s.put_intent_count).store(count, std::memory_order_relaxed);
        atomic(s.put_intent_tail).store(pending_tail_, std::memory_order_release);
        atomic(s.put_count).store(count, std::memory_order_release);
        atomic(s.tail).store(pending_tail_, std::memory_order_release);
    } else {
        s.holes.forget(0, s.tail);
    }
    mutex_release(s.wlock);
    if (publish) wake_sleepers(s.data, 1);
}

bool QueueCore::wait_for_space(std::uint64_t seen_head, std::uint64_t seen_got, const Deadline& deadline) {
    QueueShared& s = *shared_;
    return sleep_until(
        s.space,
        [&] {
            return closed() || atomic(s.head).load(std::memory_order_acquire) != seen_head ||
                   atomic(s.got_count).load(std::memory_order_acquire) != seen_got;
        },
        deadline);
}

// ---- consumers ------------------------------------------------------------------------------

std::span<const std::byte> QueueCore::begin_get(bool block, Timeout timeout) {
    if (closed()) throw_closed();
    register_this_process();
    QueueShared& s = *shared_;
    if (timeout.non_blocking()) block = false;
    const Deadline deadline = block ? Deadline(timeout) : Deadline();

    for (;;) {
        if (!lock_consumers(s, remaining(deadline))) throw Empty();
        for (;;) {
            const std::uint64_t head = s.head;
            if (head == s.seen_tail) s.seen_tail = atomic(s.tail).load(std::memory_order_acquire);
            if (head == s.seen_tail) break;  // empty
            const std::uint64_t at = head % s.capacity;
            std::uint64_t header;
            std::memcpy(&header, ring_ + at, kHeaderBytes);
            if (header & kSkipFlag) {
                const std::uint64_t next = head + (header >> 1);
                atomic(s.head).store(next, std::memory_order_release);
                // At the start of a lap (not after a jump into a hole, which lands mid-ring).
                if (next % s.capacity == 0 &&
                    atomic(s.touched_end).load(std::memory_order_relaxed) >= kRetainedBytes + kDiscardAtLeast)
                    discard_drained_pages();
                wake_sleepers(s.space, 1);
                continue;
            }
            const std::uint64_t size = header >> 1;
            pending_head_ = head + kHeaderBytes + round_up8(size);
            return {ring_ + at + kHeaderBytes, size};
        }
        mutex_release(s.rlock);
        if (!block) throw Empty();
        const bool waited = wait_for_data(deadline);
        if (closed()) throw_closed();
        if (!waited) throw Empty();
    }
}

void QueueCore::cancel_get() noexcept { mutex_release(shared_->rlock); }

std::uint64_t QueueCore::taken_count() {
    QueueShared& s = *shared_;
    lock_consumers(s, {});
    const std::uint64_t taken = s.got_count;
    mutex_release(s.rlock);
    return taken;
}

void QueueCore::end_get() noexcept {
    QueueShared& s = *shared_;
    const std::uint64_t count = s.got_count + 1;
    atomic(s.get_intent_head).store(pending_head_, std::memory_order_relaxed);
    atomic(s.get_intent_count).store(count, std::memory_order_release);
    atomic(s.head).store(pending_head_, std::memory_order_release);
    atomic(s.got_count).store(count, std::memory_order_release);
    mutex_release(s.rlock);
    wake_sleepers(s.space, 1);
}

bool QueueCore::wait_for_data(const Deadline& deadline) {
    QueueShared& s = *shared_;
    return sleep_until(
        s.data,
        [&] {
            return closed() ||
                   atomic(s.tail).load(std::memory_order_acquire) != atomic(s.head).load(std::memory_order_acquire);
        },
        deadline);
}

// Called by a consumer (holding rlock) whose head just wrapped to offset 0: the live records now
// lie in [0, tail - head), so the resident pages between that and touched_end hold nothing. Keep
// kRetainedBytes for the next burst, give the rest back. The producers' lock keeps them out while
// the pages go (lock order: rlock, then wlock; producers never take rlock).
void QueueCore::discard_drained_pages() noexcept {
    QueueShared& s = *shared_;
    try {
        lock_producers(s, {});
    } catch (...) {
        return;  // only the discard is skipped
    }
    const std::uint64_t page = os::page_size();
    const std::uint64_t live_end = (s.tail - s.head + page - 1) / page * page;
    const std::uint64_t from = std::max(kRetainedBytes, live_end);
    if (from + kDiscardAtLeast <= s.touched_end) {
        try {
            os::discard_pages(ring_ + from, s.touched_end - from);
            atomic(s.touched_end).store(from, std::memory_order_relaxed);
        } catch (const std::system_error&) {
            // Keeping the pages is harmless.
        }
    }
    mutex_release(s.wlock);
}

// ---- JoinableQueue ------------------------------------------------------------------------------

void QueueCore::task_done() {
    register_this_process();  // it wakes joiners the light way
    QueueShared& s = *shared_;
    std::uint64_t done = atomic(s.done_count).load();
    do {
        if (done >= atomic(s.put_count).load()) throw ValueError("task_done() called too many times");
    } while (!atomic(s.done_count).compare_exchange_weak(done, done + 1));
    if (done + 1 == atomic(s.put_count).load()) wake_sleepers(s.joiners, INT_MAX);
}

bool QueueCore::join(Timeout timeout) {
    QueueShared& s = *shared_;
    auto all_done = [&] {
        const std::uint64_t put = atomic(s.put_count).load();
        return atomic(s.done_count).load() >= put;
    };
    if (all_done()) return true;
    if (timeout.non_blocking()) return false;
    return sleep_until(s.joiners, all_done, Deadline(timeout));
}

}  // namespace polyproc::detail
