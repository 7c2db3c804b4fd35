// Where a queue's producers put the next record in its byte ring (queues.cpp holds the ring, the
// locks and the waiting). Pure functions over positions, so that a test can drive them on a small
// ring; queues.cpp calls them with the producers' lock held.
//
// Positions count bytes since the queue was created and never wrap; a position's place in the
// ring is position % capacity. Records are 8-byte aligned and contiguous. A skip record tells the
// consumers to jump ahead to a later position; the positions it jumps over hold nothing of theirs,
// which makes them a hole: the ring bytes under a hole are free for the producers to write, once
// per lap, whatever the consumers still have to read elsewhere.
//
// Producers jump in three cases:
//   * at the end of the ring, to the start of the next lap;
//   * early, back to the start once past kHotWindow when the start is free, so that while the
//     consumers keep up the ring stays in its first few hundred KiB (hot in cache, no page faults);
//   * around data the consumers have not read yet, into the bytes under a hole. Without this, a
//     consumer that stalls just behind an early wrap would cap an "unbounded" queue at the few
//     hundred KiB between the start and itself.
// A record written straight on always leaves room for the 8-byte skip record of the next jump, so
// a producer is never wedged between two records of unread data.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace polyproc::detail::ring {

inline constexpr std::uint64_t kHeaderBytes = 8;
inline constexpr std::uint64_t kHotWindow = 256 << 10;

// The holes the consumers have not passed yet, oldest first. A hole not recorded (the list full)
// only makes its bytes look occupied: fewer places to write, never a wrong one.
struct Holes {
    static constexpr std::uint32_t kMax = 16;
    struct Hole {
        std::uint64_t begin, end;  // [begin, end): after the skip record, up to where it jumps
    };
    Hole hole[kMax] = {};
    std::uint32_t count = 0;

    bool contains(std::uint64_t lo, std::uint64_t hi) const {
        for (std::uint32_t i = 0; i < count; ++i)
            if (hole[i].begin <= lo && hi <= hole[i].end) return true;
        return false;
    }
    void add(std::uint64_t begin, std::uint64_t end) {
        if (count < kMax) hole[count++] = Hole{begin, end};
    }
    // After a producer died holding the lock, perhaps mid-update: keeps the holes whose skip
    // record is still unread and says what the entry says (`word(pos)` reads the ring's 8 bytes
    // at position pos). A torn or unpublished entry fails the check.
    template <class ReadWord>
    void keep_verified(std::uint64_t head, std::uint64_t tail, ReadWord word) {
        std::uint32_t kept = 0;
        const std::uint32_t n = std::min(count, kMax);
        for (std::uint32_t i = 0; i < n; ++i) {
            const Hole h = hole[i];
            if (h.begin < kHeaderBytes || h.end <= h.begin) continue;
            const std::uint64_t skip_at = h.begin - kHeaderBytes;
            if (head <= skip_at && skip_at < tail && word(skip_at) == (((h.end - skip_at) << 1) | 1)) hole[kept++] = h;
        }
        count = kept;
    }
    // Drops the holes whose positions all lie before `before` (the consumers passed them) or
    // whose skip record starts at or after `from` (never published: cancelled, or its producer died).
    void forget(std::uint64_t before, std::uint64_t from) {
        std::uint32_t kept = 0;
        for (std::uint32_t i = 0; i < count; ++i)
            if (hole[i].end > before && hole[i].begin - kHeaderBytes < from) hole[kept++] = hole[i];
        count = kept;
    }
};

struct Placement {
    std::uint64_t start;     // where the record goes; a skip record leads there when it is not the tail
    std::uint64_t new_tail;  // past the record
};

// The producers' view of the ring. `head` may be stale (older): that only shows less room.
struct RingView {
    std::uint64_t capacity, tail, head;
    const Holes& holes;

    std::uint64_t lap_end(std::uint64_t pos) const { return pos - pos % capacity + capacity; }

    // Whether positions [pos, pos + len) may be written: on every earlier lap, the same ring bytes
    // belong to positions the consumers have taken, or to a hole.
    bool free(std::uint64_t pos, std::uint64_t len) const {
        for (std::uint64_t back = capacity;; back += capacity) {
            if (pos + len <= head + back) return true;  // that lap and every earlier one are taken
            // (Nothing lies before position 0.)
            const std::uint64_t lo = std::max(pos >= back ? pos - back : 0, head);
            const std::uint64_t hi = std::min(pos + len - back, tail);
            if (lo < hi && !holes.contains(lo, hi)) return false;
        }
    }

    // A record of `bytes` fits at `pos`: within the ring, on free bytes, leaving room for the
    // next skip record (at the start of the next lap when it ends this one).
    bool fits(std::uint64_t pos, std::uint64_t bytes) const {
        return pos % capacity + bytes <= capacity && free(pos, bytes + kHeaderBytes);
    }
};

// Where a record of `bytes` (header included, 8-byte aligned, at most half the ring) goes; empty
// when there is no room until the consumers move on.
inline std::optional<Placement> place(const RingView& r, std::uint64_t bytes) {
    const std::uint64_t at = r.tail % r.capacity;
    const std::uint64_t next_lap = r.lap_end(r.tail);
    // A jump writes its skip record at the tail first: where it lands must not cover that too.
    RingView jumping = r;
    jumping.tail = r.tail + kHeaderBytes;
    // Early back to the hot start (keeping hole slots for the jumps it may lead to).
    if (at >= kHotWindow && r.holes.count + 2 <= Holes::kMax && jumping.fits(next_lap, bytes))
        return Placement{next_lap, next_lap + bytes};
    if (r.fits(r.tail, bytes)) return Placement{r.tail, r.tail + bytes};
    // A jump, to the nearest place that fits: the next lap, or the bytes under a hole (on the
    // lap after the hole's).
    if (!r.free(r.tail, kHeaderBytes)) return std::nullopt;  // kept free by fits(); defensive
    std::optional<std::uint64_t> best;
    auto consider = [&](std::uint64_t pos) {
        if (pos > r.tail && (!best || pos < *best) && jumping.fits(pos, bytes)) best = pos;
    };
    consider(next_lap);
    for (std::uint32_t i = 0; i < r.holes.count; ++i) {
        const std::uint64_t begin = r.holes.hole[i].begin;
        const std::uint64_t laps = begin > r.tail ? 1 : (r.tail - begin) / r.capacity + 1;
        consider(begin + laps * r.capacity);
    }
    if (!best) return std::nullopt;
    return Placement{*best, *best + bytes};
}

}  // namespace polyproc::detail::ring
