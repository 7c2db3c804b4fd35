// polyproc/queues.hpp — Queue, SimpleQueue, JoinableQueue (Python's multiprocessing.queues).
//
// A queue is a ring in anonymous shared memory with futex wake-ups: put() encodes the value
// straight into the ring and returns once it is there, get() decodes it straight out. There is no
// feeder thread and no pipe, so none of Python's feeder pitfalls exist: nothing is buffered in the
// producer, a child that exits with its items unread never makes join() hang, close() and exit
// lose nothing, and qsize() is exact. Any Serializable value travels, from one byte to half the
// ring (by default half of the machine's RAM, at most 32 GiB; a larger one raises mp::ValueError).
// An unbounded queue (maxsize 0) grows into the reserved address space as items wait, like Python's
// buffer grows, and gives the memory back when it drains; a bounded one counts items, as Python's.
//
// Handles are cheap copies of one shared queue: capture them in a child's lambda or pass them as
// Process arguments, exactly as Python passes them. Their methods are const (the handle does not
// change; the shared queue does), so a lambda that captured a copy needs no `mutable`.
// close() is per process, as in Python: it stops this process's put/get (mp::ValueError "... is
// closed"; a get blocked in another thread of this process wakes up with it) while other
// processes go on and drain what is left.
//
// Process-safety: any number of producer and consumer processes and threads. Items from one
// producer arrive in put order; several producers interleave per item. A process SIGKILLed at any
// point never corrupts or wedges the queue for the others:
//   * a producer killed inside put() either published its item whole or not at all;
//   * a consumer killed inside get() loses at most the item it was taking (if it dies before the
//     item is taken off the ring, the next consumer gets it);
//   * an item whose put() returned is never lost or duplicated while no consumer dies;
//   * a process killed while asleep in put() or get() is simply gone.
// JoinableQueue: an item taken by a consumer that dies before task_done() keeps join() waiting, as
// in Python; join(timeout) returns false then.
//
//   mp::Queue<std::string> q;
//   mp::Process p([q] { q.put("hello"); });
//   p.start();
//   std::cout << q.get() << "\n";
//   p.join();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/shared_region.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc {

namespace detail {

struct QueueShared;  // the shared control block; src/queues.cpp

// The type-independent engine behind the three queue handles. One QueueCore per process and
// queue (handle copies share it), over one shared ring. put and get are two halves each: begin_*
// takes the producer's or consumer's lock and returns the bytes to fill or read; end_* publishes
// or consumes them and releases the lock, also when encoding or decoding threw.
class QueueCore {
public:
    enum class Kind : std::uint8_t { queue, simple, joinable };
    QueueCore(std::size_t maxsize, Kind kind);
    // A queue created by another process, whose region a spawn or forkserver child received.
    QueueCore(std::shared_ptr<SharedRegion> region, Kind kind);
    QueueCore(const QueueCore&) = delete;
    QueueCore& operator=(const QueueCore&) = delete;

    // Room for a payload of `size` bytes, with the producers' lock held. mp::Full when there is no
    // room in time; mp::ValueError when closed or larger than the ring can ever hold.
    std::byte* begin_put(std::size_t size, bool block, Timeout timeout);
    void end_put(bool publish) noexcept;
    // The oldest item's payload, with the consumers' lock held. mp::Empty when none came in time.
    std::span<const std::byte> begin_get(bool block, Timeout timeout);
    void end_get() noexcept;
    // Leaves the item on the queue (after begin_get) and releases the consumers' lock.
    void cancel_get() noexcept;

    std::size_t qsize() const noexcept;
    // How many items were ever taken off the queue, settled: a take that a consumer killed inside
    // get() left half done is completed or undone first (under the consumers' lock).
    std::uint64_t taken_count();
    std::size_t maxsize() const noexcept;
    std::size_t max_message_size() const noexcept;
    bool full() const noexcept;
    void close() noexcept;
    bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
    [[noreturn]] void throw_closed() const;
    void task_done();
    bool join(Timeout timeout);
    Kind kind() const noexcept { return kind_; }
    const SharedRegion& region() const noexcept { return *region_; }
    void reduce_for_child(ChildWriter& w) const {
        w.raw(kind_);
        w.region(*region_);
    }
    static std::shared_ptr<QueueCore> from_child(ChildReader& r, Kind expected) {
        const auto kind = r.raw<Kind>();
        if (kind != expected) throw DecodeError("polyproc: a received queue is of another kind");
        return std::make_shared<QueueCore>(r.region(), kind);
    }
    // Processes counted as asleep in get() (dead ones until a waker notices); for tests.
    std::uint32_t sleepers_waiting_for_data() const noexcept;

private:
    bool wait_for_data(const Deadline& deadline);
    bool wait_for_space(std::uint64_t seen_head, std::uint64_t seen_got, const Deadline& deadline);
    void discard_drained_pages() noexcept;

    std::shared_ptr<SharedRegion> region_;  // the control block, then the ring
    QueueShared* shared_;
    std::byte* ring_;
    Kind kind_;
    std::atomic<bool> closed_{false};
    // The put in progress (between begin_put and end_put), under the producers' lock.
    std::uint64_t pending_tail_ = 0;
    // The get in progress, under the consumers' lock.
    std::uint64_t pending_head_ = 0;
};

template <class T>
void queue_put(QueueCore& core, const T& value, bool block, Timeout timeout) {
    if (core.closed()) core.throw_closed();  // before encoding: Python checks first too
    const std::size_t size = encoded_size(value);
    std::byte* out = core.begin_put(size, block, timeout);
    try {
        encode_into(value, std::span<std::byte>(out, size));
    } catch (...) {
        core.end_put(false);
        throw;
    }
    core.end_put(true);
}

template <class T>
T queue_get(QueueCore& core, bool block, Timeout timeout) {
    const std::span<const std::byte> payload = core.begin_get(block, timeout);
    struct Consumed {  // the item is taken even if decoding throws: a bad item must not wedge the queue
        QueueCore& core;
        ~Consumed() { core.end_get(); }
    } consumed{core};
    return decode_payload<T>(payload);
}

}  // namespace detail

// Python: multiprocessing.Queue(maxsize=0). maxsize 0 is unbounded; otherwise put() waits (or
// raises mp::Full) while maxsize items are in the queue.
template <class T>
class Queue {
    POLYPROC_CHECK_SERIALIZABLE(T);

public:
    explicit Queue(std::size_t maxsize = 0) : Queue(maxsize, detail::QueueCore::Kind::queue) {}

    // Python's block/timeout rules: block=false or a timeout <= 0 tries once; mp::Full when no
    // slot is free in time; mp::ValueError after close().
    void put(const T& obj, bool block = true, Timeout timeout = {}) const {
        detail::queue_put(*core_, obj, block, timeout);
    }
    // mp::Empty when nothing arrives in time; mp::ValueError after close().
    T get(bool block = true, Timeout timeout = {}) const { return detail::queue_get<T>(*core_, block, timeout); }
    void put_nowait(const T& obj) const { put(obj, false); }
    T get_nowait() const { return get(false); }

    // Exact: items put and not yet taken, by every process.
    std::size_t qsize() const noexcept { return core_->qsize(); }
    bool empty() const noexcept { return qsize() == 0; }
    bool full() const noexcept { return core_->full(); }
    std::size_t maxsize() const noexcept { return core_->maxsize(); }
    // The largest encoded item this queue takes (half its ring).
    std::size_t max_message_size() const noexcept { return core_->max_message_size(); }
    // The engine, for polyproc's own tests and tools; not part of the API.
    const detail::QueueCore& core() const noexcept { return *core_; }

    // This process stops using the queue: later put/get here raise mp::ValueError, and a get
    // blocked in another thread here wakes with it. Nothing put is lost: other processes still get
    // every item. Idempotent.
    void close() const noexcept { core_->close(); }
    // Python waits here for its feeder thread to flush; put() has already written everything, so
    // this only checks Python's precondition: mp::ValueError("Queue ... not closed") before close().
    void join_thread() const {
        if (!core_->closed()) throw ValueError(kind_name() + " not closed");
    }
    // Python: the process may exit without flushing its buffer (and lose it). Nothing is ever
    // buffered here, so there is nothing to give up: a no-op, kept for ported code.
    void cancel_join_thread() const noexcept {}

    void reduce_for_child(detail::ChildWriter& w) const { core_->reduce_for_child(w); }
    explicit Queue(detail::ChildReader& r) : core_(detail::QueueCore::from_child(r, detail::QueueCore::Kind::queue)) {}

protected:
    Queue(detail::ChildReader& r, detail::QueueCore::Kind kind) : core_(detail::QueueCore::from_child(r, kind)) {}
    Queue(std::size_t maxsize, detail::QueueCore::Kind kind)
        : core_(std::make_shared<detail::QueueCore>(maxsize, kind)) {}
    std::string kind_name() const {
        return core_->kind() == detail::QueueCore::Kind::joinable ? "JoinableQueue" : "Queue";
    }
    std::shared_ptr<detail::QueueCore> core_;
};

// Python: multiprocessing.JoinableQueue(maxsize=0): a Queue that also counts unfinished tasks.
template <class T>
class JoinableQueue : public Queue<T> {
public:
    explicit JoinableQueue(std::size_t maxsize = 0) : Queue<T>(maxsize, detail::QueueCore::Kind::joinable) {}
    // One item taken earlier is finished. mp::ValueError("task_done() called too many times")
    // beyond the number of items put.
    void task_done() const { this->core_->task_done(); }
    // Waits until every item put has been task_done()'d. Python's join() takes no timeout; ours may:
    // false when it runs out (a consumer that died holding a task never finishes it).
    bool join(Timeout timeout = {}) const { return this->core_->join(timeout); }
    explicit JoinableQueue(detail::ChildReader& r) : Queue<T>(r, detail::QueueCore::Kind::joinable) {}
};

// Python: multiprocessing.SimpleQueue(): put, get, empty, close, nothing else. Unbounded; get blocks
// until an item arrives. After close(), every call in this process raises std::system_error
// (EBADF, "handle is closed"), as Python's OSError.
template <class T>
class SimpleQueue {
    POLYPROC_CHECK_SERIALIZABLE(T);

public:
    SimpleQueue() : core_(std::make_shared<detail::QueueCore>(0, detail::QueueCore::Kind::simple)) {}
    void put(const T& obj) const { detail::queue_put(*core_, obj, true, {}); }
    T get() const { return detail::queue_get<T>(*core_, true, {}); }
    bool empty() const {
        if (core_->closed()) core_->throw_closed();
        return core_->qsize() == 0;
    }
    void close() const noexcept { core_->close(); }

    void reduce_for_child(detail::ChildWriter& w) const { core_->reduce_for_child(w); }
    explicit SimpleQueue(detail::ChildReader& r)
        : core_(detail::QueueCore::from_child(r, detail::QueueCore::Kind::simple)) {}

private:
    std::shared_ptr<detail::QueueCore> core_;
};

}  // namespace polyproc
