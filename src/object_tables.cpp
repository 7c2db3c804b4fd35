// Python's hashes and the dict and set tables behind mp::Object (object_body.hpp).
#define XXH_INLINE_ALL  // header-only, as in reduction.cpp
#include <xxhash.h>

#include <bit>
#include <cmath>

#include "object_body.hpp"

namespace polyproc::detail {

namespace {
constexpr int kHashBits = 61;
constexpr std::uint64_t kHashModulus = (std::uint64_t{1} << kHashBits) - 1;  // CPython's _PyHASH_MODULUS
constexpr std::int64_t kHashInf = 314159;

std::int64_t not_minus_one(std::int64_t h) noexcept { return h == -1 ? -2 : h; }
}  // namespace

// An int hashes to itself reduced modulo 2**61 - 1, keeping its sign (-1 is reserved).
std::int64_t python_int_hash(std::int64_t value) noexcept {
    const std::uint64_t magnitude =
        value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    const auto reduced = static_cast<std::int64_t>(magnitude % kHashModulus);
    return not_minus_one(value < 0 ? -reduced : reduced);
}

// CPython's _Py_HashDouble: the value as a fraction reduced modulo 2**61 - 1, so that a float
// equal to an int hashes as that int. NaN hashes by identity in CPython; all NaNs differ from
// everything anyway, so 0 serves.
std::int64_t python_float_hash(double value) noexcept {
    if (std::isinf(value)) return value > 0 ? kHashInf : -kHashInf;
    if (std::isnan(value)) return 0;
    int e = 0;
    double m = std::frexp(value, &e);
    int sign = 1;
    if (m < 0) {
        sign = -1;
        m = -m;
    }
    std::uint64_t x = 0;
    while (m != 0) {  // 28 bits at a time
        x = ((x << 28) & kHashModulus) | x >> (kHashBits - 28);
        m *= 268435456.0;
        e -= 28;
        const auto y = static_cast<std::uint64_t>(m);
        m -= static_cast<double>(y);
        x += y;
        if (x >= kHashModulus) x -= kHashModulus;
    }
    e = e >= 0 ? e % kHashBits : kHashBits - 1 - ((-1 - e) % kHashBits);
    x = ((x << e) & kHashModulus) | x >> (kHashBits - e);
    x = x * static_cast<std::uint64_t>(static_cast<std::int64_t>(sign));
    return not_minus_one(static_cast<std::int64_t>(x));
}

std::int64_t python_text_hash(std::string_view bytes, bool is_bytes) noexcept {
    return not_minus_one(static_cast<std::int64_t>(XXH3_64bits_withSeed(bytes.data(), bytes.size(), is_bytes ? 1 : 0)));
}

// CPython 3.8+'s tuple hash (an xxHash-like mix of the items' hashes).
std::int64_t python_tuple_hash(std::span<const Object> items) {
    constexpr std::uint64_t prime1 = 11400714785074694791ULL, prime2 = 14029467366897019727ULL,
                            prime5 = 2870177450012600261ULL;
    std::uint64_t acc = prime5;
    for (const Object& item : items) {
        const auto lane = static_cast<std::uint64_t>(item.hash());
        acc += lane * prime2;
        acc = std::rotl(acc, 31);
        acc *= prime1;
    }
    acc += items.size() ^ (prime5 ^ 3527539UL);
    if (acc == static_cast<std::uint64_t>(-1)) return 1546275796;
    return static_cast<std::int64_t>(acc);
}

// ---- DictTable ----------------------------------------------------------------------------------

namespace {
// The index slots a hash visits, in CPython's dict order.
struct DictProbe {
    DictProbe(std::int64_t hash, std::size_t size)
        : mask(size - 1), i(static_cast<std::size_t>(hash) & mask), perturb(static_cast<std::uint64_t>(hash)) {}
    void next() {
        perturb >>= 5;
        i = (i * 5 + perturb + 1) & mask;
    }
    std::size_t mask, i;
    std::uint64_t perturb;
};
}  // namespace

DictTable::DictTable(const DictTable& other) : index_(other.index_), live_(other.live_) {
    entries_.reserve(other.entries_.size());
    for (const auto& e : other.entries_) entries_.push_back(std::make_unique<Entry>(*e));
}

DictTable& DictTable::operator=(const DictTable& other) {
    if (this != &other) *this = DictTable(other);
    return *this;
}

std::optional<std::size_t> DictTable::find(const Object& key, std::int64_t hash) const {
    if (index_.empty()) return std::nullopt;
    for (DictProbe p(hash, index_.size());; p.next()) {
        const std::uint32_t slot = index_[p.i];
        if (slot == kEmpty) return std::nullopt;
        if (slot != kDeleted) {
            const Entry& e = *entries_[slot];
            if (e.hash == hash && e.key == key) return slot;
        }
    }
}

Object& DictTable::insert(Object key, std::int64_t hash, Object value, bool* inserted) {
    if (auto found = find(key, hash)) {
        if (inserted) *inserted = false;
        return entries_[*found]->value;
    }
    // Keep the index at most 2/3 full of entries, live or erased.
    if ((entries_.size() + 1) * 3 > index_.size() * 2) rebuild(live_ + 1);
    DictProbe p(hash, index_.size());
    while (index_[p.i] != kEmpty && index_[p.i] != kDeleted) p.next();
    index_[p.i] = static_cast<std::uint32_t>(entries_.size());
    entries_.push_back(std::make_unique<Entry>(Entry{std::move(key), std::move(value), hash, true}));
    ++live_;
    if (inserted) *inserted = true;
    return entries_.back()->value;
}

void DictTable::erase_entry(std::size_t entry) {
    Entry& e = *entries_[entry];
    DictProbe p(e.hash, index_.size());
    while (index_[p.i] != entry) p.next();
    index_[p.i] = kDeleted;
    e = Entry{};  // frees the key and value now
    --live_;
    if (live_ == 0) clear();
}

void DictTable::clear() {
    entries_.clear();
    index_.clear();
    live_ = 0;
}

// Drops erased entries (keeping the order of the live ones) and sizes the index for at least
// min_live entries.
void DictTable::rebuild(std::size_t min_live) {
    if (live_ != entries_.size()) {
        std::vector<std::unique_ptr<Entry>> kept;
        kept.reserve(live_ + 1);
        for (auto& e : entries_)
            if (e->live) kept.push_back(std::move(e));
        entries_ = std::move(kept);
    }
    std::size_t size = 8;
    while (size * 2 < min_live * 3 + 3) size *= 2;
    if (size > kDeleted) throw std::length_error("mp::Object: dict too large");
    index_.assign(size, kEmpty);
    for (std::size_t n = 0; n < entries_.size(); ++n) {
        DictProbe p(entries_[n]->hash, size);
        while (index_[p.i] != kEmpty) p.next();
        index_[p.i] = static_cast<std::uint32_t>(n);
    }
}

// ---- SetTable: CPython's setobject.c ------------------------------------------------------------

const SetTable::Slot* SetTable::lookup(const Object& key, std::int64_t hash) const {
    const std::size_t mask = table_.size() - 1;
    auto perturb = static_cast<std::size_t>(hash);
    std::size_t i = static_cast<std::size_t>(hash) & mask;
    for (;;) {
        std::size_t probes = (i + kLinearProbes <= mask) ? kLinearProbes : 0;
        const Slot* slot = &table_[i];
        for (;;) {
            if (slot->state == Slot::empty) return nullptr;
            if (slot->state == Slot::active && slot->hash == hash && slot->key == key) return slot;
            if (probes-- == 0) break;
            ++slot;
        }
        perturb >>= kPerturbShift;
        i = (i * 5 + 1 + perturb) & mask;
    }
}

bool SetTable::contains(const Object& key, std::int64_t hash) const { return lookup(key, hash) != nullptr; }

void SetTable::add(Object key, std::int64_t hash) {
    const std::size_t mask = table_.size() - 1;
    auto perturb = static_cast<std::size_t>(hash);
    std::size_t i = static_cast<std::size_t>(hash) & mask;
    Slot* freeslot = nullptr;
    Slot* slot = nullptr;
    for (;;) {
        std::size_t probes = (i + kLinearProbes <= mask) ? kLinearProbes : 0;
        slot = &table_[i];
        for (;;) {
            if (slot->state == Slot::empty) goto found_unused_or_dummy;
            if (slot->state == Slot::active && slot->hash == hash && slot->key == key) return;
            if (slot->state == Slot::dummy) freeslot = slot;  // the last dummy seen, as CPython
            if (probes-- == 0) break;
            ++slot;
        }
        perturb >>= kPerturbShift;
        i = (i * 5 + 1 + perturb) & mask;
    }
found_unused_or_dummy:
    if (freeslot) {
        *freeslot = Slot{std::move(key), hash, Slot::active};
        ++used_;
        return;
    }
    *slot = Slot{std::move(key), hash, Slot::active};
    ++fill_;
    ++used_;
    if (fill_ * 5 < mask * 3) return;
    resize(used_ > 50000 ? used_ * 2 : used_ * 4);
}

bool SetTable::discard(const Object& key, std::int64_t hash) {
    auto* slot = const_cast<Slot*>(lookup(key, hash));
    if (!slot) return false;
    *slot = Slot{Object(), -1, Slot::dummy};
    --used_;
    return true;
}

Object SetTable::pop() {
    if (used_ == 0) throw KeyError("'pop from an empty set'");
    std::size_t i = finger_ & (table_.size() - 1);
    while (table_[i].state != Slot::active) i = (i + 1) & (table_.size() - 1);
    Object key = std::move(table_[i].key);
    table_[i] = Slot{Object(), -1, Slot::dummy};
    --used_;
    finger_ = i + 1;
    return key;
}

void SetTable::clear() {
    table_.assign(kMinSize, Slot{});
    fill_ = used_ = finger_ = 0;
}

void SetTable::insert_clean(std::vector<Slot>& table, Object key, std::int64_t hash) {
    const std::size_t mask = table.size() - 1;
    auto perturb = static_cast<std::size_t>(hash);
    std::size_t i = static_cast<std::size_t>(hash) & mask;
    for (;;) {
        if (table[i].state == Slot::empty) break;
        if (i + kLinearProbes <= mask) {
            std::size_t j = 1;
            for (; j <= kLinearProbes && table[i + j].state != Slot::empty; ++j) {
            }
            if (j <= kLinearProbes) {
                i += j;
                break;
            }
        }
        perturb >>= kPerturbShift;
        i = (i * 5 + 1 + perturb) & mask;
    }
    table[i] = Slot{std::move(key), hash, Slot::active};
}

void SetTable::resize(std::size_t min_used) {
    std::size_t size = kMinSize;
    while (size <= min_used) size <<= 1;
    if (size == kMinSize && table_.size() == kMinSize && fill_ == used_) return;  // no dummies to purge
    std::vector<Slot> fresh(size);
    for (Slot& s : table_)
        if (s.state == Slot::active) insert_clean(fresh, std::move(s.key), s.hash);
    table_ = std::move(fresh);
    fill_ = used_;
}

}  // namespace polyproc::detail
