// polyproc/object.hpp — mp::Object, a dynamic value with Python's data model: None, bool, int,
// float, str, bytes, tuple, list, dict and set. It holds the heterogeneous data a Python program
// keeps in one dict (seed 002's `d[1] = '1'; d['2'] = 2; d[0.25] = None`), is what a manager's
// server stores, and is what a pickle from a Python peer decodes to.
//
// What follows Python exactly:
//   - equality and hashing: 1 == 1.0 == True, so they are one dict key (the first one kept);
//     list, dict and set are unhashable (mp::TypeError "unhashable type: 'list'");
//   - ordering, with Python's TypeError for unorderable mixes ("'<' not supported between
//     instances of 'int' and 'str'"); list.sort() is stable;
//   - repr() and str() print what Python 3 prints, character for character, including float
//     digits, quotes and escapes. A set of ints, floats, bools and tuples of them iterates (and
//     prints) in CPython's order when built by the same adds and discards; a set holding str or
//     bytes cannot, as CPython's str hash changes with every run;
//   - dicts keep insertion order; their operations raise mp::KeyError (what() is the key's repr),
//     sequences mp::IndexError with Python's message.
// What is C++: an Object is a value. Copying it copies the value (lazily: containers are shared
// until one copy is changed), so there are no shared references and no cycles. An int is 64
// bits; a value beyond that is an mp::OverflowError, never a wrap. A str holds UTF-8, checked
// when it is made (mp::ValueError). The non-const operator[] of a dict inserts None for a
// missing key, as std::map does; the const one and at() raise mp::KeyError as Python does. A
// reference into a dict that operator[], at() or setdefault() returns stays valid while other
// keys come and go (d["x"] = d["y"] is safe), until its own key is removed; a reference into a
// list, as into a std::vector, until the list grows or shrinks.
//
// Conversions: an Object is made from None (mp::None, std::nullopt), bool, any integer, float
// and double, strings, mp::Bytes, std::vector / std::list / std::deque (a list), std::map /
// std::unordered_map (a dict), std::set / std::unordered_set (a set), std::pair / std::tuple (a
// tuple) and std::optional (the value or None), nested freely; as<T>() converts back, with an
// mp::TypeError naming what it holds on a wrong type and an mp::OverflowError for an integer that
// does not fit T. Specialize polyproc::ObjectConversion<T> to add a type of your own.
//
// Process-safety: an Object is a plain value; copies may be used from different threads, one
// Object from several threads only for reading. It crosses processes through the codec (it is
// mp::Serializable: queues, pipes and pools carry it) and, for Python peers, as a pickle
// (pickle_dumps / pickle_loads below).
//
//   mp::Object d = mp::Object::dict();
//   d[1] = "1"; d["2"] = 2; d[0.25] = mp::None;
//   std::cout << d << '\n';                               // {1: '1', '2': 2, 0.25: None}
//   auto l = mp::Object::list({1, "2", 3.0});
//   l.append(mp::Object::tuple({4, 5}));
//   int first = l[0].as<int>();                           // 1
//   std::string s = mp::repr(l);                          // [1, '2', 3.0, (4, 5)]
#pragma once

#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc {

// Python's None.
struct NoneType {
    friend constexpr bool operator==(NoneType, NoneType) noexcept { return true; }
};
inline constexpr NoneType None{};

// Python's bytes: a byte string that is not text.
class Bytes {
public:
    Bytes() = default;
    explicit Bytes(std::string_view bytes) : bytes_(bytes) {}
    explicit Bytes(std::span<const std::byte> bytes)
        : bytes_(reinterpret_cast<const char*>(bytes.data()), bytes.size()) {}
    Bytes(std::initializer_list<std::uint8_t> bytes) : bytes_(bytes.begin(), bytes.end()) {}

    std::string_view view() const noexcept { return bytes_; }
    const std::string& str() const noexcept { return bytes_; }
    std::size_t size() const noexcept { return bytes_.size(); }
    friend bool operator==(const Bytes&, const Bytes&) = default;
    friend auto operator<=>(const Bytes&, const Bytes&) = default;

private:
    std::string bytes_;
};

class Object;
namespace detail {
class ObjectBody;
}

// What an instance Object may carry besides its reduction, for the process that holds it (a
// manager proxy's reference; never pickled). Shared by the instance's copies.
class ObjectAttachment {
public:
    virtual ~ObjectAttachment() = default;
};

// Python's pickle.dumps(value, protocol=4) and pickle.loads(data): the bytes a Python peer reads
// and writes (Connection::send_bytes / recv_bytes carry them). pickle_dumps frames as CPython
// does, so small values match Python's bytes exactly. pickle_loads reads protocols 2 to 5 holding
// the types above (a frozenset reads as a set, a bytearray as bytes, a range as a list of up to
// 10 million ints); anything else, a truncated
// or malformed pickle, an int beyond 64 bits or values nested deeper than 1000 levels is an
// mp::UnpicklingError saying what was found and at which byte.
std::string pickle_dumps(const Object& value);
Object pickle_loads(std::string_view data);
Object pickle_loads(std::span<const std::byte> data);

namespace detail {
template <class T, template <class...> class Template>
inline constexpr bool is_specialization_of = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_specialization_of<Template<Args...>, Template> = true;
// The types whose conversions are the ones above (or a proxy's, which says so with a member).
template <class T>
inline constexpr bool has_builtin_conversion =
    std::is_arithmetic_v<T> || std::is_same_v<T, std::string> || std::is_same_v<T, Bytes> ||
    std::is_same_v<T, Object> || std::is_same_v<T, NoneType> || std::is_same_v<T, std::nullopt_t> ||
    std::is_convertible_v<const T&, std::string_view> || is_specialization_of<T, std::optional> ||
    is_specialization_of<T, std::vector> || is_specialization_of<T, std::list> || is_specialization_of<T, std::deque> ||
    is_specialization_of<T, std::map> || is_specialization_of<T, std::unordered_map> ||
    is_specialization_of<T, std::set> || is_specialization_of<T, std::unordered_set> ||
    is_specialization_of<T, std::tuple> || is_specialization_of<T, std::pair> ||
    requires { typename T::polyproc_object_conversion; };
}  // namespace detail

// How a C++ type becomes an Object and back: specialize with
//   static Object to_object(const T&);   static T from_object(const Object&);
template <class T, class Enable = void>
struct ObjectConversion;

// A type that converts to and from Object.
template <class T>
concept ObjectConvertible = requires(const T& value, const Object& object) {
    { ObjectConversion<std::remove_cvref_t<T>>::to_object(value) } -> std::same_as<Object>;
    { ObjectConversion<std::remove_cvref_t<T>>::from_object(object) } -> std::same_as<std::remove_cvref_t<T>>;
};

class Object {
public:
    // Python's types, in the order their names appear in docs/object.md.
    // `instance` is an object of a class mp::Object does not model, carried as Python's reduction
    // of it, module.name(*args) (polyproc's own: a manager proxy held in a managed container).
    enum class Type : std::uint8_t { none, boolean, integer, floating, str, bytes, tuple, list, dict, set, instance };

    // User-provided rather than defaulted: clang needs it so for the default arguments below
    // (Object default_value = {}) that use it inside the class.
    Object() noexcept {}  // None
    Object(NoneType) noexcept {}
    Object(std::nullopt_t) noexcept {}
    Object(bool b) noexcept : type_(Type::boolean) { scalar_.b = b; }
    template <std::integral I>
        requires(!std::same_as<I, bool> && !std::same_as<I, char>)
    Object(I i) : type_(Type::integer) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t))
            if (i > static_cast<I>(std::numeric_limits<std::int64_t>::max())) throw_int_overflow(i);
        scalar_.i = static_cast<std::int64_t>(i);
    }
    Object(double f) noexcept : type_(Type::floating) { scalar_.f = f; }
    Object(float f) noexcept : Object(static_cast<double>(f)) {}
    Object(const char* text) : Object(std::string_view(text)) {}
    Object(std::string_view text);
    Object(const std::string& text) : Object(std::string_view(text)) {}
    Object(std::string&& text);
    Object(Bytes bytes);
    // Any other convertible type: containers, tuples, optionals, proxies, user types. A type held
    // as an opaque polyproc.Native (any other Serializable one) converts only explicitly,
    // Object(point), so that it never slips into an overload meant for Objects (operator<<).
    template <class T>
        requires(!std::same_as<std::remove_cvref_t<T>, Object> && !std::is_arithmetic_v<T> &&
                 !std::is_convertible_v<T, std::string_view> && !std::same_as<T, Bytes> && !std::same_as<T, NoneType> &&
                 !std::same_as<T, std::nullopt_t> && ObjectConvertible<T>)
    explicit(requires { typename ObjectConversion<std::remove_cvref_t<T>>::opaque_native; }) Object(const T& value)
        : Object(ObjectConversion<std::remove_cvref_t<T>>::to_object(value)) {}

    Object(const Object& other);
    Object(Object&&) noexcept = default;
    Object& operator=(const Object& other);
    Object& operator=(Object&&) noexcept = default;
    ~Object() = default;

    // Containers, as Python's literals make them.
    static Object tuple(std::initializer_list<Object> items = {});
    static Object tuple(std::vector<Object> items);
    static Object list(std::initializer_list<Object> items = {});
    static Object list(std::vector<Object> items);
    static Object dict(std::initializer_list<std::pair<Object, Object>> items = {});
    static Object dict(std::vector<std::pair<Object, Object>> items);
    static Object set(std::initializer_list<Object> items = {});
    static Object set(std::vector<Object> items);
    // An object of class module.name, pickled as module.name(*args) (args: a tuple). Equal to an
    // instance of the same class with equal args, and hashed as its args are.
    static Object instance(std::string module, std::string name, Object args,
                           std::shared_ptr<const ObjectAttachment> attachment = {});

    Type type() const noexcept { return type_; }
    const char* type_name() const noexcept;  // Python's: "NoneType", "int", "dict", ...
    bool is_none() const noexcept { return type_ == Type::none; }

    // True when the Object holds exactly that Python type: is<std::int64_t>() (any integer type
    // works) is true for int but not for bool, is<double>() for float, is<std::string>() for str,
    // is<Bytes>(), is<bool>(), is<NoneType>().
    template <class T>
    bool is() const noexcept;

    // The value as T; mp::TypeError names what the Object holds when it is not a T.
    template <class T>
    T as() const {
        return ObjectConversion<std::remove_cvref_t<T>>::from_object(*this);
    }

    // Scalars without conversion; mp::TypeError on a wrong type. as_int() accepts bool (Python's
    // bool is an int); as_float() accepts int and bool.
    bool as_bool() const;
    std::int64_t as_int() const;
    double as_float() const;
    const std::string& as_str() const;  // str only
    const Bytes& as_bytes() const;
    bool truthy() const noexcept;  // Python's bool(x)

    // The container operations Python has. A method called on a type that has no such method
    // raises mp::AttributeError ("'int' object has no attribute 'append'").
    std::size_t size() const;                       // len(); str counts code points
    bool contains(const Object& item) const;        // `item in x`: dict keys, set, sequences, substrings
    const Object& operator[](const Object& key_or_index) const;  // x[i], d[k]
    Object& operator[](const Object& key_or_index);              // inserts None for a missing dict key
    const Object& at(const Object& key_or_index) const;          // never inserts
    Object& at(const Object& key_or_index);

    // list
    void append(Object item);
    void extend(const Object& iterable);
    void insert(std::int64_t index, Object item);
    Object pop();                                   // list: the last item; set: an arbitrary one
    Object pop(const Object& index_or_key);         // list: pop(i); dict: pop(k) (mp::KeyError)
    Object pop(const Object& key, Object default_value);  // dict.pop(k, default)
    void remove(const Object& item);                // list (mp::ValueError), set (mp::KeyError)
    std::size_t index(const Object& item) const;    // first position; mp::ValueError when absent
    std::size_t count(const Object& item) const;
    void reverse();
    void sort(bool reverse = false);                // mp::TypeError when items do not order
    void clear();                                   // list, dict, set
    void erase(const Object& index_or_key);         // `del x[i]`, `del d[k]`

    // dict
    Object get(const Object& key, Object default_value = {}) const;
    Object& setdefault(const Object& key, Object default_value = {});
    void update(const Object& other);               // a dict, or an iterable of pairs
    std::pair<Object, Object> popitem();            // the last inserted; mp::KeyError when empty
    std::vector<Object> keys() const;
    std::vector<Object> values() const;
    std::vector<std::pair<Object, Object>> items() const;

    // set
    void add(Object item);
    void discard(const Object& item);

    // Iteration yields what Python's iter() does: items of a tuple, list or set, keys of a dict,
    // one-character strings of a str, ints of a bytes. Changing a container while iterating it
    // is undefined (Python raises; a C++ iterator cannot check it cheaply).
    class Iterator;
    Iterator begin() const;
    Iterator end() const;

    // Python's hash(); mp::TypeError for list, dict and set.
    std::int64_t hash() const;

    friend bool operator==(const Object& a, const Object& b);
    // Python's <, <=, >, >= (for sets: the subset order); mp::TypeError for unorderable mixes.
    friend bool operator<(const Object& a, const Object& b);
    friend bool operator<=(const Object& a, const Object& b);
    friend bool operator>(const Object& a, const Object& b);
    friend bool operator>=(const Object& a, const Object& b);

    // An instance's class and arguments, and what it carries; mp::TypeError for other types.
    const std::string& instance_module() const;
    const std::string& instance_name() const;
    const Object& instance_args() const;
    const std::shared_ptr<const ObjectAttachment>& instance_attachment() const;
    // An instance of class module.name (false for every other type).
    bool is_instance_of(std::string_view module, std::string_view name) const noexcept;

    // The elements of a tuple or list, without copying them; mp::TypeError for other types.
    std::span<const Object> items_view() const;

    // cereal: an Object travels through polyproc's codec as its pickle, so that one format
    // carries it everywhere (queues, pipes, pools, managers).
    template <class Archive>
    void save(Archive& archive) const {
        archive(pickle_dumps(*this));
    }
    template <class Archive>
    void load(Archive& archive) {
        std::string bytes;
        archive(bytes);
        *this = pickle_loads(std::string_view(bytes));
    }

private:
    friend class detail::ObjectBody;
    template <class I>
    [[noreturn]] static void throw_int_overflow(I value) {
        throw_int_overflow_text(std::to_string(value));
    }
    [[noreturn]] static void throw_int_overflow_text(const std::string& digits);
    const detail::ObjectBody& body() const;
    detail::ObjectBody& mutable_body();     // unshares the container first
    detail::ObjectBody& referenced_body();  // the same, for handing out a reference into it
    bool is_type(Type t) const noexcept { return type_ == t; }

    Type type_ = Type::none;
    union {
        bool b;
        std::int64_t i;
        double f;
    } scalar_{};
    std::shared_ptr<detail::ObjectBody> body_;  // str, bytes and the containers; shared until written
};

// Python's repr(x) and str(x); operator<< writes str(x), as print() does.
std::string repr(const Object& value);
std::string str(const Object& value);
std::ostream& operator<<(std::ostream& out, const Object& value);

class Object::Iterator {
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Object;
    using difference_type = std::ptrdiff_t;
    using pointer = const Object*;
    using reference = const Object&;

    Iterator() = default;
    reference operator*() const;
    pointer operator->() const { return &**this; }
    Iterator& operator++();
    Iterator operator++(int) {
        Iterator before = *this;
        ++*this;
        return before;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) noexcept { return a.position_ == b.position_; }

private:
    friend class Object;
    Iterator(const Object* owner, std::size_t position);
    void skip_to_live();
    const Object* owner_ = nullptr;
    std::size_t position_ = 0;
    mutable Object current_;  // a str's or bytes' element is made on the fly
};

// ---- is<T>() ------------------------------------------------------------------------------------

template <class T>
bool Object::is() const noexcept {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::same_as<U, NoneType>)
        return type_ == Type::none;
    else if constexpr (std::same_as<U, bool>)
        return type_ == Type::boolean;
    else if constexpr (std::integral<U>)
        return type_ == Type::integer;
    else if constexpr (std::floating_point<U>)
        return type_ == Type::floating;
    else if constexpr (std::same_as<U, std::string> || std::same_as<U, std::string_view>)
        return type_ == Type::str;
    else if constexpr (std::same_as<U, Bytes>)
        return type_ == Type::bytes;
    else
        static_assert(sizeof(U) == 0,
                      "Object::is<T>: T must be NoneType, bool, an integer, a floating "
                      "point type, std::string or mp::Bytes; use type() for containers");
}

// ---- conversions --------------------------------------------------------------------------------

namespace detail {
[[noreturn]] void throw_object_type_error(const Object& got, const char* wanted);
[[noreturn]] void throw_object_length_error(const Object& got, std::size_t wanted);
[[noreturn]] void throw_int_does_not_fit(std::int64_t value, const char* type);

template <class T>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

template <class Seq>
Object sequence_to_list(const Seq& items) {
    std::vector<Object> out;
    out.reserve(items.size());
    for (const auto& item : items) out.emplace_back(item);
    return Object::list(std::move(out));
}
// A list or tuple (what Python would accept as a sequence here).
inline std::span<const Object> sequence_of(const Object& object, const char* wanted) {
    if (object.type() != Object::Type::list && object.type() != Object::Type::tuple)
        throw_object_type_error(object, wanted);
    return object.items_view();
}
}  // namespace detail

template <>
struct ObjectConversion<Object> {
    static Object to_object(const Object& o) { return o; }
    static Object from_object(const Object& o) { return o; }
};
template <>
struct ObjectConversion<NoneType> {
    static Object to_object(NoneType) { return {}; }
    static NoneType from_object(const Object& o) {
        if (!o.is_none()) detail::throw_object_type_error(o, "None");
        return None;
    }
};
template <>
struct ObjectConversion<bool> {
    static Object to_object(bool b) { return Object(b); }
    static bool from_object(const Object& o) { return o.as_bool(); }
};
template <std::integral I>
    requires(!std::same_as<I, bool> && !std::same_as<I, char>)
struct ObjectConversion<I> {
    static Object to_object(I i) { return Object(i); }
    static I from_object(const Object& o) {
        const std::int64_t v = o.as_int();
        if constexpr (std::is_unsigned_v<I>) {
            if (v < 0 || static_cast<std::uint64_t>(v) > std::numeric_limits<I>::max())
                detail::throw_int_does_not_fit(v, "an unsigned integer of this size");
        } else {
            if (v < std::numeric_limits<I>::min() || v > std::numeric_limits<I>::max())
                detail::throw_int_does_not_fit(v, "an integer of this size");
        }
        return static_cast<I>(v);
    }
};
template <std::floating_point F>
struct ObjectConversion<F> {
    static Object to_object(F f) { return Object(static_cast<double>(f)); }
    static F from_object(const Object& o) { return static_cast<F>(o.as_float()); }
};
template <>
struct ObjectConversion<std::string> {
    static Object to_object(const std::string& s) { return Object(s); }
    static std::string from_object(const Object& o) { return o.as_str(); }
};
template <>
struct ObjectConversion<Bytes> {
    static Object to_object(const Bytes& b) { return Object(b); }
    static Bytes from_object(const Object& o) { return o.as_bytes(); }
};
template <ObjectConvertible T>
struct ObjectConversion<std::optional<T>> {
    static Object to_object(const std::optional<T>& v) { return v ? Object(*v) : Object(); }
    static std::optional<T> from_object(const Object& o) {
        if (o.is_none()) return std::nullopt;
        return o.as<T>();
    }
};
// Sequences: made as a list; read back from a list or a tuple.
template <class Seq>
    requires(std::same_as<Seq, std::vector<typename Seq::value_type>> ||
             std::same_as<Seq, std::list<typename Seq::value_type>> ||
             std::same_as<Seq, std::deque<typename Seq::value_type>>) &&
            ObjectConvertible<typename Seq::value_type> && (!std::same_as<typename Seq::value_type, std::byte>)
struct ObjectConversion<Seq> {
    static Object to_object(const Seq& items) { return detail::sequence_to_list(items); }
    static Seq from_object(const Object& o) {
        Seq out;
        for (const Object& item : detail::sequence_of(o, "a list")) out.push_back(item.as<typename Seq::value_type>());
        return out;
    }
};
template <class Map>
    requires(std::same_as<Map, std::map<typename Map::key_type, typename Map::mapped_type>> ||
             std::same_as<Map, std::unordered_map<typename Map::key_type, typename Map::mapped_type>>) &&
            ObjectConvertible<typename Map::key_type> && ObjectConvertible<typename Map::mapped_type>
struct ObjectConversion<Map> {
    static Object to_object(const Map& map) {
        std::vector<std::pair<Object, Object>> items;
        items.reserve(map.size());
        for (const auto& [k, v] : map) items.emplace_back(Object(k), Object(v));
        return Object::dict(std::move(items));
    }
    static Map from_object(const Object& o) {
        if (o.type() != Object::Type::dict) detail::throw_object_type_error(o, "a dict");
        Map out;
        for (const auto& [k, v] : o.items())
            out.emplace(k.template as<typename Map::key_type>(), v.template as<typename Map::mapped_type>());
        return out;
    }
};
template <class Set>
    requires(std::same_as<Set, std::set<typename Set::key_type>> ||
             std::same_as<Set, std::unordered_set<typename Set::key_type>>) &&
            ObjectConvertible<typename Set::key_type>
struct ObjectConversion<Set> {
    static Object to_object(const Set& set) {
        std::vector<Object> items(set.begin(), set.end());
        return Object::set(std::move(items));
    }
    static Set from_object(const Object& o) {
        if (o.type() != Object::Type::set) detail::throw_object_type_error(o, "a set");
        Set out;
        for (const Object& item : o) out.insert(item.as<typename Set::key_type>());
        return out;
    }
};
// Pairs and tuples: made as a tuple; read back from a tuple or a list of the same length.
template <class... Ts>
    requires(ObjectConvertible<Ts> && ...)
struct ObjectConversion<std::tuple<Ts...>> {
    static Object to_object(const std::tuple<Ts...>& t) {
        return std::apply([](const auto&... x) { return Object::tuple(std::vector<Object>{Object(x)...}); }, t);
    }
    static std::tuple<Ts...> from_object(const Object& o) {
        const auto items = detail::sequence_of(o, "a tuple");
        if (items.size() != sizeof...(Ts)) detail::throw_object_length_error(o, sizeof...(Ts));
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return std::tuple<Ts...>(items[I].template as<Ts>()...);
        }(std::index_sequence_for<Ts...>{});
    }
};
template <class A, class B>
    requires ObjectConvertible<A> && ObjectConvertible<B>
struct ObjectConversion<std::pair<A, B>> {
    static Object to_object(const std::pair<A, B>& p) { return Object::tuple({Object(p.first), Object(p.second)}); }
    static std::pair<A, B> from_object(const Object& o) {
        auto [a, b] = ObjectConversion<std::tuple<A, B>>::from_object(o);
        return {std::move(a), std::move(b)};
    }
};

// Any other mp::Serializable type (a struct with a cereal serialize(), a trivially copyable
// one): an opaque instance polyproc.Native(type name, codec bytes). A typed managed container
// (manager.dict<std::string, Point>()) holds these; only this program reads them back (a
// Python peer sees the instance and cannot load it), and reading one as another type is an
// mp::DecodeError naming both.
namespace detail {
Object native_object(std::string_view type_name, std::vector<std::byte> bytes);
std::span<const std::byte> native_bytes(const Object& o, std::string_view wanted_type_name);
}  // namespace detail
template <class T>
    requires(!detail::has_builtin_conversion<T> && Serializable<T>)
struct ObjectConversion<T> {
    using opaque_native = void;  // converts only explicitly (Object's constructor)
    static Object to_object(const T& value) { return detail::native_object(detail::type_name<T>(), dumps(value)); }
    static T from_object(const Object& o) { return loads<T>(detail::native_bytes(o, detail::type_name<T>())); }
};

}  // namespace polyproc

template <>
struct std::hash<polyproc::Object> {
    std::size_t operator()(const polyproc::Object& o) const { return static_cast<std::size_t>(o.hash()); }
};
