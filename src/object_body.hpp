// The storage behind mp::Object's str, bytes and containers, and Python's hash functions.
//
// DictTable keeps insertion order in a vector of entries and finds keys through an open-addressed
// index of entry numbers, as CPython's dict does. SetTable is CPython's setobject.c table (linear
// probes, then perturbation; resized at 60% fill), so that a set of numbers iterates in the order
// CPython's does after the same adds and discards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "polyproc/object.hpp"

namespace polyproc::detail {

// CPython's numeric hashes (Python/pyhash.c, Objects/longobject.c, Objects/tupleobject.c).
std::int64_t python_int_hash(std::int64_t value) noexcept;
std::int64_t python_float_hash(double value) noexcept;
std::int64_t python_text_hash(std::string_view bytes, bool is_bytes) noexcept;  // not CPython's (it is seeded)
std::int64_t python_tuple_hash(std::span<const Object> items);
inline constexpr std::int64_t kNoneHash = 0xFCA86420;  // Python 3.12's constant

class DictTable {
public:
    struct Entry {
        Object key, value;
        std::int64_t hash = 0;
        bool live = false;
    };

    DictTable() = default;
    DictTable(const DictTable& other);  // copies the entries (each is an allocation of its own)
    DictTable& operator=(const DictTable& other);
    DictTable(DictTable&&) noexcept = default;
    DictTable& operator=(DictTable&&) noexcept = default;

    std::size_t size() const noexcept { return live_; }
    // Each entry is allocated on its own, so that a reference to a value (what the non-const
    // operator[] returns) stays valid while other keys are inserted: `d["x"] = d["y"]`.
    const std::vector<std::unique_ptr<Entry>>& entries() const noexcept { return entries_; }
    std::vector<std::unique_ptr<Entry>>& entries() noexcept { return entries_; }

    // The entry holding key, or none.
    std::optional<std::size_t> find(const Object& key, std::int64_t hash) const;
    // The value for key, inserted (as `value`) when absent; `inserted` says which.
    Object& insert(Object key, std::int64_t hash, Object value, bool* inserted = nullptr);
    void erase_entry(std::size_t entry);
    void clear();

private:
    static constexpr std::uint32_t kEmpty = 0xffffffff, kDeleted = 0xfffffffe;
    void rebuild(std::size_t min_live);

    std::vector<std::unique_ptr<Entry>> entries_;  // in insertion order; erased entries stay, not live
    std::vector<std::uint32_t> index_;  // power-of-two size; entry numbers, kEmpty or kDeleted
    std::size_t live_ = 0;
};

class SetTable {
public:
    struct Slot {
        Object key;
        std::int64_t hash = 0;
        enum State : std::uint8_t { empty, dummy, active } state = empty;
    };

    SetTable() : table_(kMinSize) {}
    std::size_t size() const noexcept { return used_; }
    const std::vector<Slot>& slots() const noexcept { return table_; }

    bool contains(const Object& key, std::int64_t hash) const;
    void add(Object key, std::int64_t hash);
    bool discard(const Object& key, std::int64_t hash);  // false when absent
    Object pop();                                        // mp::KeyError when empty
    void clear();

private:
    static constexpr std::size_t kMinSize = 8, kLinearProbes = 9, kPerturbShift = 5;
    const Slot* lookup(const Object& key, std::int64_t hash) const;  // the active slot, or null
    void resize(std::size_t min_used);
    static void insert_clean(std::vector<Slot>& table, Object key, std::int64_t hash);

    std::vector<Slot> table_;
    std::size_t fill_ = 0, used_ = 0;  // fill counts dummies too
    std::size_t finger_ = 0;           // where pop() looks first
};

// An instance Object's body: Python's reduction module.name(*args), and its attachment.
struct Instance {
    std::string module, name;
    Object args;
    std::shared_ptr<const ObjectAttachment> attachment;
};

class ObjectBody {
public:
    using Storage = std::variant<std::string, Bytes, std::vector<Object>, DictTable, SetTable, Instance>;
    explicit ObjectBody(Storage value) : storage(std::move(value)) {}
    ObjectBody(const ObjectBody& other) : storage(other.storage) {}  // a fresh copy is shareable
    Storage storage;
    // False once a reference into it was handed out (operator[], at(), setdefault()): a copy of
    // the Object then copies the body at once, so that writing through that reference later
    // cannot reach the copy.
    bool shareable = true;

    std::string& text() { return std::get<std::string>(storage); }
    const std::string& text() const { return std::get<std::string>(storage); }
    const Bytes& bytes() const { return std::get<Bytes>(storage); }
    std::vector<Object>& items() { return std::get<std::vector<Object>>(storage); }
    const std::vector<Object>& items() const { return std::get<std::vector<Object>>(storage); }
    DictTable& dict() { return std::get<DictTable>(storage); }
    const DictTable& dict() const { return std::get<DictTable>(storage); }
    SetTable& set() { return std::get<SetTable>(storage); }
    const SetTable& set() const { return std::get<SetTable>(storage); }
    const Instance& instance() const { return std::get<Instance>(storage); }
};

// Python's repr of a float ("1e+16", "0.1", "3.0", "inf"), and whether a code point prints
// unescaped in a str's repr (str.isprintable()).
std::string float_repr(double value);
bool is_printable(char32_t code_point) noexcept;

}  // namespace polyproc::detail
