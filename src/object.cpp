// mp::Object: construction, conversion, Python's container operations, equality, hashing and
// ordering. The tables are in object_tables.cpp, repr/str in object_repr.cpp.
#include "polyproc/object.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <compare>

#include "object_body.hpp"

namespace polyproc {

using detail::DictTable;
using detail::ObjectBody;
using detail::SetTable;

namespace {

// The number of bytes of the UTF-8 sequence starting at text[i], or 0 when it is not valid
// UTF-8 (overlong forms and surrogates included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n;
    char32_t cp;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n > text.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

void check_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8_sequence_length(text, i);
        if (n == 0)
            throw ValueError("mp::Object: a str must be valid UTF-8; byte " + std::to_string(i) +
                             " is not (use mp::Bytes for binary data)");
        i += n;
    }
}

bool is_numeric(Object::Type t) noexcept {
    return t == Object::Type::boolean || t == Object::Type::integer || t == Object::Type::floating;
}

std::int64_t int_value(const Object& o) { return o.as_int(); }

// Python compares an int and a float exactly, not by converting the int.
std::partial_ordering compare_int_float(std::int64_t i, double f) noexcept {
    if (std::isnan(f)) return std::partial_ordering::unordered;
    if (f >= 9223372036854775808.0) return std::partial_ordering::less;
    if (f < -9223372036854775808.0) return std::partial_ordering::greater;
    const double whole = std::trunc(f);
    const auto w = static_cast<std::int64_t>(whole);
    if (i != w) return i <=> w;
    return 0.0 <=> (f - whole);
}

std::partial_ordering compare_numbers(const Object& a, const Object& b) {
    const bool af = a.type() == Object::Type::floating, bf = b.type() == Object::Type::floating;
    if (af && bf) return a.as_float() <=> b.as_float();
    if (!af && !bf) return int_value(a) <=> int_value(b);
    if (af) return 0 <=> compare_int_float(int_value(b), a.as_float());
    return compare_int_float(int_value(a), b.as_float());
}

enum class CompareOp { lt, le, gt, ge };
const char* op_text(CompareOp op) {
    switch (op) {
        case CompareOp::lt:
            return "<";
        case CompareOp::le:
            return "<=";
        case CompareOp::gt:
            return ">";
        case CompareOp::ge:
            return ">=";
    }
    return "?";
}
bool holds(std::partial_ordering order, CompareOp op) {
    switch (op) {
        case CompareOp::lt:
            return order < 0;
        case CompareOp::le:
            return order <= 0;
        case CompareOp::gt:
            return order > 0;
        case CompareOp::ge:
            return order >= 0;
    }
    return false;
}

[[noreturn]] void throw_unorderable(const Object& a, const Object& b, CompareOp op) {
    throw TypeError(std::string("'") + op_text(op) + "' not supported between instances of '" + a.type_name() +
                    "' and '" + b.type_name() + "'");
}

[[noreturn]] void throw_no_attribute(const Object& o, const char* method) {
    throw AttributeError(std::string("'") + o.type_name() + "' object has no attribute '" + method + "'");
}

bool is_subset(const SetTable& small, const SetTable& big) {
    if (small.size() > big.size()) return false;
    for (const auto& slot : small.slots())
        if (slot.state == SetTable::Slot::active && !big.contains(slot.key, slot.hash)) return false;
    return true;
}

bool rich_compare(const Object& a, const Object& b, CompareOp op) {
    if (is_numeric(a.type()) && is_numeric(b.type())) return holds(compare_numbers(a, b), op);
    if (a.type() != b.type()) throw_unorderable(a, b, op);
    switch (a.type()) {
        case Object::Type::str:
            return holds(a.as_str() <=> b.as_str(), op);
        case Object::Type::bytes:
            return holds(a.as_bytes() <=> b.as_bytes(), op);
        case Object::Type::tuple:
        case Object::Type::list: {
            // The first items that differ decide, by the same operator; else the lengths.
            const auto x = a.items_view(), y = b.items_view();
            std::size_t i = 0;
            while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
            if (i < x.size() && i < y.size()) return rich_compare(x[i], y[i], op);
            return holds(x.size() <=> y.size(), op);
        }
        case Object::Type::set: {
            const Object& small = (op == CompareOp::lt || op == CompareOp::le) ? a : b;
            const Object& big = (op == CompareOp::lt || op == CompareOp::le) ? b : a;
            if ((op == CompareOp::lt || op == CompareOp::gt) && small.size() >= big.size()) return false;
            std::vector<Object> members(small.begin(), small.end());
            return std::all_of(members.begin(), members.end(), [&](const Object& m) { return big.contains(m); });
        }
        default:
            throw_unorderable(a, b, op);
    }
}

// A sequence index as Python takes it: negative counts from the end.
std::size_t normalize_index(const Object& index, std::size_t size, const char* type, const char* what) {
    if (index.type() != Object::Type::integer && index.type() != Object::Type::boolean)
        throw TypeError(std::string(type) + " indices must be integers or slices, not " + index.type_name());
    std::int64_t i = index.as_int();
    if (i < 0) i += static_cast<std::int64_t>(size);
    if (i < 0 || static_cast<std::uint64_t>(i) >= size)
        throw IndexError(std::string(type) + " " + what + " out of range");
    return static_cast<std::size_t>(i);
}

}  // namespace

namespace detail {

void throw_object_type_error(const Object& got, const char* wanted) {
    // A container is described, not printed: it may be huge.
    std::string shown;
    switch (got.type()) {
        case Object::Type::tuple:
        case Object::Type::list:
        case Object::Type::dict:
        case Object::Type::set:
            shown = got.size() <= 8 && std::all_of(got.begin(), got.end(),
                                                   [](const Object& item) {
                                                       return item.type() != Object::Type::tuple &&
                                                              item.type() != Object::Type::list &&
                                                              item.type() != Object::Type::dict &&
                                                              item.type() != Object::Type::set;
                                                   })
                        ? repr(got)
                        : std::to_string(got.size()) + " items";
            break;
        default:
            shown = repr(got);
    }
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    const char* article = got.type() == Object::Type::integer ? "an " : "a ";
    throw TypeError("mp::Object holds " + (article + std::string(got.type_name())) + " (" + shown + "), not " + wanted);
}

void throw_object_length_error(const Object& got, std::size_t wanted) {
    throw TypeError(std::string("mp::Object holds a ") + got.type_name() + " of " + std::to_string(got.size()) +
                    " items, not a tuple of " + std::to_string(wanted));
}

void throw_int_does_not_fit(std::int64_t value, const char* type) {
    throw OverflowError("int " + std::to_string(value) + " does not fit " + type);
}

}  // namespace detail

void Object::throw_int_overflow_text(const std::string& digits) {
    throw OverflowError("int " + digits + " is beyond the 64-bit ints an mp::Object holds");
}

// ---- construction -------------------------------------------------------------------------------

Object::Object(std::string_view text) : type_(Type::str) {
    check_utf8(text);
    body_ = std::make_shared<ObjectBody>(std::string(text));
}

Object::Object(std::string&& text) : type_(Type::str) {
    check_utf8(text);
    body_ = std::make_shared<ObjectBody>(std::move(text));
}

Object::Object(Bytes bytes) : type_(Type::bytes), body_(std::make_shared<ObjectBody>(std::move(bytes))) {}

Object Object::tuple(std::initializer_list<Object> items) { return tuple(std::vector<Object>(items)); }
Object Object::tuple(std::vector<Object> items) {
    Object o;
    o.type_ = Type::tuple;
    o.body_ = std::make_shared<ObjectBody>(std::move(items));
    return o;
}
Object Object::list(std::initializer_list<Object> items) { return list(std::vector<Object>(items)); }
Object Object::list(std::vector<Object> items) {
    Object o;
    o.type_ = Type::list;
    o.body_ = std::make_shared<ObjectBody>(std::move(items));
    return o;
}
Object Object::dict(std::initializer_list<std::pair<Object, Object>> items) {
    return dict(std::vector<std::pair<Object, Object>>(items));
}
Object Object::dict(std::vector<std::pair<Object, Object>> items) {
    Object o;
    o.type_ = Type::dict;
    o.body_ = std::make_shared<ObjectBody>(DictTable{});
    for (auto& [k, v] : items) o[k] = std::move(v);  // a repeated key keeps its first place, the last value
    return o;
}
Object Object::set(std::initializer_list<Object> items) { return set(std::vector<Object>(items)); }
Object Object::set(std::vector<Object> items) {
    Object o;
    o.type_ = Type::set;
    o.body_ = std::make_shared<ObjectBody>(SetTable{});
    for (auto& item : items) o.add(std::move(item));
    return o;
}

Object Object::instance(std::string module, std::string name, Object args,
                        std::shared_ptr<const ObjectAttachment> attachment) {
    if (args.type_ != Type::tuple) throw TypeError("an instance's arguments must be a tuple");
    Object o;
    o.type_ = Type::instance;
    o.body_ = std::make_shared<ObjectBody>(
        detail::Instance{std::move(module), std::move(name), std::move(args), std::move(attachment)});
    return o;
}

const std::string& Object::instance_module() const {
    if (type_ != Type::instance) detail::throw_object_type_error(*this, "an instance");
    return body().instance().module;
}
const std::string& Object::instance_name() const {
    if (type_ != Type::instance) detail::throw_object_type_error(*this, "an instance");
    return body().instance().name;
}
const Object& Object::instance_args() const {
    if (type_ != Type::instance) detail::throw_object_type_error(*this, "an instance");
    return body().instance().args;
}
const std::shared_ptr<const ObjectAttachment>& Object::instance_attachment() const {
    if (type_ != Type::instance) detail::throw_object_type_error(*this, "an instance");
    return body().instance().attachment;
}

bool Object::is_instance_of(std::string_view module, std::string_view name) const noexcept {
    return type_ == Type::instance && body().instance().module == module && body().instance().name == name;
}

Object detail::native_object(std::string_view type_name, std::vector<std::byte> bytes) {
    return Object::instance("polyproc", "Native", Object::tuple({Object(type_name), Object(Bytes(std::span(bytes)))}));
}

std::span<const std::byte> detail::native_bytes(const Object& o, std::string_view wanted_type_name) {
    const bool native = o.is_instance_of("polyproc", "Native") && o.instance_args().size() == 2 &&
                        o.instance_args()[1].type() == Object::Type::bytes;
    if (!native) detail::throw_object_type_error(o, ("a " + std::string(wanted_type_name)).c_str());
    const std::string_view bytes = o.instance_args()[1].as_bytes().view();
    return {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()};
}

const char* Object::type_name() const noexcept {
    switch (type_) {
        case Type::none:
            return "NoneType";
        case Type::boolean:
            return "bool";
        case Type::integer:
            return "int";
        case Type::floating:
            return "float";
        case Type::str:
            return "str";
        case Type::bytes:
            return "bytes";
        case Type::tuple:
            return "tuple";
        case Type::list:
            return "list";
        case Type::dict:
            return "dict";
        case Type::set:
            return "set";
        case Type::instance:
            return body().instance().name.c_str();
    }
    return "?";
}

const ObjectBody& Object::body() const { return *body_; }

// Copy-on-write: a body shared with other copies is copied before it is written. A body into
// which a reference was handed out is copied at once instead, when the Object is.
ObjectBody& Object::mutable_body() {
    if (body_.use_count() > 1) {
        body_ = std::make_shared<ObjectBody>(*body_);
    } else {
#ifndef __SANITIZE_THREAD__  // (GCC's TSan does not model fences; it sees shared_ptr's own atomics)
        std::atomic_thread_fence(std::memory_order_acquire);  // after the other copies' last reads
#endif
    }
    return *body_;
}

Object::Object(const Object& other)
    : type_(other.type_),
      scalar_(other.scalar_),
      body_(other.body_ && !other.body_->shareable ? std::make_shared<ObjectBody>(*other.body_) : other.body_) {}

Object& Object::operator=(const Object& other) {
    if (this != &other) *this = Object(other);
    return *this;
}

// A reference into the container is handed out: from now on a copy of this Object copies it.
ObjectBody& Object::referenced_body() {
    ObjectBody& b = mutable_body();
    b.shareable = false;
    return b;
}

// ---- scalars ------------------------------------------------------------------------------------

bool Object::as_bool() const {
    if (type_ != Type::boolean) detail::throw_object_type_error(*this, "a bool");
    return scalar_.b;
}

std::int64_t Object::as_int() const {
    if (type_ == Type::integer) return scalar_.i;
    if (type_ == Type::boolean) return scalar_.b ? 1 : 0;
    detail::throw_object_type_error(*this, "an int");
}

double Object::as_float() const {
    if (type_ == Type::floating) return scalar_.f;
    if (type_ == Type::integer) return static_cast<double>(scalar_.i);
    if (type_ == Type::boolean) return scalar_.b ? 1.0 : 0.0;
    detail::throw_object_type_error(*this, "a float");
}

const std::string& Object::as_str() const {
    if (type_ != Type::str) detail::throw_object_type_error(*this, "a str");
    return body().text();
}

const Bytes& Object::as_bytes() const {
    if (type_ != Type::bytes) detail::throw_object_type_error(*this, "bytes");
    return body().bytes();
}

bool Object::truthy() const noexcept {
    switch (type_) {
        case Type::none:
            return false;
        case Type::boolean:
            return scalar_.b;
        case Type::integer:
            return scalar_.i != 0;
        case Type::floating:
            return scalar_.f != 0.0;
        case Type::str:
            return !body().text().empty();
        case Type::bytes:
            return body().bytes().size() != 0;
        case Type::tuple:
        case Type::list:
            return !body().items().empty();
        case Type::dict:
            return body().dict().size() != 0;
        case Type::set:
            return body().set().size() != 0;
        case Type::instance:
            return true;
    }
    return false;
}

// ---- containers ---------------------------------------------------------------------------------

std::size_t Object::size() const {
    switch (type_) {
        case Type::str: {
            const std::string& t = body().text();
            return static_cast<std::size_t>(std::count_if(
                t.begin(), t.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
        }
        case Type::bytes:
            return body().bytes().size();
        case Type::tuple:
        case Type::list:
            return body().items().size();
        case Type::dict:
            return body().dict().size();
        case Type::set:
            return body().set().size();
        default:
            throw TypeError(std::string("object of type '") + type_name() + "' has no len()");
    }
}

std::span<const Object> Object::items_view() const {
    if (type_ != Type::tuple && type_ != Type::list) detail::throw_object_type_error(*this, "a tuple or list");
    return body().items();
}

bool Object::contains(const Object& item) const {
    switch (type_) {
        case Type::dict:
            return body().dict().find(item, item.hash()).has_value();
        case Type::set:
            return body().set().contains(item, item.hash());
        case Type::tuple:
        case Type::list: {
            const auto& items = body().items();
            return std::find(items.begin(), items.end(), item) != items.end();
        }
        case Type::str:
            if (item.type_ != Type::str)
                throw TypeError(std::string("'in <string>' requires string as left operand, not ") + item.type_name());
            return body().text().find(item.as_str()) != std::string::npos;
        case Type::bytes:
            if (item.type_ == Type::integer) {
                const std::int64_t v = item.as_int();
                if (v < 0 || v > 255) throw ValueError("byte must be in range(0, 256)");
                return body().bytes().view().find(static_cast<char>(v)) != std::string_view::npos;
            }
            if (item.type_ != Type::bytes)
                throw TypeError(std::string("a bytes-like object is required, not '") + item.type_name() + "'");
            return body().bytes().view().find(item.as_bytes().view()) != std::string_view::npos;
        default:
            throw TypeError(std::string("argument of type '") + type_name() + "' is not iterable");
    }
}

const Object& Object::at(const Object& key) const {
    switch (type_) {
        case Type::tuple:
        case Type::list: {
            const auto& items = body().items();
            return items[normalize_index(key, items.size(), type_name(), "index")];
        }
        case Type::dict: {
            const auto& d = body().dict();
            const auto found = d.find(key, key.hash());
            if (!found) throw KeyError(repr(key));
            return d.entries()[*found]->value;
        }
        case Type::str:
        case Type::bytes:
            throw TypeError(std::string("mp::Object does not index a ") + type_name() + "; use as_str() or as_bytes()");
        default:
            throw TypeError(std::string("'") + type_name() + "' object is not subscriptable");
    }
}

Object& Object::at(const Object& key) {
    // Found (or refused) before the body is unshared; an entry's place survives the unsharing.
    switch (type_) {
        case Type::dict: {
            const auto found = body().dict().find(key, key.hash());
            if (!found) throw KeyError(repr(key));
            return referenced_body().dict().entries()[*found]->value;
        }
        case Type::tuple:
        case Type::list: {
            const std::size_t i = normalize_index(key, body().items().size(), type_name(), "index");
            return referenced_body().items()[i];
        }
        default:  // not subscriptable: the const at() raises what Python says
            return const_cast<Object&>(static_cast<const Object&>(*this).at(key));
    }
}

const Object& Object::operator[](const Object& key) const { return at(key); }

Object& Object::operator[](const Object& key) {
    if (type_ != Type::dict) return at(key);
    const std::int64_t h = key.hash();
    return referenced_body().dict().insert(key, h, Object());
}

void Object::append(Object item) {
    if (type_ != Type::list) throw_no_attribute(*this, "append");
    mutable_body().items().push_back(std::move(item));
}

void Object::extend(const Object& iterable) {
    if (type_ != Type::list) throw_no_attribute(*this, "extend");
    std::vector<Object> added(iterable.begin(), iterable.end());  // first: x.extend(x) is allowed
    auto& items = mutable_body().items();
    items.insert(items.end(), std::make_move_iterator(added.begin()), std::make_move_iterator(added.end()));
}

void Object::insert(std::int64_t index, Object item) {
    if (type_ != Type::list) throw_no_attribute(*this, "insert");
    auto& items = mutable_body().items();
    const auto n = static_cast<std::int64_t>(items.size());
    if (index < 0) index = std::max<std::int64_t>(index + n, 0);
    index = std::min(index, n);
    items.insert(items.begin() + index, std::move(item));
}

Object Object::pop() {
    if (type_ == Type::set) return mutable_body().set().pop();
    if (type_ != Type::list) throw_no_attribute(*this, "pop");
    if (body().items().empty()) throw IndexError("pop from empty list");
    return pop(Object(-1));
}

Object Object::pop(const Object& index_or_key) {
    if (type_ == Type::dict) {
        if (!contains(index_or_key)) throw KeyError(repr(index_or_key));
        return pop(index_or_key, Object());
    }
    if (type_ != Type::list) throw_no_attribute(*this, "pop");
    if (body().items().empty()) throw IndexError("pop from empty list");
    const std::size_t i = normalize_index(index_or_key, body().items().size(), "pop", "index");
    auto& items = mutable_body().items();
    Object out = std::move(items[i]);
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
    return out;
}

Object Object::pop(const Object& key, Object default_value) {
    if (type_ != Type::dict) throw_no_attribute(*this, "pop");
    const std::int64_t h = key.hash();
    const auto found = body().dict().find(key, h);
    if (!found) return default_value;
    auto& d = mutable_body().dict();
    Object out = std::move(d.entries()[*found]->value);
    d.erase_entry(*found);
    return out;
}

void Object::remove(const Object& item) {
    if (type_ == Type::set) {
        if (!mutable_body().set().discard(item, item.hash())) throw KeyError(repr(item));
        return;
    }
    if (type_ != Type::list) throw_no_attribute(*this, "remove");
    const auto& items = body().items();
    const auto it = std::find(items.begin(), items.end(), item);
    if (it == items.end()) throw ValueError("list.remove(x): x not in list");
    const auto at_index = it - items.begin();
    auto& mine = mutable_body().items();
    mine.erase(mine.begin() + at_index);
}

std::size_t Object::index(const Object& item) const {
    if (type_ != Type::list && type_ != Type::tuple) throw_no_attribute(*this, "index");
    const auto& items = body().items();
    const auto it = std::find(items.begin(), items.end(), item);
    if (it == items.end())
        throw ValueError(type_ == Type::list ? repr(item) + " is not in list" : "tuple.index(x): x not in tuple");
    return static_cast<std::size_t>(it - items.begin());
}

std::size_t Object::count(const Object& item) const {
    if (type_ != Type::list && type_ != Type::tuple) throw_no_attribute(*this, "count");
    const auto& items = body().items();
    return static_cast<std::size_t>(std::count(items.begin(), items.end(), item));
}

void Object::reverse() {
    if (type_ != Type::list) throw_no_attribute(*this, "reverse");
    auto& items = mutable_body().items();
    std::reverse(items.begin(), items.end());
}

void Object::sort(bool reverse_order) {
    if (type_ != Type::list) throw_no_attribute(*this, "sort");
    // Sorted on a copy, so that a TypeError halfway leaves the list as it was.
    std::vector<Object> sorted = body().items();
    if (reverse_order) std::reverse(sorted.begin(), sorted.end());  // keeps equal items in order
    std::stable_sort(sorted.begin(), sorted.end(), [](const Object& a, const Object& b) { return a < b; });
    if (reverse_order) std::reverse(sorted.begin(), sorted.end());
    mutable_body().items() = std::move(sorted);
}

void Object::clear() {
    switch (type_) {
        case Type::list:
            mutable_body().items().clear();
            return;
        case Type::dict:
            body_ = std::make_shared<ObjectBody>(DictTable{});
            return;
        case Type::set:
            body_ = std::make_shared<ObjectBody>(SetTable{});
            return;
        default:
            throw_no_attribute(*this, "clear");
    }
}

void Object::erase(const Object& index_or_key) {
    if (type_ == Type::dict) {
        const std::int64_t h = index_or_key.hash();
        const auto found = body().dict().find(index_or_key, h);
        if (!found) throw KeyError(repr(index_or_key));
        mutable_body().dict().erase_entry(*found);
        return;
    }
    if (type_ != Type::list) throw TypeError(std::string("'") + type_name() + "' object doesn't support item deletion");
    const std::size_t i = normalize_index(index_or_key, body().items().size(), "list", "assignment index");
    auto& items = mutable_body().items();
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
}

Object Object::get(const Object& key, Object default_value) const {
    if (type_ != Type::dict) throw_no_attribute(*this, "get");
    const auto found = body().dict().find(key, key.hash());
    return found ? body().dict().entries()[*found]->value : default_value;
}

Object& Object::setdefault(const Object& key, Object default_value) {
    if (type_ != Type::dict) throw_no_attribute(*this, "setdefault");
    const std::int64_t h = key.hash();
    return referenced_body().dict().insert(key, h, std::move(default_value));
}

void Object::update(const Object& other) {
    if (type_ != Type::dict) throw_no_attribute(*this, "update");
    if (other.type_ == Type::dict) {
        for (const auto& [k, v] : other.items()) (*this)[k] = v;
        return;
    }
    std::size_t n = 0;
    for (const Object& element : other) {
        if (element.type_ != Type::tuple && element.type_ != Type::list)
            throw TypeError("cannot convert dictionary update sequence element #" + std::to_string(n) +
                            " to a sequence");
        const auto pair = element.items_view();
        if (pair.size() != 2)
            throw ValueError("dictionary update sequence element #" + std::to_string(n) + " has length " +
                             std::to_string(pair.size()) + "; 2 is required");
        (*this)[pair[0]] = pair[1];
        ++n;
    }
}

std::pair<Object, Object> Object::popitem() {
    if (type_ != Type::dict) throw_no_attribute(*this, "popitem");
    if (body().dict().size() == 0) throw KeyError("'popitem(): dictionary is empty'");
    auto& d = mutable_body().dict();
    std::size_t last = d.entries().size();
    while (!d.entries()[--last]->live) {
    }
    auto& e = *d.entries()[last];
    std::pair<Object, Object> out{std::move(e.key), std::move(e.value)};
    d.erase_entry(last);
    return out;
}

std::vector<Object> Object::keys() const {
    if (type_ != Type::dict) throw_no_attribute(*this, "keys");
    std::vector<Object> out;
    out.reserve(body().dict().size());
    for (const auto& e : body().dict().entries())
        if (e->live) out.push_back(e->key);
    return out;
}

std::vector<Object> Object::values() const {
    if (type_ != Type::dict) throw_no_attribute(*this, "values");
    std::vector<Object> out;
    out.reserve(body().dict().size());
    for (const auto& e : body().dict().entries())
        if (e->live) out.push_back(e->value);
    return out;
}

std::vector<std::pair<Object, Object>> Object::items() const {
    if (type_ != Type::dict) throw_no_attribute(*this, "items");
    std::vector<std::pair<Object, Object>> out;
    out.reserve(body().dict().size());
    for (const auto& e : body().dict().entries())
        if (e->live) out.emplace_back(e->key, e->value);
    return out;
}

void Object::add(Object item) {
    if (type_ != Type::set) throw_no_attribute(*this, "add");
    const std::int64_t h = item.hash();
    mutable_body().set().add(std::move(item), h);
}

void Object::discard(const Object& item) {
    if (type_ != Type::set) throw_no_attribute(*this, "discard");
    const std::int64_t h = item.hash();
    if (body().set().contains(item, h)) mutable_body().set().discard(item, h);
}

// ---- hashing, equality, ordering ----------------------------------------------------------------

std::int64_t Object::hash() const {
    switch (type_) {
        case Type::none:
            return detail::kNoneHash;
        case Type::boolean:
            return scalar_.b ? 1 : 0;
        case Type::integer:
            return detail::python_int_hash(scalar_.i);
        case Type::floating:
            return detail::python_float_hash(scalar_.f);
        case Type::str:
            return detail::python_text_hash(body().text(), false);
        case Type::bytes:
            return detail::python_text_hash(body().bytes().view(), true);
        case Type::tuple:
            return detail::python_tuple_hash(body().items());
        case Type::instance: {
            const auto& in = body().instance();
            const Object key[] = {Object(in.module), Object(in.name), in.args};
            return detail::python_tuple_hash(key);
        }
        default:
            throw TypeError(std::string("unhashable type: '") + type_name() + "'");
    }
}

bool operator==(const Object& a, const Object& b) {
    if (is_numeric(a.type_) && is_numeric(b.type_)) return compare_numbers(a, b) == 0;
    if (a.type_ != b.type_) return false;
    if (a.type_ == Object::Type::none) return true;
    if (a.body_ == b.body_) return true;  // the same (shared) value
    switch (a.type_) {
        case Object::Type::str:
            return a.body().text() == b.body().text();
        case Object::Type::bytes:
            return a.body().bytes() == b.body().bytes();
        case Object::Type::tuple:
        case Object::Type::list:
            return a.body().items() == b.body().items();
        case Object::Type::dict: {
            const auto &x = a.body().dict(), &y = b.body().dict();
            if (x.size() != y.size()) return false;
            for (const auto& e : x.entries()) {
                if (!e->live) continue;
                const auto found = y.find(e->key, e->hash);
                if (!found || !(y.entries()[*found]->value == e->value)) return false;
            }
            return true;
        }
        case Object::Type::set: {
            const auto &x = a.body().set(), &y = b.body().set();
            return x.size() == y.size() && is_subset(x, y);
        }
        case Object::Type::instance: {
            const auto &x = a.body().instance(), &y = b.body().instance();
            return x.module == y.module && x.name == y.name && x.args == y.args;
        }
        default:
            return false;
    }
}

bool operator<(const Object& a, const Object& b) { return rich_compare(a, b, CompareOp::lt); }
bool operator<=(const Object& a, const Object& b) { return rich_compare(a, b, CompareOp::le); }
bool operator>(const Object& a, const Object& b) { return rich_compare(a, b, CompareOp::gt); }
bool operator>=(const Object& a, const Object& b) { return rich_compare(a, b, CompareOp::ge); }

// ---- iteration ----------------------------------------------------------------------------------

Object::Iterator Object::begin() const { return Iterator(this, 0); }

Object::Iterator Object::end() const {
    std::size_t n = 0;
    switch (type_) {
        case Type::str:
            n = body().text().size();
            break;
        case Type::bytes:
            n = body().bytes().size();
            break;
        case Type::tuple:
        case Type::list:
            n = body().items().size();
            break;
        case Type::dict:
            n = body().dict().entries().size();
            break;
        case Type::set:
            n = body().set().slots().size();
            break;
        default:
            throw TypeError(std::string("'") + type_name() + "' object is not iterable");
    }
    Iterator it;
    it.owner_ = this;
    it.position_ = n;
    return it;
}

Object::Iterator::Iterator(const Object* owner, std::size_t position) : owner_(owner), position_(position) {
    owner_->end();  // raises for what is not iterable
    skip_to_live();
}

void Object::Iterator::skip_to_live() {
    const ObjectBody& b = owner_->body();
    if (owner_->type_ == Type::dict) {
        const auto& entries = b.dict().entries();
        while (position_ < entries.size() && !entries[position_]->live) ++position_;
    } else if (owner_->type_ == Type::set) {
        const auto& slots = b.set().slots();
        while (position_ < slots.size() && slots[position_].state != SetTable::Slot::active) ++position_;
    }
}

const Object& Object::Iterator::operator*() const {
    const ObjectBody& b = owner_->body();
    switch (owner_->type_) {
        case Type::tuple:
        case Type::list:
            return b.items()[position_];
        case Type::dict:
            return b.dict().entries()[position_]->key;
        case Type::set:
            return b.set().slots()[position_].key;
        case Type::str:
            current_ = Object(std::string_view(b.text()).substr(position_, utf8_sequence_length(b.text(), position_)));
            return current_;
        default:
            current_ = Object(static_cast<unsigned char>(b.bytes().view()[position_]));
            return current_;
    }
}

Object::Iterator& Object::Iterator::operator++() {
    if (owner_->type_ == Type::str)
        position_ += utf8_sequence_length(owner_->body().text(), position_);
    else
        ++position_;
    skip_to_live();
    return *this;
}

}  // namespace polyproc
