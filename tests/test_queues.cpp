// queues.hpp: Queue, SimpleQueue and JoinableQueue between real processes, Python's semantics and
// errors, any message size, and what happens when a producer or consumer is SIGKILLed.
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <signal.h>
#include <sys/resource.h>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

class Queues : public ProcessTest {};

namespace {

std::vector<char> pattern(std::size_t n, unsigned seed) {
    std::vector<char> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : v) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return v;
}

std::uint64_t shmem_resident_kib() {
    std::ifstream f("/proc/self/status");
    std::string key;
    std::uint64_t value = 0;
    while (f >> key) {
        if (key == "RssShmem:") {
            f >> value;
            return value;
        }
        f.ignore(1 << 20, '\n');
    }
    return 0;
}

// A type whose serialization parks the calling process when it is not `parent`: lets a test kill
// a producer or consumer while it is inside put() or get(), holding the queue's lock.
// (The std::string member keeps it from being trivially copyable, which would skip serialization.)
struct Parking {
    static inline pid_t parent = 0;
    static inline bool park_on_save = false;
    static inline bool park_on_load = false;
    static inline int saves = 0;
    int value = 0;
    std::string unsent;
    template <class Archive>
    void save(Archive& ar) const {
        ar(value);
        // The first save() only counts the bytes; the second writes them into the ring.
        if (park_on_save && ::getpid() != parent && ++saves == 2) ::pause();
    }
    template <class Archive>
    void load(Archive& ar) {
        ar(value);
        if (park_on_load && ::getpid() != parent) ::pause();
    }
};

// Counts as 20 GiB on the wire without owning them: the size check must refuse it before a byte
// is written.
struct Enormous {
    std::string unsent;
    template <class Archive>
    void save(Archive& ar) const {
        static const char byte = 0;
        ar(cereal::binary_data(&byte, std::size_t(20) << 30));
    }
    template <class Archive>
    void load(Archive&) {}
};

}  // namespace

TEST_F(Queues, FifoWithinOneProcess) {
    mp::Queue<int> q;
    for (int i = 0; i < 1000; ++i) q.put(i);
    EXPECT_EQ(q.qsize(), 1000u);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(q.get(), i);
    EXPECT_TRUE(q.empty());
}

TEST_F(Queues, ChildSendsEveryKindOfValue) {
    mp::Queue<std::map<std::string, std::vector<int>>> maps;
    mp::Queue<std::optional<std::string>> strings;
    mp::Process p(
        [](mp::Queue<std::map<std::string, std::vector<int>>> map_queue,
           mp::Queue<std::optional<std::string>> string_queue) {
            map_queue.put({{"a", {1, 2}}, {"b", {}}});
            string_queue.put("hello");
            string_queue.put(std::nullopt);
        },
        maps, strings);
    p.start();
    EXPECT_EQ(maps.get(), (std::map<std::string, std::vector<int>>{{"a", {1, 2}}, {"b", {}}}));
    EXPECT_EQ(strings.get(), "hello");
    EXPECT_EQ(strings.get(), std::nullopt);
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(Queues, QsizeIsExactAcrossProcesses) {
    mp::Queue<int> q;
    mp::Process p(
        [](mp::Queue<int> queue) {
            for (int i = 0; i < 10; ++i) queue.put(i);
        },
        q);
    p.start();
    p.join();
    EXPECT_EQ(q.qsize(), 10u);  // exact right after the producer is gone: nothing is in flight
    EXPECT_FALSE(q.empty());
    for (int i = 0; i < 4; ++i) q.get();
    EXPECT_EQ(q.qsize(), 6u);
}

TEST_F(Queues, BoundedQueueRaisesFullAndEmpty) {
    mp::Queue<int> q(3);
    EXPECT_EQ(q.maxsize(), 3u);
    q.put(1);
    q.put(2, false);
    q.put(3, true, 10ms);
    EXPECT_TRUE(q.full());
    EXPECT_THROW(q.put_nowait(4), mp::Full);
    EXPECT_THROW(q.put(4, false), mp::Full);
    EXPECT_THROW(q.put(4, false, 10s), mp::Full);  // block=false ignores the timeout
    EXPECT_THROW(q.put(4, true, 20ms), mp::Full);
    EXPECT_THROW(q.put(4, true, -1s), mp::Full);
    EXPECT_EQ(q.qsize(), 3u);
    EXPECT_EQ(q.get(), 1);
    EXPECT_FALSE(q.full());
    q.put(4);
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_EQ(q.get(false), 3);
    EXPECT_EQ(q.get(true, 10ms), 4);
    EXPECT_THROW(q.get_nowait(), mp::Empty);
    EXPECT_THROW(q.get(false, 10s), mp::Empty);
    EXPECT_THROW(q.get(true, 20ms), mp::Empty);
    EXPECT_THROW(q.get(true, 0s), mp::Empty);
}

TEST_F(Queues, BlockedPutResumesWhenAConsumerTakesAnItem) {
    mp::Queue<int> q(1);
    q.put(0);
    mp::Process consumer(
        [](mp::Queue<int> queue) {
            std::this_thread::sleep_for(50ms);
            if (queue.get() != 0) std::_Exit(3);
        },
        q);
    consumer.start();
    q.put(1);  // waits for the consumer
    consumer.join();
    EXPECT_EQ(consumer.exitcode(), 0);
    EXPECT_EQ(q.get(), 1);
}

namespace {
double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}
}  // namespace

// A blocked put or get sleeps: it does not spin on the CPU while it waits (checked with the
// child's own CPU time over a half-second wait; a busy loop would use all of it).
TEST_F(Queues, BlockedPutAndGetSleepInsteadOfSpinning) {
    mp::Queue<int> full(1), empty;
    for (int i = 0; i < 10; ++i) {  // some traffic first: the positions the producers remember age
        full.put(i);
        full.get();
    }
    full.put(0);
    mp::Process producer(
        [](mp::Queue<int> full_queue) {
            const double before = cpu_seconds();
            full_queue.put(1);  // waits until the parent takes an item
            std::_Exit(cpu_seconds() - before < 0.15 ? 0 : 1);
        },
        full);
    mp::Process consumer(
        [](mp::Queue<int> empty_queue) {
            const double before = cpu_seconds();
            empty_queue.get();  // waits until the parent puts one
            std::_Exit(cpu_seconds() - before < 0.15 ? 0 : 1);
        },
        empty);
    producer.start();
    consumer.start();
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(full.get(), 0);
    empty.put(7);
    producer.join(60s);
    consumer.join(60s);
    EXPECT_EQ(producer.exitcode(), 0) << "a put blocked on a full queue used the CPU while it waited";
    EXPECT_EQ(consumer.exitcode(), 0) << "a get blocked on an empty queue used the CPU while it waited";
}

TEST_F(Queues, BlockedGetWakesForAnItemFromAnotherProcess) {
    mp::Queue<std::string> q;
    mp::Process producer(
        [](mp::Queue<std::string> queue) {
            std::this_thread::sleep_for(100ms);  // let the parent fall asleep in get()
            queue.put("late");
        },
        q);
    producer.start();
    EXPECT_EQ(q.get(true, 60s), "late");
    producer.join();
}

TEST_F(Queues, ClosedQueueRaisesValueErrorAndOthersStillDrainIt) {
    mp::Queue<int> q;
    EXPECT_THROW_WITH(q.join_thread(), mp::ValueError, "Queue not closed");
    mp::Process producer(
        [](mp::Queue<int> queue) {
            queue.put(1);
            queue.put(2);
            queue.close();
            queue.join_thread();
            try {
                queue.put(3);
            } catch (const mp::ValueError&) {
                std::_Exit(7);
            }
        },
        q);
    producer.start();
    producer.join();
    EXPECT_EQ(producer.exitcode(), 7);
    EXPECT_EQ(q.get(), 1);  // the child's close() does not close the queue for the parent
    EXPECT_EQ(q.get(), 2);
    q.close();
    q.close();  // idempotent
    EXPECT_THROW_WITH(q.put(4), mp::ValueError, "Queue is closed");
    EXPECT_THROW_WITH(q.get(), mp::ValueError, "is closed");
    EXPECT_THROW_WITH(q.get_nowait(), mp::ValueError, "is closed");
    q.join_thread();
    q.cancel_join_thread();
}

TEST_F(Queues, CloseWakesAGetBlockedInAnotherThread) {
    mp::Queue<int> q;
    auto blocked = std::async(std::launch::async, [&] {
        try {
            q.get();
            return std::string("returned");
        } catch (const mp::ValueError& e) {
            return std::string(e.what());
        }
    });
    std::this_thread::sleep_for(50ms);
    q.close();
    ASSERT_EQ(blocked.wait_for(30s), std::future_status::ready) << "get() still blocked after close()";
    EXPECT_EQ(blocked.get(), "Queue is closed");
}

// Python's feeder-thread deadlock: a child that put more than a pipe holds cannot exit until
// someone reads, so joining it first hangs. Here put() has written everything when it returns.
TEST_F(Queues, JoiningAChildWithUnreadItemsDoesNotHang) {
    mp::Queue<std::vector<char>> q;
    mp::Process p(
        [](mp::Queue<std::vector<char>> queue) {
            for (unsigned i = 0; i < 200; ++i) queue.put(pattern(1024, i));
            queue.put(pattern(10 << 20, 999));
        },
        q);
    p.start();
    p.join(60s);
    ASSERT_EQ(p.exitcode(), 0) << "the child did not exit with its items unread";
    for (unsigned i = 0; i < 200; ++i) ASSERT_EQ(q.get(), pattern(1024, i));
    EXPECT_EQ(q.get(), pattern(10 << 20, 999));
}

TEST_F(Queues, MessagesOfEverySizeInOneQueue) {
    mp::Queue<std::vector<char>> q;
    const std::vector<std::size_t> sizes = {0, 1, 7, 8, 9, 63, 64, 4095, 65536, 1 << 20, 3 << 20, 64 << 20, 5};
    mp::Process p(
        [](mp::Queue<std::vector<char>> queue, const std::vector<std::size_t>& item_sizes) {
            for (std::size_t i = 0; i < item_sizes.size(); ++i)
                queue.put(pattern(item_sizes[i], static_cast<unsigned>(i)));
        },
        q, sizes);
    p.start();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const auto got = q.get(true, 60s);
        ASSERT_EQ(got.size(), sizes[i]);
        ASSERT_EQ(got, pattern(sizes[i], static_cast<unsigned>(i))) << "item " << i;
    }
    p.join();
}

TEST_F(Queues, AnItemLargerThanTheRingIsRefusedUpFront) {
    mp::Queue<Enormous> q;
    EXPECT_THROW_WITH(q.put(Enormous{}), mp::ValueError, "larger than this queue takes");
    EXPECT_EQ(q.qsize(), 0u);
    mp::Queue<int> ints;
    EXPECT_GT(ints.max_message_size(), std::size_t(256) << 20);  // "hundreds of MiB"
}

TEST_F(Queues, ABacklogGrowsTheRingAndDrainingGivesTheMemoryBack) {
    mp::Queue<std::vector<char>> q;
    const std::uint64_t before = shmem_resident_kib();
    mp::Process p(
        [](mp::Queue<std::vector<char>> queue) {
            for (unsigned i = 0; i < 300; ++i) queue.put(pattern(1 << 20, i));  // 300 MiB waiting, no consumer
        },
        q);
    p.start();
    p.join(120s);
    ASSERT_EQ(p.exitcode(), 0);
    EXPECT_EQ(q.qsize(), 300u);
    for (unsigned i = 0; i < 300; ++i) ASSERT_EQ(q.get(), pattern(1 << 20, i));
    // The next item wraps to the start of the ring; taking it passes the wrap, where the drained
    // pages are given back.
    q.put(pattern(100, 1));
    EXPECT_EQ(q.get(), pattern(100, 1));
    const std::uint64_t after = shmem_resident_kib();
    EXPECT_LT(after, before + 64 * 1024) << "resident shared memory before " << before << " KiB, after " << after;
}

// The ring wraps back to its start early while consumers keep up (it stays hot in cache). A
// consumer that falls behind right then, whatever it had taken, must not cap an unbounded queue
// at that window: Full only comes from maxsize, or from a ring filled to its reservation.
TEST_F(Queues, AnUnboundedQueueKeepsGrowingAfterItsConsumerFallsBehind) {
    // lag: items the consumer is behind when it stops; 0 is the shape of the report (it took
    // every item, then stalled)
    for (const int lag : {0, 1, 7, 1000, 15000}) {
        SCOPED_TRACE("lag " + std::to_string(lag));
        mp::Queue<std::int64_t> q;
        std::int64_t put = 0, got = 0;
        // Past the hot window (256 KiB; an 8-byte item takes a 16-byte record) with the consumer
        // keeping up, then `lag` more.
        for (int i = 0; i < 40000; ++i) {
            q.put_nowait(put++);
            ASSERT_EQ(q.get_nowait(), got++);
        }
        for (int i = 0; i < lag; ++i) q.put_nowait(put++);
        // The consumer stalls: 8 MiB of records wait.
        for (int i = 0; i < 500000; ++i) ASSERT_NO_THROW(q.put_nowait(put++)) << "after " << i << " unread items";
        EXPECT_EQ(q.qsize(), std::size_t(500000 + lag));
        // It resumes for a while and stalls again, mid-backlog: still no limit.
        for (int i = 0; i < 100000; ++i) ASSERT_EQ(q.get_nowait(), got++);
        for (int i = 0; i < 300000; ++i) ASSERT_NO_THROW(q.put_nowait(put++)) << "after " << i << " more";
        while (got < put) ASSERT_EQ(q.get_nowait(), got++);
        EXPECT_TRUE(q.empty());
    }
}

// The same through a bounded queue: its limit is exactly maxsize, wherever the ring stands.
TEST_F(Queues, ABoundedQueuesLimitIsExactlyItsMaxsizeAfterAWrap) {
    constexpr std::size_t kMax = 100000;
    mp::Queue<std::int64_t> q(kMax);
    std::int64_t put = 0, got = 0;
    for (int i = 0; i < 40000; ++i) {
        q.put_nowait(put++);
        ASSERT_EQ(q.get_nowait(), got++);
    }
    for (std::size_t i = 0; i < kMax; ++i) ASSERT_NO_THROW(q.put_nowait(put++)) << "after " << i << " items";
    EXPECT_TRUE(q.full());
    EXPECT_THROW(q.put_nowait(put), mp::Full);
    EXPECT_THROW(q.put(put, true, 10ms), mp::Full);
    ASSERT_EQ(q.get_nowait(), got++);
    q.put_nowait(put++);
    while (got < put) ASSERT_EQ(q.get_nowait(), got++);
}

// Random bursts of puts and gets with sizes from 1 byte to 16 KiB, checked against a model: the
// ring's wraps, early wraps and detours land at every alignment, and nothing is lost, reordered
// or refused.
TEST_F(Queues, RandomBurstsAgainstAModel) {
    mp::Queue<std::vector<char>> q;
    std::deque<std::pair<std::size_t, unsigned>> model;  // size, seed
    std::mt19937 rng(20261206);
    unsigned seed = 0;
    for (int round = 0; round < 200; ++round) {
        const int puts = int(rng() % 2000), gets = int(rng() % 2000);
        for (int i = 0; i < puts; ++i) {
            const std::size_t size = rng() % 8 == 0 ? 1 + rng() % 8192 : 1 + rng() % 64;
            ASSERT_NO_THROW(q.put_nowait(pattern(size, seed)))
                << "round " << round << ", " << model.size() << " waiting";
            model.emplace_back(size, seed++);
        }
        for (int i = 0; i < gets && !model.empty(); ++i) {
            const auto [size, s] = model.front();
            model.pop_front();
            ASSERT_EQ(q.get_nowait(), pattern(size, s)) << "round " << round;
        }
        ASSERT_EQ(q.qsize(), model.size());
    }
    while (!model.empty()) {
        ASSERT_EQ(q.get_nowait(), pattern(model.front().first, model.front().second));
        model.pop_front();
    }
    EXPECT_THROW(q.get_nowait(), mp::Empty);
}

// A worker answers requests on a second queue. One round trip, then a burst of requests before
// the first reply is read: the replies wait in their queue, the worker keeps reading requests
// (Python's Queue completes this; it must never deadlock). Timeouts turn a hang into a failure.
TEST_F(Queues, ARequestReplyWorkerTakesABurstWithoutDeadlock) {
    constexpr std::int64_t kBurst = 50000;
    mp::Queue<std::int64_t> requests, replies;
    mp::Process worker(
        [](mp::Queue<std::int64_t> in, mp::Queue<std::int64_t> out) {
            for (;;) {
                const std::int64_t x = in.get(true, 60s);
                if (x < 0) return;
                out.put(x * 2, true, 60s);
            }
        },
        requests, replies);
    worker.start();
    requests.put(1);
    EXPECT_EQ(replies.get(true, 60s), 2);
    for (std::int64_t i = 0; i < kBurst; ++i) ASSERT_NO_THROW(requests.put(i, true, 60s)) << "request " << i;
    requests.put(-1);
    for (std::int64_t i = 0; i < kBurst; ++i) ASSERT_EQ(replies.get(true, 60s), 2 * i);
    worker.join(60s);
    EXPECT_EQ(worker.exitcode(), 0);
}

TEST_F(Queues, SeveralProducersAndConsumersLoseAndDuplicateNothing) {
    constexpr int kProducers = 3, kConsumers = 3, kItems = 20000;
    mp::Queue<std::pair<int, int>> q(100);  // bounded: producers also wait for room
    mp::Queue<std::vector<std::pair<int, int>>> results;
    std::vector<mp::Process> ps;
    for (int c = 0; c < kConsumers; ++c)
        ps.emplace_back(
            [](mp::Queue<std::pair<int, int>> queue, mp::Queue<std::vector<std::pair<int, int>>> result_queue) {
                std::vector<std::pair<int, int>> got;
                for (;;) {
                    auto item = queue.get();
                    if (item.first < 0) break;
                    got.push_back(item);
                }
                result_queue.put(got);
            },
            q, results);
    for (int p = 0; p < kProducers; ++p)
        ps.emplace_back(
            [](mp::Queue<std::pair<int, int>> queue, int producer) {
                for (int i = 0; i < kItems; ++i) queue.put({producer, i});
            },
            q, p);
    for (auto& p : ps) p.start();
    for (int p = kConsumers; p < kConsumers + kProducers; ++p) ps[p].join();
    for (int c = 0; c < kConsumers; ++c) q.put({-1, 0});
    std::vector<std::vector<int>> seen(kProducers);
    for (int c = 0; c < kConsumers; ++c) {
        std::map<int, int> last;  // per producer, each consumer sees increasing numbers
        for (auto [p, i] : results.get(true, 120s)) {
            if (last.count(p)) {
                EXPECT_GT(i, last[p]);
            }
            last[p] = i;
            seen[p].push_back(i);
        }
    }
    for (auto& p : ps) p.join();
    for (int p = 0; p < kProducers; ++p) {
        std::sort(seen[p].begin(), seen[p].end());
        std::vector<int> expected(kItems);
        std::iota(expected.begin(), expected.end(), 0);
        EXPECT_EQ(seen[p], expected) << "producer " << p;
    }
}

TEST_F(Queues, AProducerKilledInsidePutLeavesTheQueueWhole) {
    Parking::parent = ::getpid();
    Parking::park_on_save = true;
    mp::Queue<Parking> q;
    q.put(Parking{1, {}});
    mp::Process p(
        [](mp::Queue<Parking> queue, pid_t parent) {
            Parking::parent = parent;  // set here too: a spawned child starts with fresh globals
            Parking::park_on_save = true;
            queue.put(Parking{2, {}});  // parks while encoding, holding the producers' lock
        },
        q, ::getpid());
    p.start();
    std::this_thread::sleep_for(100ms);
    p.kill();
    p.join();
    Parking::park_on_save = false;
    q.put(Parking{3, {}});  // the lock is handed over; the half-written item is gone
    EXPECT_EQ(q.qsize(), 2u);
    EXPECT_EQ(q.get().value, 1);
    EXPECT_EQ(q.get().value, 3);
    EXPECT_TRUE(q.empty());
}

TEST_F(Queues, AConsumerKilledInsideGetLeavesItsItemForTheNext) {
    Parking::parent = ::getpid();
    Parking::park_on_load = true;
    mp::Queue<Parking> q;
    q.put(Parking{1, {}});
    q.put(Parking{2, {}});
    mp::Process p(
        [](mp::Queue<Parking> queue, pid_t parent) {
            Parking::parent = parent;  // set here too: a spawned child starts with fresh globals
            Parking::park_on_load = true;
            queue.get();  // parks while decoding, holding the consumers' lock
        },
        q, ::getpid());
    p.start();
    std::this_thread::sleep_for(100ms);
    p.kill();
    p.join();
    Parking::park_on_load = false;
    EXPECT_EQ(q.get(true, 30s).value, 1);  // it had not taken the item yet
    EXPECT_EQ(q.get(true, 30s).value, 2);
    EXPECT_EQ(q.qsize(), 0u);
}

TEST_F(Queues, AConsumerKilledWhileWaitingDoesNotStopOthers) {
    mp::Queue<int> q;
    mp::Process sleeper([](mp::Queue<int> queue) { queue.get(); }, q);
    sleeper.start();
    std::this_thread::sleep_for(100ms);  // asleep in get()
    sleeper.kill();
    sleeper.join();
    mp::Process consumer([](mp::Queue<int> queue) { std::_Exit(queue.get(true, 60s)); }, q);
    consumer.start();
    std::this_thread::sleep_for(50ms);
    q.put(5);
    consumer.join(60s);
    EXPECT_EQ(consumer.exitcode(), 5);
    // The dead sleeper still counts as one, until the wake-ups that find nobody make a producer
    // look for it: then puts stop paying for a FUTEX_WAKE.
    for (int i = 0; i < 100; ++i) {
        q.put(i);
        q.get();
    }
    EXPECT_EQ(q.core().sleepers_waiting_for_data(), 0u);
}

TEST_F(Queues, JoinableQueueCountsTasks) {
    mp::JoinableQueue<int> q;
    EXPECT_TRUE(q.join());  // nothing put: returns at once
    EXPECT_THROW_WITH(q.task_done(), mp::ValueError, "task_done() called too many times");
    std::vector<mp::Process> workers;
    for (int w = 0; w < 4; ++w)
        workers.emplace_back(
            [](mp::JoinableQueue<int> queue) {
                for (;;) {
                    int item = queue.get();
                    queue.task_done();
                    if (item < 0) break;
                }
            },
            q);
    for (auto& w : workers) w.start();
    for (int i = 0; i < 10; ++i) q.put(i);
    EXPECT_TRUE(q.join(60s));
    for (int w = 0; w < 4; ++w) q.put(-1);
    EXPECT_TRUE(q.join(60s));
    for (auto& w : workers) w.join();
    EXPECT_THROW_WITH(q.task_done(), mp::ValueError, "task_done() called too many times");
    q.put(1);
    EXPECT_FALSE(q.join(20ms));
    q.close();
    EXPECT_THROW_WITH(q.put(2), mp::ValueError, "JoinableQueue is closed");
}

TEST_F(Queues, SimpleQueueBetweenProcesses) {
    mp::SimpleQueue<std::string> q;
    EXPECT_TRUE(q.empty());
    mp::Process p(
        [](mp::SimpleQueue<std::string> queue) {
            if (!queue.empty()) std::_Exit(2);  // correct in the child too
            queue.put("from the child");
            queue.put(std::string(1 << 20, 'x'));
        },
        q);
    p.start();
    EXPECT_EQ(q.get(), "from the child");
    EXPECT_EQ(q.get(), std::string(1 << 20, 'x'));
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_TRUE(q.empty());
    q.close();
    q.close();
    EXPECT_THROW_WITH(q.empty(), std::system_error, "handle is closed");
    EXPECT_THROW_WITH(q.get(), std::system_error, "handle is closed");
    EXPECT_THROW_WITH(q.put("x"), std::system_error, "handle is closed");
}

TEST_F(Queues, ACopyCapturedByValueIsTheSameQueue) {
    POLYPROC_FORK_ONLY();  // about capturing handles; HandlesPassAsProcessArguments is the spawnable form
    mp::Queue<int> q;
    const mp::JoinableQueue<int> jq;
    mp::Process p([q, jq] {  // no `mutable`: the handles' methods are const
        q.put(1);
        jq.put(jq.get() * 10);
        jq.task_done();
    });
    jq.put(4);
    p.start();
    EXPECT_EQ(q.get(true, 60s), 1);
    p.join();
    EXPECT_EQ(jq.get(), 40);
    EXPECT_FALSE(jq.join(0s));  // the child finished its task; ours is still open
    jq.task_done();
    EXPECT_TRUE(jq.join(0s));
}

TEST_F(Queues, HandlesPassAsProcessArguments) {
    auto worker = [](mp::Queue<int> in, mp::Queue<int> out) {
        for (int x; (x = in.get()) >= 0;) out.put(x * x);
    };
    mp::Queue<int> in, out;
    mp::Process p(worker, in, out);
    p.start();
    for (int i = 0; i < 5; ++i) in.put(i);
    in.put(-1);
    std::vector<int> squares;
    for (int i = 0; i < 5; ++i) squares.push_back(out.get());
    p.join();
    EXPECT_EQ(squares, (std::vector<int>{0, 1, 4, 9, 16}));
}
