// queues.hpp under load and faults: 4 producers x 4 consumers, items of mixed sizes with
// checksums, every item accounted for exactly once, also while producers or consumers are
// SIGKILLed at random moments.
//
// POLYPROC_STRESS_ITEMS sets the number of items per scenario (default 1 000 000; the asan build
// runs fewer, see tests/CMakeLists.txt).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kEnd = 0xffffffffu;  // a consumer stops at the item from this producer

struct Item {
    std::uint32_t producer = 0;
    std::uint32_t seq = 0;
    std::uint64_t checksum = 0;
    std::vector<char> payload;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(producer, seq, checksum, payload);
    }
};

std::uint64_t mix(std::uint64_t x) {  // splitmix64
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Mostly small, some kilobytes, one in a thousand up to a megabyte.
std::size_t size_of(std::uint32_t producer, std::uint32_t seq) {
    const std::uint64_t r = mix((std::uint64_t(producer) << 32) | seq);
    const unsigned bucket = r % 1000;
    if (bucket < 900) return 1 + (r >> 10) % 255;
    if (bucket < 999) return 256 + (r >> 10) % (16 << 10);
    return (16 << 10) + (r >> 10) % (1 << 20);
}

std::uint64_t sum_of(const Item& item) {
    return mp::detail::checksum(std::as_bytes(std::span(item.payload))) ^ mix(item.producer) ^
           mix(~std::uint64_t(item.seq));
}

Item make_item(std::uint32_t producer, std::uint32_t seq) {
    Item item{producer, seq, 0, std::vector<char>(size_of(producer, seq))};
    std::memset(item.payload.data(), static_cast<int>(mix(seq ^ producer) & 0xff), item.payload.size());
    if (item.payload.size() >= 8) std::memcpy(item.payload.data(), &seq, 4);
    item.checksum = sum_of(item);
    return item;
}

std::size_t stress_items() {
    if (const char* s = std::getenv("POLYPROC_STRESS_ITEMS")) return std::strtoull(s, nullptr, 10);
    return 1000000;
}

// What the consumers saw, in shared memory so that a SIGKILLed consumer's work is not lost with
// it: one counter per (producer, seq), and the first error any consumer found.
struct Ledger {
    std::uint32_t producers, per_producer;
    mp::RawArray<std::uint32_t> received;
    mp::RawArray<std::uint32_t> completed;  // per producer: puts that returned
    mp::RawValue<std::uint32_t> corrupt;    // items whose checksum or sequence was wrong
    Ledger(std::uint32_t p, std::uint32_t n)
        : producers(p), per_producer(n), received(std::size_t(p) * n), completed(p), corrupt(0) {}
    // Another handle on the same shared counters (how a child gets the ledger: by its parts).
    Ledger(std::uint32_t p, std::uint32_t n, mp::RawArray<std::uint32_t> r, mp::RawArray<std::uint32_t> c,
           mp::RawValue<std::uint32_t> k)
        : producers(p), per_producer(n), received(std::move(r)), completed(std::move(c)), corrupt(std::move(k)) {}

    void produce(mp::Queue<Item> q, std::uint32_t producer) const {
        for (std::uint32_t seq = 0; seq < per_producer; ++seq) {
            q.put(make_item(producer, seq));
            std::atomic_ref(completed[producer]).store(seq + 1);
        }
    }
    void consume(mp::Queue<Item> q) const {
        std::vector<std::int64_t> last(producers, -1);
        for (;;) {
            Item item = q.get();
            if (item.producer == kEnd) return;
            const bool ok = item.producer < producers && item.seq < per_producer && sum_of(item) == item.checksum &&
                            item.payload.size() == size_of(item.producer, item.seq) &&
                            std::int64_t(item.seq) > last[item.producer];  // one producer's items in order
            if (!ok) {
                std::atomic_ref(corrupt.get_obj()).fetch_add(1);
                continue;
            }
            last[item.producer] = item.seq;
            std::atomic_ref(received[std::size_t(item.producer) * per_producer + item.seq]).fetch_add(1);
        }
    }
    std::uint32_t times_received(std::uint32_t producer, std::uint32_t seq) const {
        return received[std::size_t(producer) * per_producer + seq];
    }
};

class QueueStress : public ProcessTest {
protected:
    // A process that runs ledger.produce(q, id) (or ledger.consume(q)); the ledger travels as its
    // parts, so this works under every start method.
    static mp::Process producer_process(const Ledger& ledger, mp::Queue<Item> q, std::uint32_t id) {
        return mp::Process(
            [](std::uint32_t producers, std::uint32_t per_producer, mp::RawArray<std::uint32_t> received,
               mp::RawArray<std::uint32_t> completed, mp::RawValue<std::uint32_t> corrupt, mp::Queue<Item> queue,
               std::uint32_t producer) {
                Ledger(producers, per_producer, received, completed, corrupt).produce(queue, producer);
            },
            ledger.producers, ledger.per_producer, ledger.received, ledger.completed, ledger.corrupt, q, id);
    }
    static mp::Process consumer_process(const Ledger& ledger, mp::Queue<Item> q) {
        return mp::Process(
            [](std::uint32_t producers, std::uint32_t per_producer, mp::RawArray<std::uint32_t> received,
               mp::RawArray<std::uint32_t> completed, mp::RawValue<std::uint32_t> corrupt,
               mp::Queue<Item> queue) { Ledger(producers, per_producer, received, completed, corrupt).consume(queue); },
            ledger.producers, ledger.per_producer, ledger.received, ledger.completed, ledger.corrupt, q);
    }
    static std::vector<mp::Process> start_consumers(const Ledger& ledger, mp::Queue<Item> q, int n) {
        std::vector<mp::Process> consumers;
        for (int c = 0; c < n; ++c) consumers.push_back(consumer_process(ledger, q));
        for (auto& c : consumers) c.start();
        return consumers;
    }
    static void stop_consumers(mp::Queue<Item> q, std::vector<mp::Process>& consumers) {
        // Count first: an end marker put for one consumer may be taken by another, which is then
        // gone before we would look at it.
        std::size_t alive = 0;
        for (auto& c : consumers) {
            if (c.is_alive()) {
                ++alive;
            } else {
                ADD_FAILURE() << "consumer " << c.pid() << " died early with exit code " << c.exitcode().value_or(999);
            }
        }
        for (std::size_t i = 0; i < alive; ++i) q.put(Item{kEnd, 0, 0, {}});
        for (auto& c : consumers) {
            c.join(60s);
            ASSERT_FALSE(c.is_alive()) << "a consumer did not stop";
        }
    }
};

}  // namespace

TEST_F(QueueStress, FourProducersFourConsumersMixedSizesExactlyOnce) {
    constexpr std::uint32_t kProducers = 4;
    const auto per_producer = static_cast<std::uint32_t>(stress_items() / kProducers);
    const Ledger ledger(kProducers, per_producer);
    mp::Queue<Item> q;
    auto consumers = start_consumers(ledger, q, 4);
    std::vector<mp::Process> producers;
    for (std::uint32_t p = 0; p < kProducers; ++p) producers.push_back(producer_process(ledger, q, p));
    for (auto& p : producers) p.start();
    for (auto& p : producers) {
        p.join(600s);
        ASSERT_EQ(p.exitcode(), 0);
    }
    stop_consumers(q, consumers);
    EXPECT_EQ(ledger.corrupt.value(), 0u);
    std::size_t wrong = 0;
    for (std::uint32_t p = 0; p < kProducers; ++p)
        for (std::uint32_t s = 0; s < per_producer; ++s)
            if (ledger.times_received(p, s) != 1 && wrong++ < 10)
                ADD_FAILURE() << "item " << p << "/" << s << " received " << ledger.times_received(p, s) << " times";
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(q.qsize(), 0u);
}

// Producers are SIGKILLed at random moments, between and during puts (of items up to a megabyte,
// into a bounded queue, so some die waiting for room), and replaced by fresh ones. A killed
// producer's items 0..completed-1 each arrive exactly once; the put it was inside arrives once or
// not at all; nothing else arrives. The queue stays usable throughout.
TEST_F(QueueStress, ProducersKilledAtRandomLoseNoCompletedPut) {
    constexpr std::uint32_t kLive = 4, kTotalProducers = 40;
    const auto per_producer = static_cast<std::uint32_t>(stress_items() / kTotalProducers * 2);
    const Ledger ledger(kTotalProducers, per_producer);
    mp::Queue<Item> q(256);
    auto consumers = start_consumers(ledger, q, 4);

    std::vector<mp::Process> producers;
    std::vector<bool> killed(kTotalProducers, false);
    auto start_producer = [&](std::uint32_t id) {
        producers.push_back(producer_process(ledger, q, id));
        producers.back().start();
    };
    for (std::uint32_t id = 0; id < kLive; ++id) start_producer(id);
    std::mt19937 rng(12345);
    std::uint32_t next_id = kLive;
    int kills = 0;
    while (next_id < kTotalProducers) {
        std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 20000));
        std::vector<std::uint32_t> alive;
        for (std::uint32_t id = 0; id < producers.size(); ++id)
            if (producers[id].is_alive()) alive.push_back(id);
        if (!alive.empty()) {
            const std::uint32_t victim = alive[rng() % alive.size()];
            producers[victim].kill();
            producers[victim].join();
            killed[victim] = producers[victim].exitcode() == -SIGKILL;
            kills += killed[victim];
        }
        start_producer(next_id++);
    }
    for (auto& p : producers) {
        p.join(600s);
        ASSERT_FALSE(p.is_alive());
    }
    stop_consumers(q, consumers);
    EXPECT_GT(kills, 10);
    EXPECT_EQ(ledger.corrupt.value(), 0u);
    int in_flight_arrived = 0;
    for (std::uint32_t id = 0; id < kTotalProducers; ++id) {
        const std::uint32_t done = ledger.completed[id];
        if (!killed[id]) {
            ASSERT_EQ(done, per_producer) << "producer " << id << " exited early";
        }
        for (std::uint32_t s = 0; s < per_producer; ++s) {
            const std::uint32_t n = ledger.times_received(id, s);
            if (s < done) {
                ASSERT_EQ(n, 1u) << "completed put " << id << "/" << s << " received " << n << " times";
            } else if (s == done && killed[id]) {
                ASSERT_LE(n, 1u) << "the interrupted put " << id << "/" << s << " arrived twice";
                in_flight_arrived += n;
            } else {
                ASSERT_EQ(n, 0u) << "item " << id << "/" << s << " was never put";
            }
        }
    }
    RecordProperty("kills", kills);
    RecordProperty("interrupted_puts_that_arrived", in_flight_arrived);
    // The queue is still whole and usable.
    q.put(make_item(0, 0));
    EXPECT_EQ(q.get(true, 60s).checksum, make_item(0, 0).checksum);
    EXPECT_EQ(q.qsize(), 0u);
}

// Consumers are SIGKILLed at random moments and replaced. Nothing arrives twice, and at most one
// item per killed consumer goes missing (the one it was taking).
TEST_F(QueueStress, ConsumersKilledAtRandomLoseAtMostTheirItem) {
    constexpr std::uint32_t kProducers = 4;
    const auto per_producer = static_cast<std::uint32_t>(stress_items() / kProducers / 2);
    const Ledger ledger(kProducers, per_producer);
    mp::Queue<Item> q(1024);
    auto consumers = start_consumers(ledger, q, 4);
    std::vector<mp::Process> producers;
    for (std::uint32_t p = 0; p < kProducers; ++p) producers.push_back(producer_process(ledger, q, p));
    for (auto& p : producers) p.start();

    std::mt19937 rng(54321);
    int kills = 0;
    auto producing = [&] {
        return std::any_of(producers.begin(), producers.end(), [](const mp::Process& p) { return p.is_alive(); });
    };
    while (producing() && kills < 30) {
        std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 20000));
        const std::size_t victim = rng() % consumers.size();
        if (!consumers[victim].is_alive()) continue;
        consumers[victim].kill();
        consumers[victim].join();
        kills += consumers[victim].exitcode() == -SIGKILL;
        consumers[victim] = consumer_process(ledger, q);
        consumers[victim].start();
    }
    for (auto& p : producers) {
        p.join(600s);
        ASSERT_EQ(p.exitcode(), 0);
    }
    stop_consumers(q, consumers);
    EXPECT_GT(kills, 5);
    EXPECT_EQ(ledger.corrupt.value(), 0u);
    int missing = 0;
    for (std::uint32_t p = 0; p < kProducers; ++p)
        for (std::uint32_t s = 0; s < per_producer; ++s) {
            const std::uint32_t n = ledger.times_received(p, s);
            ASSERT_LE(n, 1u) << "item " << p << "/" << s << " received twice";
            missing += n == 0;
        }
    EXPECT_LE(missing, kills);
    RecordProperty("kills", kills);
    RecordProperty("missing", missing);
    EXPECT_EQ(q.qsize(), 0u);
}
