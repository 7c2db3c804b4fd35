// queue_ring.hpp: where a queue's producers put records, driven on a small simulated ring. Every
// ring word remembers which position wrote it, so a record written over unread data, a record
// read from the wrong place, or an item lost or reordered fails at once; and a full ring must be
// full of unread data, whatever the consumers did before (an early wrap, a stall behind it).
#include <cstdint>
#include <cstdio>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "queue_ring.hpp"

namespace ring = polyproc::detail::ring;

namespace {

constexpr std::uint64_t kSkip = 1;

class SimulatedRing {
public:
    explicit SimulatedRing(std::uint64_t capacity)
        : capacity_(capacity), words_(capacity / 8), owner_(capacity / 8, kFree) {}

    // One put of a record of `bytes` (8-aligned, header included); false: no room. The producers
    // may see the consumers' position late: `seen_head` (default: the current one).
    bool put(std::uint64_t bytes) { return put(bytes, head_); }
    bool put(std::uint64_t bytes, std::uint64_t seen_head) {
        holes_.forget(seen_head, tail_);
        const auto where = ring::place(ring::RingView{capacity_, tail_, seen_head, holes_}, bytes);
        if (!where) return false;
        EXPECT_GE(where->start, tail_);
        if (where->start != tail_) {
            write(tail_, ((where->start - tail_) << 1) | kSkip);
            holes_.add(tail_ + ring::kHeaderBytes, where->start);
            live_ += ring::kHeaderBytes;
        }
        for (std::uint64_t off = 0; off < bytes; off += 8)
            write(where->start + off, off == 0 ? bytes << 1 : where->start);
        tail_ = where->new_tail;
        live_ += bytes;
        items_.push_back({where->start, bytes});
        return true;
    }

    // One get; false when empty.
    bool get() {
        for (;;) {
            if (head_ == tail_) {
                EXPECT_TRUE(items_.empty());
                return false;
            }
            const std::uint64_t header = read(head_);
            release(head_);
            if (header & kSkip) {
                live_ -= ring::kHeaderBytes;
                head_ += header >> 1;
                continue;
            }
            EXPECT_FALSE(items_.empty());
            if (items_.empty()) return false;
            const auto [start, bytes] = items_.front();
            items_.pop_front();
            EXPECT_EQ(start, head_) << "an item was skipped or read out of order";
            EXPECT_EQ(header >> 1, bytes);
            for (std::uint64_t off = 8; off < bytes; off += 8) {
                EXPECT_EQ(read(head_ + off), head_) << "payload overwritten at +" << off;
                release(head_ + off);
            }
            head_ += bytes;
            live_ -= bytes;
            return true;
        }
    }

    // For failure messages: where both sides stand, the holes, and the free runs of the ring.
    std::string dump() const {
        auto where = [&](std::uint64_t pos) {
            return std::to_string(pos) + " (lap " + std::to_string(pos / capacity_) + ", offset " +
                   std::to_string(pos % capacity_) + ")";
        };
        std::string o = "head " + where(head_) + ", tail " + where(tail_) + "\nholes:";
        for (std::uint32_t i = 0; i < holes_.count; ++i)
            o += " [" + std::to_string(holes_.hole[i].begin) + ", " + std::to_string(holes_.hole[i].end) + ")";
        o += "\nfree runs of the ring (offset, bytes):";
        for (std::size_t i = 0; i < owner_.size();) {
            std::size_t j = i;
            while (j < owner_.size() && owner_[j] == kFree) ++j;
            if (j - i >= 8) o += " (" + std::to_string(i * 8) + ", " + std::to_string((j - i) * 8) + ")";
            i = j == i ? i + 1 : j;
        }
        return o;
    }
    // What the next producer does after one died holding the lock: it may have left an entry it
    // never published, or (dying in the few stores of an update) a torn one, which is then lost.
    void producer_died(std::mt19937_64& rng, bool torn) {
        std::uint32_t invalid = 0;
        if (torn && holes_.count > 0) {
            holes_.hole[rng() % holes_.count].end += 8 * (1 + rng() % 4);
            ++invalid;
        }
        if (holes_.count < ring::Holes::kMax) {
            holes_.hole[holes_.count++] = {tail_ + 8, tail_ + 4096};
            ++invalid;
        }
        const std::uint32_t before = holes_.count;
        holes_.keep_verified(head_, tail_, [&](std::uint64_t pos) { return words_[(pos % capacity_) / 8]; });
        EXPECT_LE(holes_.count + invalid, before) << "an invalid entry was kept";
    }
    std::uint64_t head() const { return head_; }

    std::uint64_t live() const { return live_; }  // bytes of unread records and skip headers
    std::uint64_t capacity() const { return capacity_; }
    std::size_t items() const { return items_.size(); }

private:
    static constexpr std::uint64_t kFree = ~std::uint64_t(0);
    std::uint64_t& owner(std::uint64_t pos) { return owner_[(pos % capacity_) / 8]; }
    void write(std::uint64_t pos, std::uint64_t value) {
        ASSERT_EQ(owner(pos), kFree) << "position " << pos << " written over unread data of position " << owner(pos);
        owner(pos) = pos;
        words_[(pos % capacity_) / 8] = value;
    }
    std::uint64_t read(std::uint64_t pos) {
        EXPECT_EQ(owner(pos), pos) << "read position " << pos << " holds another position's data";
        return words_[(pos % capacity_) / 8];
    }
    void release(std::uint64_t pos) { owner(pos) = kFree; }

    std::uint64_t capacity_;
    std::vector<std::uint64_t> words_, owner_;
    std::uint64_t head_ = 0, tail_ = 0, live_ = 0;
    ring::Holes holes_;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> items_;  // start, bytes
};

constexpr std::uint64_t kCapacity = 4 << 20;  // 16 hot windows

// Fills until no room; returns how full of unread data the ring is then (0..1).
double fill_until_full(SimulatedRing& r, std::uint64_t bytes) {
    for (int i = 0; i < 1'000'000 && r.put(bytes); ++i) {
    }
    return double(r.live()) / double(r.capacity());
}

// The report's shape: the consumer kept up past the hot window, then stalled.
TEST(QueueRing, AStallAfterKeepingUpStillFillsTheRing) {
    for (std::uint64_t lag : {0, 1, 5, 300}) {
        SCOPED_TRACE("lag " + std::to_string(lag));
        SimulatedRing r(kCapacity);
        for (int i = 0; i < 40000; ++i) {
            ASSERT_TRUE(r.put(16));
            ASSERT_TRUE(r.get());
        }
        for (std::uint64_t i = 0; i < lag; ++i) ASSERT_TRUE(r.put(16));
        EXPECT_GT(fill_until_full(r, 16), 0.99);
        while (r.get()) {
        }
        EXPECT_EQ(r.items(), 0u);
    }
}

// A record larger than the way back to the start, put where an early wrap would be taken: the
// jump's own skip record must stay clear of it.
TEST(QueueRing, ARecordLargerThanTheWayBackNeverCoversTheJumpsSkipRecord) {
    SimulatedRing r(kCapacity);
    for (int i = 0; i < 20000; ++i) {  // 320 KiB, all read
        ASSERT_TRUE(r.put(16));
        ASSERT_TRUE(r.get());
    }
    ASSERT_TRUE(r.put(1 << 20));
    ASSERT_TRUE(r.put(16));
    ASSERT_TRUE(r.get());
    ASSERT_TRUE(r.get());
    EXPECT_FALSE(r.get());
}

// A backlog drained down to its last items (the producer wrapped early far into the ring, the
// consumer was near the start), then a stall: the bytes the consumer freed are used again.
TEST(QueueRing, AStallAtTheEndOfALongBacklogStillFillsTheRing) {
    SimulatedRing r(kCapacity);
    std::uint64_t n = 0;
    while (r.live() < kCapacity / 2 && r.put(512)) ++n;
    ASSERT_TRUE(r.get());  // the start is free: the next put wraps early
    ASSERT_TRUE(r.put(512));
    for (std::uint64_t i = 0; i + 3 < n; ++i) ASSERT_TRUE(r.get());  // all but the last few
    EXPECT_GT(fill_until_full(r, 512), 0.98);
    while (r.get()) {
    }
}

// Random bursts, stalls and sizes (8 B to half the ring), stale views of the consumers, producers
// that die mid-update: nothing overwritten, lost or reordered; when the ring says full, unread
// data fills it but for a few records' worth of fragments.
TEST(QueueRing, RandomBurstsAndStalls) {
    for (unsigned seed = 1; seed <= 4; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        SimulatedRing r(kCapacity);
        std::mt19937_64 rng(seed);
        double worst = 1.0;
        bool lost_a_hole = false;
        for (int round = 0; round < 100; ++round) {
            // Now and then a record up to half the ring (the largest a queue takes), larger than
            // where the producer stands when it wraps early.
            const std::uint64_t big = rng() % 40 == 0  ? kCapacity / 2 - 8
                                      : rng() % 3 == 0 ? 65536
                                      : rng() % 2      ? 2048
                                                       : 64;
            const int puts = int(rng() % 3000), gets = int(rng() % 3000);
            // The producers' view of the consumers lags now and then; now and then a producer dies.
            const std::uint64_t seen_head = rng() % 4 == 0 ? r.head() : ~std::uint64_t(0);
            if (rng() % 10 == 0) {
                const bool torn = rng() % 4 == 0;
                r.producer_died(rng, torn);
                // A lost hole makes its bytes look taken until the consumers pass it.
                lost_a_hole |= torn;
            }
            if (r.items() == 0) lost_a_hole = false;
            for (int i = 0; i < puts; ++i) {
                const std::uint64_t bytes = 8 + (rng() % big + 7) / 8 * 8;
                const bool late = seen_head != ~std::uint64_t(0) && i < puts / 2;
                if (!(late ? r.put(bytes, seen_head) : r.put(bytes))) {
                    if (late || lost_a_hole) continue;  // these only show less room
                    // Full: unread data fills the ring but for fragments of a few records' size
                    // (a record of up to half the ring may find no contiguous place earlier).
                    const double fill = double(r.live() + bytes) / double(r.capacity());
                    if (bytes <= 65544) worst = std::min(worst, fill);
                    const std::uint64_t fragments = bytes > 65544 ? kCapacity / 2 : 4 * 65544;
                    ASSERT_GT(r.live() + bytes + fragments, r.capacity())
                        << r.dump() << "\nrefused a " << bytes << "-byte record with only " << r.live()
                        << " bytes unread";
                    break;
                }
            }
            for (int i = 0; i < gets && r.get(); ++i) {
            }
            if (testing::Test::HasFatalFailure()) return;
        }
        while (r.get()) {
        }
        EXPECT_EQ(r.items(), 0u);
        std::printf("seed %u: the emptiest ring refused a record at %.3f full\n", seed, worst);
    }
}

}  // namespace
