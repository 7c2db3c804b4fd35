// polyproc/managers.hpp — Python's multiprocessing.managers: a server process that holds objects,
// and proxies through which any process uses them.
//
//   auto manager = mp::Manager();              // a started SyncManager; shut down when it goes
//   auto d = manager.dict();                   // DictProxy<Object, Object>
//   auto l = manager.list(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
//   mp::Process p([d, l]() mutable { d[1] = "1"; d["2"] = 2; d[0.25] = mp::None; l.reverse(); });
//   p.start(); p.join();
//   std::cout << d << '\n' << l << '\n';      // {1: '1', '2': 2, 0.25: None}
//                                              // [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//
// What there is (issue #14): BaseManager (start, connect, shutdown, join, address, RAII, and
// register_ for user classes: see "register" below), SyncManager with dict, list, Namespace,
// Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier, Queue, JoinableQueue, Value,
// Array, set (Python 3.14's) and Pool, and proxies for them; on an AF_UNIX path or TCP (issue
// #15: remote managers, mp::InetAddress{host, port}, register_shared for the tutorial's
// register('get_task_queue', callable=lambda: q)). The server speaks CPython's protocol (pickled
// request and reply tuples over an authenticated connection), so either end may be Python's; its values are
// mp::Object values; a proxy stored in a managed container stays live (a proxy is an Object too),
// and typed containers hold any mp::Serializable type.
//
// Process-safety: proxies are cheap copyable handles to one server object; copies may be used
// from any thread and any process. They reach children by capture (fork) or as Process and Pool
// arguments (every start method; they are mp::Serializable). Each thread of each process talks
// to the server on a connection of its own, and the server serves each in a thread of its own.
// A server object lives while any proxy anywhere refers to it; a process that dies (even by
// SIGKILL) drops its references when its connections close. The server process dies with the
// process that started it. A call on a proxy whose server is gone raises mp::ProcessError naming
// the manager's address; it never hangs.
//
// Errors come back as their own types: a missing key is mp::KeyError, a bad index
// mp::IndexError, a missing Namespace attribute mp::AttributeError, a wrong argument
// mp::TypeError; what the server could not even run is mp::RemoteError.
#pragma once

#include <chrono>
#include <deque>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyproc/connection.hpp"
#include "polyproc/detail/manager_pool.hpp"
#include "polyproc/detail/manager_register.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/object.hpp"

namespace polyproc {

namespace detail::manager {
// One reference this process holds to a server object (shared by the copies of a proxy);
// releasing the last one in a process tells the server. Defined in src/manager_client.cpp.
class ProxyRef;
std::shared_ptr<ProxyRef> adopt(const Address& address, const std::string& authkey, const std::string& ident,
                                const std::string& type_id);
Object call_method(const ProxyRef& ref, const std::string& method, const Object& args, const Object& kwds);
// A method whose result stays in the server (a '#PROXY' reply): a reference to the new object.
std::shared_ptr<ProxyRef> call_method_for_proxy(const ProxyRef& ref, const std::string& method, const Object& args,
                                                const Object& kwds);
// An Iterator's __next__: its item, or nothing once it raised StopIteration.
std::optional<Object> call_next(const ProxyRef& ref);
const std::string& ref_ident(const ProxyRef& ref);
const std::string& ref_type_id(const ProxyRef& ref);
const Address& ref_address(const ProxyRef& ref);
const std::string& ref_authkey(const ProxyRef& ref);
struct ManagerState;
class Server;
}  // namespace detail::manager

class BaseProxy;
namespace detail::manager {
// A proxy as an mp::Object (an instance polyproc.Proxy(typeid, address, ident) that keeps this
// process's reference while it exists), and back (mp::TypeError for anything else).
Object proxy_to_object(const BaseProxy& proxy);
BaseProxy proxy_from_object(const Object& object);
}  // namespace detail::manager

// Python's BaseProxy: a reference to one object in a manager's server.
class BaseProxy {
public:
    using polyproc_object_conversion = void;  // an mp::Object as a proxy (below), not as a Native
    BaseProxy() = default;  // refers to nothing; what decoding starts from

    bool valid() const noexcept { return ref_ != nullptr; }
    const std::string& ident() const;    // the server's id of the object
    const std::string& type_id() const;  // "dict", "list", "Namespace"
    const Address& address() const;      // the manager's

    // Python's _callmethod(name, args, kwds): the referent's method, run in the server.
    Object _callmethod(const std::string& method, const Object& args = Object::tuple(),
                       const Object& kwds = Object::dict()) const;
    // Python's _getvalue(): a copy of the referent.
    Object _getvalue() const { return _callmethod("#GETVALUE"); }
    // _callmethod for a method whose result the server keeps (Python's method_to_typeid): a proxy
    // to the new object.
    BaseProxy _callmethod_for_proxy(const std::string& method, const Object& args = Object::tuple(),
                                    const Object& kwds = Object::dict()) const;

    // str(proxy) is str() of the referent, as in Python.
    friend std::ostream& operator<<(std::ostream& out, const BaseProxy& proxy);

    // A proxy travels (to a spawned child, through a queue) as the manager's address, the
    // object's id and type; the receiving process takes a reference of its own. The authkey
    // travels only when it is not the sending process's own (Python never sends it outside a
    // spawn; polyproc's codec only carries values between processes of the same program).
    template <class Archive>
    void save(Archive& archive) const {
        const auto& [kind, where, port] = address_parts();
        archive(kind, where, port, ident(), type_id(), authkey_to_send());
    }
    template <class Archive>
    void load(Archive& archive) {
        int kind = 0;
        std::string where, ident, type_id, authkey;
        std::uint16_t port = 0;
        archive(kind, where, port, ident, type_id, authkey);
        adopt_from(kind, where, port, ident, type_id, authkey);
    }

protected:
    explicit BaseProxy(std::shared_ptr<detail::manager::ProxyRef> ref) : ref_(std::move(ref)) {}
    std::shared_ptr<detail::manager::ProxyRef> ref_;

private:
    friend Object detail::manager::proxy_to_object(const BaseProxy& proxy);
    friend BaseProxy detail::manager::proxy_from_object(const Object& object);
    std::tuple<int, std::string, std::uint16_t> address_parts() const;
    std::string authkey_to_send() const;
    void adopt_from(int kind, const std::string& where, std::uint16_t port, const std::string& ident,
                    const std::string& type_id, const std::string& authkey);
    friend class BaseManager;
};

// A proxy is an mp::Object value too, so that it can be stored in a managed container and stay
// live: `d["inner"] = manager.list()` stores a reference to the list, which lives while the dict
// holds it; `d["inner"].value().as<mp::ListProxy<>>()` (or ListProxy<>(d.at("inner")) through
// as<>) is a proxy to that same list, in any process.
template <class P>
    requires std::derived_from<P, BaseProxy>
struct ObjectConversion<P> {
    static Object to_object(const P& proxy) { return detail::manager::proxy_to_object(proxy); }
    static P from_object(const Object& object) {
        if constexpr (std::is_same_v<P, BaseProxy>)
            return detail::manager::proxy_from_object(object);
        else
            return P(detail::manager::proxy_from_object(object));
    }
};

namespace detail::manager {
// A range-for over a proxy whose next() gives its items one by one (empty at the end): an
// IteratorProxy, an IMapIteratorProxy.
template <class Proxy, class T>
struct NextIterator {
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    const Proxy* proxy = nullptr;
    std::optional<T> current;
    const T& operator*() const { return *current; }
    NextIterator& operator++() {
        current = proxy->next();
        return *this;
    }
    friend bool operator==(const NextIterator& a, const NextIterator& b) { return !a.current && !b.current; }
};

// A copy of a container's keys or items that a range-for walks.
template <class T>
struct Snapshot {
    struct Iterator {
        using iterator_category = std::input_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = const T*;
        using reference = const T&;
        std::shared_ptr<std::vector<T>> items;
        std::size_t at = 0;
        const T& operator*() const { return (*items)[at]; }
        Iterator& operator++() {
            ++at;
            return *this;
        }
        friend bool operator==(const Iterator& a, const Iterator& b) {
            const bool a_end = !a.items || a.at >= a.items->size();
            const bool b_end = !b.items || b.at >= b.items->size();
            return a_end && b_end ? true : (!a_end && !b_end && a.items == b.items && a.at == b.at);
        }
    };
    explicit Snapshot(std::vector<T> v) : items(std::make_shared<std::vector<T>>(std::move(v))) {}
    Iterator begin() const { return Iterator{items, 0}; }
    std::shared_ptr<std::vector<T>> items;
};
}  // namespace detail::manager

// Python's DictProxy. K and V are mp::Object by default; a typed proxy converts at this end (the
// server holds Objects), so a Python peer sees the same dict.
template <class K = Object, class V = Object>
class DictProxy : public BaseProxy {
public:
    DictProxy() = default;
    explicit DictProxy(BaseProxy base) : BaseProxy(std::move(base)) {}

    // d[k] = v writes through; reading it (V v = d[k]) raises mp::KeyError for a missing key.
    class Item {
    public:
        Item(const Item&) = default;
        Item& operator=(const V& value) {
            dict_->set(key_, value);
            return *this;
        }
        Item& operator=(const Item& other) { return *this = other.value(); }  // d["x"] = d["y"]
        operator V() const { return dict_->at(key_); }
        V value() const { return dict_->at(key_); }

    private:
        friend class DictProxy;
        Item(const DictProxy* dict, K key) : dict_(dict), key_(std::move(key)) {}
        const DictProxy* dict_;
        K key_;
    };
    Item operator[](const K& key) const { return Item(this, key); }

    V at(const K& key) const { return _callmethod("__getitem__", Object::tuple({Object(key)})).template as<V>(); }
    void set(const K& key, const V& value) const {
        _callmethod("__setitem__", Object::tuple({Object(key), Object(value)}));
    }
    V get(const K& key, const V& default_value = V()) const {
        return _callmethod("get", Object::tuple({Object(key), Object(default_value)})).template as<V>();
    }
    V setdefault(const K& key, const V& default_value = V()) const {
        return _callmethod("setdefault", Object::tuple({Object(key), Object(default_value)})).template as<V>();
    }
    V pop(const K& key) const { return _callmethod("pop", Object::tuple({Object(key)})).template as<V>(); }
    V pop(const K& key, const V& default_value) const {
        return _callmethod("pop", Object::tuple({Object(key), Object(default_value)})).template as<V>();
    }
    std::pair<K, V> popitem() const { return _callmethod("popitem").template as<std::pair<K, V>>(); }
    void update(const Object& other) const { _callmethod("update", Object::tuple({other})); }
    bool contains(const K& key) const { return _callmethod("__contains__", Object::tuple({Object(key)})).as_bool(); }
    std::size_t size() const { return static_cast<std::size_t>(_callmethod("__len__").as_int()); }
    void erase(const K& key) const { _callmethod("__delitem__", Object::tuple({Object(key)})); }
    void clear() const { _callmethod("clear"); }
    std::vector<K> keys() const { return _callmethod("keys").template as<std::vector<K>>(); }
    std::vector<V> values() const { return _callmethod("values").template as<std::vector<V>>(); }
    std::vector<std::pair<K, V>> items() const {
        return _callmethod("items").template as<std::vector<std::pair<K, V>>>();
    }
    Object copy() const { return _callmethod("copy"); }  // a local dict
    // Python 3.14's d | other (a local dict) and d |= other (in the server).
    Object operator|(const Object& other) const { return _callmethod("__or__", Object::tuple({other})); }
    const DictProxy& operator|=(const Object& other) const {
        _callmethod("__ior__", Object::tuple({other}));
        return *this;
    }

    // Iterates over a snapshot of the keys (Python's iter(d) raises if the dict changes meanwhile).
    auto begin() const { return detail::manager::Snapshot<K>(keys()).begin(); }
    auto end() const { return typename detail::manager::Snapshot<K>::Iterator(); }
};

// Python's ListProxy.
template <class T = Object>
class ListProxy : public BaseProxy {
public:
    ListProxy() = default;
    explicit ListProxy(BaseProxy base) : BaseProxy(std::move(base)) {}

    // l[i] = v writes through; reading it raises mp::IndexError out of range. Negative i counts
    // from the end, as in Python.
    class Item {
    public:
        Item(const Item&) = default;
        Item& operator=(const T& value) {
            list_->set(index_, value);
            return *this;
        }
        Item& operator=(const Item& other) { return *this = other.value(); }  // l[0] = l[1]
        operator T() const { return list_->at(index_); }
        T value() const { return list_->at(index_); }

    private:
        friend class ListProxy;
        Item(const ListProxy* list, std::int64_t index) : list_(list), index_(index) {}
        const ListProxy* list_;
        std::int64_t index_;
    };
    Item operator[](std::int64_t index) const { return Item(this, index); }

    T at(std::int64_t index) const { return _callmethod("__getitem__", Object::tuple({index})).template as<T>(); }
    void set(std::int64_t index, const T& value) const {
        _callmethod("__setitem__", Object::tuple({index, Object(value)}));
    }
    void append(const T& value) const { _callmethod("append", Object::tuple({Object(value)})); }
    void extend(const std::vector<T>& values) const { _callmethod("extend", Object::tuple({Object(values)})); }
    void insert(std::int64_t index, const T& value) const {
        _callmethod("insert", Object::tuple({index, Object(value)}));
    }
    T pop() const { return _callmethod("pop").template as<T>(); }
    T pop(std::int64_t index) const { return _callmethod("pop", Object::tuple({index})).template as<T>(); }
    void remove(const T& value) const { _callmethod("remove", Object::tuple({Object(value)})); }
    std::size_t index(const T& value) const {
        return static_cast<std::size_t>(_callmethod("index", Object::tuple({Object(value)})).as_int());
    }
    std::size_t count(const T& value) const {
        return static_cast<std::size_t>(_callmethod("count", Object::tuple({Object(value)})).as_int());
    }
    bool contains(const T& value) const {
        return _callmethod("__contains__", Object::tuple({Object(value)})).as_bool();
    }
    void reverse() const { _callmethod("reverse"); }
    void sort(bool reverse = false) const {
        _callmethod("sort", Object::tuple(), Object::dict({{"reverse", reverse}}));
    }
    void erase(std::int64_t index) const { _callmethod("__delitem__", Object::tuple({index})); }
    void clear() const { _callmethod("clear"); }
    std::size_t size() const { return static_cast<std::size_t>(_callmethod("__len__").as_int()); }
    Object copy() const { return _callmethod("copy"); }  // a local list
    std::vector<T> values() const { return copy().template as<std::vector<T>>(); }

    // Iterates over a snapshot of the items (Python's iteration calls __getitem__ until
    // IndexError, so it sees changes made meanwhile; a snapshot costs one call, not one per item).
    auto begin() const { return detail::manager::Snapshot<T>(values()).begin(); }
    auto end() const { return typename detail::manager::Snapshot<T>::Iterator(); }
};

// Python's NamespaceProxy: named attributes.
class NamespaceProxy : public BaseProxy {
public:
    NamespaceProxy() = default;
    explicit NamespaceProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    void set(const std::string& name, const Object& value) const {
        _callmethod("__setattr__", Object::tuple({Object(name), value}));
    }
    template <class T = Object>
    T get(const std::string& name) const {  // mp::AttributeError when it has no such attribute
        return _callmethod("__getattribute__", Object::tuple({Object(name)})).template as<T>();
    }
    void erase(const std::string& name) const { _callmethod("__delattr__", Object::tuple({Object(name)})); }
};

// Python 3.14's SetProxy.
template <class T = Object>
class SetProxy : public BaseProxy {
public:
    SetProxy() = default;
    explicit SetProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    void add(const T& item) const { _callmethod("add", Object::tuple({Object(item)})); }
    void discard(const T& item) const { _callmethod("discard", Object::tuple({Object(item)})); }
    void remove(const T& item) const { _callmethod("remove", Object::tuple({Object(item)})); }  // mp::KeyError
    T pop() const { return _callmethod("pop").template as<T>(); }  // mp::KeyError when empty
    bool contains(const T& item) const { return _callmethod("__contains__", Object::tuple({Object(item)})).as_bool(); }
    std::size_t size() const { return static_cast<std::size_t>(_callmethod("__len__").as_int()); }
    void update(const std::vector<T>& items) const { _callmethod("update", Object::tuple({Object(items)})); }
    void clear() const { _callmethod("clear"); }
    Object copy() const { return _callmethod("copy"); }  // a local set
    std::vector<T> values() const {
        std::vector<T> out;
        for (const Object& item : copy()) out.push_back(item.template as<T>());
        return out;
    }
};

namespace detail::manager {
// The array/ctypes typecode of T, as Python's Value and Array take it ("O" when there is none).
template <class T>
constexpr const char* typecode_for() {
    if constexpr (std::is_same_v<T, double>)
        return "d";
    else if constexpr (std::is_same_v<T, float>)
        return "f";
    else if constexpr (std::is_same_v<T, bool>)
        return "O";
    else if constexpr (std::is_integral_v<T>) {
        constexpr const char* codes[2][4] = {{"B", "H", "I", "Q"}, {"b", "h", "i", "q"}};
        constexpr int size = sizeof(T) == 1 ? 0 : sizeof(T) == 2 ? 1 : sizeof(T) == 4 ? 2 : 3;
        return codes[std::is_signed_v<T> ? 1 : 0][size];
    } else
        return "O";
}
// A timeout as the manager protocol carries it: seconds, or None for "block forever".
inline Object timeout_object(const Timeout& timeout) {
    if (!timeout) return Object();
    return std::chrono::duration<double>(*timeout).count();
}
}  // namespace detail::manager

// Python's AcquirerProxy: a manager's Lock, RLock, Semaphore or BoundedSemaphore. Works with
// std::lock_guard and std::unique_lock (lock/unlock/try_lock). A Lock or units held by a process
// that died are given back, and the next acquire() raises mp::OwnerDiedError while holding it.
class AcquirerProxy : public BaseProxy {
public:
    AcquirerProxy() = default;
    explicit AcquirerProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    // Python's acquire(blocking=True, timeout=None): false when it timed out or would block.
    bool acquire(bool blocking = true, Timeout timeout = {}) const {
        if (!blocking) return _callmethod("acquire", Object::tuple({false})).as_bool();
        // As Python's AcquirerProxy: no timeout argument when there is none (a threading.Lock in a
        // Python manager refuses timeout=None).
        if (!timeout) return _callmethod("acquire", Object::tuple({true})).as_bool();
        return _callmethod("acquire", Object::tuple({true, detail::manager::timeout_object(timeout)})).as_bool();
    }
    // mp::RuntimeError("release unlocked lock") for a Lock, ("cannot release un-acquired lock")
    // for an RLock this thread does not hold; mp::ValueError for a BoundedSemaphore released
    // too many times.
    void release() const { _callmethod("release"); }
    void lock() const { acquire(); }
    void unlock() const { release(); }
    bool try_lock() const { return acquire(false); }
};
using LockProxy = AcquirerProxy;
using RLockProxy = AcquirerProxy;
using SemaphoreProxy = AcquirerProxy;
using BoundedSemaphoreProxy = AcquirerProxy;

// Python's ConditionProxy: a threading.Condition in the server, with its own RLock (each client
// thread is an owner of its own) or a manager Lock/RLock given to Condition(lock). wait_for() is
// evaluated here, as in Python.
class ConditionProxy : public AcquirerProxy {
public:
    ConditionProxy() = default;
    explicit ConditionProxy(BaseProxy base) : AcquirerProxy(std::move(base)) {}
    // mp::RuntimeError("cannot wait on un-acquired lock") when this thread does not hold it.
    bool wait(Timeout timeout = {}) const {
        return _callmethod("wait", Object::tuple({detail::manager::timeout_object(timeout)})).as_bool();
    }
    template <class Predicate>
    bool wait_for(Predicate predicate, Timeout timeout = {}) const {
        const detail::Deadline deadline(timeout);
        bool result = predicate();
        while (!result) {
            const auto left = deadline.remaining();
            if (left && left->count() == 0) break;
            wait(left ? Timeout(*left) : Timeout());
            result = predicate();
        }
        return result;
    }
    void notify(int n = 1) const { _callmethod("notify", Object::tuple({n})); }
    void notify_all() const { _callmethod("notify_all"); }
};

// Python's BarrierProxy (no action: a callable does not travel to the server).
class BarrierProxy : public BaseProxy {
public:
    BarrierProxy() = default;
    explicit BarrierProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    // This party's index, 0 to parties - 1; mp::BrokenBarrierError when the barrier is or becomes
    // broken (abort(), reset() while waiting, a timeout, a party that went away).
    int wait(Timeout timeout = {}) const {
        return static_cast<int>(
            _callmethod("wait", Object::tuple({detail::manager::timeout_object(timeout)})).as_int());
    }
    void abort() const { _callmethod("abort"); }
    void reset() const { _callmethod("reset"); }
    int parties() const {
        return static_cast<int>(_callmethod("__getattribute__", Object::tuple({"parties"})).as_int());
    }
    int n_waiting() const {
        return static_cast<int>(_callmethod("__getattribute__", Object::tuple({"n_waiting"})).as_int());
    }
    bool broken() const { return _callmethod("__getattribute__", Object::tuple({"broken"})).as_bool(); }
};

// Python's EventProxy.
class EventProxy : public BaseProxy {
public:
    EventProxy() = default;
    explicit EventProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    bool is_set() const { return _callmethod("is_set").as_bool(); }
    void set() const { _callmethod("set"); }
    void clear() const { _callmethod("clear"); }
    bool wait(Timeout timeout = {}) const {  // false when it timed out
        return _callmethod("wait", Object::tuple({detail::manager::timeout_object(timeout)})).as_bool();
    }
};

// Python's ValueProxy: get(), set(v), and value()/set_value(v) as mp::Value has them.
template <class T = Object>
class ValueProxy : public BaseProxy {
public:
    ValueProxy() = default;
    explicit ValueProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    T get() const { return _callmethod("get").template as<T>(); }
    void set(const T& value) const { _callmethod("set", Object::tuple({Object(value)})); }
    T value() const { return get(); }
    void set_value(const T& v) const { set(v); }
};

// Python's ArrayProxy (an array.array in the server): len, a[i] read and write. The server
// enforces the typecode as array.array does (mp::TypeError for a str in an array of ints).
template <class T>
class ArrayProxy : public BaseProxy {
public:
    ArrayProxy() = default;
    explicit ArrayProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    class Item {
    public:
        Item(const Item&) = default;
        Item& operator=(const T& value) {
            array_->set(index_, value);
            return *this;
        }
        Item& operator=(const Item& other) { return *this = T(other); }  // a[0] = a[1]
        operator T() const { return array_->at(index_); }

    private:
        friend class ArrayProxy;
        Item(const ArrayProxy* array, std::int64_t index) : array_(array), index_(index) {}
        const ArrayProxy* array_;
        std::int64_t index_;
    };
    Item operator[](std::int64_t index) const { return Item(this, index); }
    T at(std::int64_t index) const { return _callmethod("__getitem__", Object::tuple({index})).template as<T>(); }
    void set(std::int64_t index, const T& value) const {
        _callmethod("__setitem__", Object::tuple({index, Object(value)}));
    }
    std::size_t size() const { return static_cast<std::size_t>(_callmethod("__len__").as_int()); }
    std::vector<T> values() const { return _getvalue().template as<std::vector<T>>(); }
};

// A manager's Queue (Python's queue.Queue behind an AutoProxy; JoinableQueue is the same).
// get() raises mp::Empty, put() mp::Full, when they time out or would block.
template <class T = Object>
class QueueProxy : public BaseProxy {
public:
    QueueProxy() = default;
    explicit QueueProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    void put(const T& item, bool block = true, Timeout timeout = {}) const {
        _callmethod("put", Object::tuple({Object(item), block, detail::manager::timeout_object(timeout)}));
    }
    T get(bool block = true, Timeout timeout = {}) const {
        return _callmethod("get", Object::tuple({block, detail::manager::timeout_object(timeout)})).template as<T>();
    }
    void put_nowait(const T& item) const { _callmethod("put_nowait", Object::tuple({Object(item)})); }
    T get_nowait() const { return _callmethod("get_nowait").template as<T>(); }
    std::size_t qsize() const { return static_cast<std::size_t>(_callmethod("qsize").as_int()); }
    bool empty() const { return _callmethod("empty").as_bool(); }
    bool full() const { return _callmethod("full").as_bool(); }
    void task_done() const { _callmethod("task_done"); }  // mp::ValueError when called too many times
    void join() const { _callmethod("join"); }
};
template <class T = Object>
using JoinableQueueProxy = QueueProxy<T>;

// ---- register: user classes in a manager -------------------------------------------------------
//
// Python's BaseManager.register(typeid, callable, exposed=..., method_to_typeid=...) as a type,
// so that proxies call member functions with their own parameter types (a wrong argument is a
// compile-time error):
//
//   class Counter { public: explicit Counter(int start); void add(int n); int value() const;
//                   std::vector<int> history() const; };
//   using CounterType = mp::Registration<"Counter", &mp::construct<Counter, int>,
//                                        mp::Method<"add", &Counter::add>,
//                                        mp::Method<"value", &Counter::value>,
//                                        mp::Method<"history", &Counter::history, "Iterator">>;
//   mp::BaseManager manager;
//   manager.register_<CounterType>();               // before start()
//   manager.start();
//   auto counter = manager.create<CounterType>(10);  // mp::AutoProxy<CounterType>
//   counter.call<&Counter::add>(5);                  // runs in the server
//   int v = counter.call<&Counter::value>();         // 15
//   for (int x : counter.call<&Counter::history>()) ...
//
// The factory is a function pointer or a lambda without captures; it returns the object, a
// std::unique_ptr or a std::shared_ptr to it (mp::construct<T, Args...> calls T's constructor).
// Arguments and results cross as mp::Object (ObjectConversion, which user types can specialize).
// A Method's third argument is Python's method_to_typeid: the result stays in the server as an
// object of that registered typeid (its type must be the one that registration holds) and the
// call returns a proxy to it; "Iterator" walks a returned range one __next__ at a time (the range
// is copied into the server's iterator when the method returns).
//
// The server runs one method at a time on each registered object (CPython runs them concurrently
// and leaves locking to the class); the class needs no locks of its own.

// Calls T's constructor: a factory for Registration.
template <class T, class... Args>
std::unique_ptr<T> construct(Args... args) {
    return std::make_unique<T>(std::move(args)...);
}

// One exposed method: its name on the wire, the member function, and (optionally) the typeid its
// result stays in the server as.
template <detail::manager::FixedName Name, auto Member, detail::manager::FixedName ResultTypeId = "">
struct Method {
    using Traits = detail::manager::MemberTraits<decltype(Member)>;
    static_assert(Traits::valid, "mp::Method: the second argument must be a pointer to a member function");
    static constexpr std::string_view name = Name.view();
    static constexpr auto member = Member;
    static constexpr std::string_view result_type_id = ResultTypeId.view();
    using tag = detail::manager::MemberTag<Member>;
};

template <detail::manager::FixedName TypeId, auto Factory, class... Methods>
struct Registration {
    static constexpr std::string_view type_id = TypeId.view();
    static constexpr auto factory = Factory;
    using factory_traits = detail::manager::FactoryTraits<decltype(Factory)>;
    using type = detail::manager::held_t<typename factory_traits::result>;
    using methods = std::tuple<Methods...>;
    static_assert(!type_id.empty(), "mp::Registration: the typeid must not be empty");
    static_assert((std::is_base_of_v<typename Methods::Traits::owner, type> && ...),
                  "mp::Registration: a Method's member function is not one of the factory's type");
};

namespace detail::manager {
template <class Reg, auto Member, std::size_t I = 0>
constexpr std::size_t method_index() {
    using Methods = typename Reg::methods;
    if constexpr (I == std::tuple_size_v<Methods>) {
        return I;
    } else {
        // By type (two member pointers are equal template arguments or not), since comparing
        // their values is not a constant expression under every compiler mode (UBSan).
        if constexpr (std::is_same_v<typename std::tuple_element_t<I, Methods>::tag, MemberTag<Member>>)
            return I;
        else
            return method_index<Reg, Member, I + 1>();
    }
}
// A call's arguments as the tuple the server gets, each converted to its parameter's type first.
// (mp::AutoProxy::call, and BaseManager::create for a registration's factory.)
template <class Params, class... Args>
Object pack_arguments(Args&&... args) {
    static_assert(sizeof...(Args) == std::tuple_size_v<Params>,
                  "mp::AutoProxy::call / BaseManager::create: the number of arguments does not match the "
                  "parameters (of the method, or of the registration's factory)");
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
        static_assert((std::is_convertible_v<Args&&, std::tuple_element_t<I, Params>> && ...),
                      "mp::AutoProxy::call / BaseManager::create: an argument does not convert to the parameter "
                      "type (of the method, or of the registration's factory)");
        return Object::tuple({Object(std::tuple_element_t<I, Params>(std::forward<Args>(args)))...});
    }(std::make_index_sequence<sizeof...(Args)>());
}
template <class Range>
using range_item_t = std::remove_cvref_t<decltype(*std::begin(std::declval<Range&>()))>;
}  // namespace detail::manager

// Python's IteratorProxy: a server-side iterator, walked with __next__ (one round trip per item).
template <class T = Object>
class IteratorProxy : public BaseProxy {
public:
    IteratorProxy() = default;
    explicit IteratorProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    // The next item, or nothing once the iterator is exhausted (Python's StopIteration).
    std::optional<T> next() const {
        auto item = detail::manager::call_next(*ref_);
        if (!item) return std::nullopt;
        return item->template as<T>();
    }
    using Iterator = detail::manager::NextIterator<IteratorProxy, T>;
    Iterator begin() const { return Iterator{this, next()}; }
    Iterator end() const { return Iterator{this, std::nullopt}; }
};

// Python's AutoProxy, typed: a proxy to an object of registration Reg, whose methods are called
// through their member pointers.
template <class Reg>
class AutoProxy : public BaseProxy {
public:
    AutoProxy() = default;
    // mp::TypeError when `base` refers to an object of another typeid.
    explicit AutoProxy(BaseProxy base) : BaseProxy(std::move(base)) {
        if (valid() && type_id() != Reg::type_id)
            throw TypeError("a proxy to a '" + type_id() + "' is not a proxy to a '" + std::string(Reg::type_id) + "'");
    }

    // Runs the exposed method `Member` in the server with `args`, which must convert to its
    // parameters. Returns its result; a proxy for a method_to_typeid method (IteratorProxy for
    // "Iterator", BaseProxy otherwise, to wrap in the AutoProxy of that registration).
    template <auto Member, class... Args>
    auto call(Args&&... args) const {
        constexpr std::size_t index = detail::manager::method_index<Reg, Member>();
        static_assert(index < std::tuple_size_v<typename Reg::methods>,
                      "mp::AutoProxy::call: this member function is not an exposed mp::Method of the registration");
        using M = std::tuple_element_t<index, typename Reg::methods>;
        using Traits = typename M::Traits;
        using Params = typename Traits::params;
        const Object packed = detail::manager::pack_arguments<Params>(std::forward<Args>(args)...);
        const std::string name(M::name);
        using R = typename Traits::result;
        if constexpr (M::result_type_id == "Iterator") {
            return IteratorProxy<detail::manager::range_item_t<R>>(_callmethod_for_proxy(name, packed));
        } else if constexpr (!M::result_type_id.empty()) {
            return _callmethod_for_proxy(name, packed);
        } else if constexpr (std::is_void_v<R>) {
            _callmethod(name, packed);
        } else {
            return _callmethod(name, packed).template as<std::remove_cvref_t<R>>();
        }
    }
};

// Python's AsyncResult for a task of a manager's Pool (apply_async, map_async): a proxy to the
// result, which the server keeps until every proxy to it is gone. get() returns the value or
// throws what the task threw, as a local pool's AsyncResult does.
template <class T>
class AsyncResultProxy : public BaseProxy {
public:
    AsyncResultProxy() = default;
    explicit AsyncResultProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    // mp::TimeoutError when not ready within `timeout`.
    T get(Timeout timeout = {}) const {
        const Object outcome = _callmethod("get", Object::tuple({detail::manager::timeout_object(timeout)}));
        if (outcome[0].as_str() == "timeout") throw TimeoutError();
        return detail::manager::read_outcome<T>(outcome);
    }
    bool wait(Timeout timeout = {}) const {  // ready() at the end
        return _callmethod("wait", Object::tuple({detail::manager::timeout_object(timeout)})).as_bool();
    }
    bool ready() const { return _callmethod("ready").as_bool(); }
    bool successful() const { return _callmethod("successful").as_bool(); }  // mp::ValueError before ready()
};

// Python's IMapIterator for imap and imap_unordered on a manager's Pool: the results, a chunk
// per round trip, in input order (imap) or as they finish (imap_unordered). A failed task throws
// at its place and iteration may go on, as with a local pool. Use it from one thread at a time;
// copies in one process share the chunk being read.
template <class R>
class IMapIteratorProxy : public BaseProxy {
public:
    IMapIteratorProxy() = default;
    explicit IMapIteratorProxy(BaseProxy base) : BaseProxy(std::move(base)) {}
    // The next result; empty at the end; mp::TimeoutError when none comes within `timeout`.
    std::optional<R> next(Timeout timeout = {}) const {
        if (buffered_->empty()) {
            const Object chunk = _callmethod("next", Object::tuple({detail::manager::timeout_object(timeout)}));
            const std::string& kind = chunk[0].as_str();
            if (kind == "stop") return std::nullopt;
            if (kind == "timeout") throw TimeoutError();
            if (kind == "error") detail::manager::raise_pool_failure(chunk[2]);
            detail::manager::read_chunk<R>(chunk[1], chunk[2], *buffered_);
        }
        R item = std::move(buffered_->front());
        buffered_->pop_front();
        return item;
    }
    using Iterator = detail::manager::NextIterator<IMapIteratorProxy, R>;
    Iterator begin() const { return Iterator{this, next()}; }
    Iterator end() const { return Iterator{this, std::nullopt}; }

private:
    std::shared_ptr<std::deque<R>> buffered_ = std::make_shared<std::deque<R>>();
};

// Python's PoolProxy: a Pool whose workers are children of the manager's server (started with
// spawn), shared by every process that holds the proxy. Tasks are what a local Pool takes,
// under spawn's rules: a function, a captureless lambda, or a lambda capturing plain values (no
// pointers or references: the task runs in another process's child), with mp::Serializable
// arguments and results. Failures come back as their own types (WorkerLostError for a worker
// that died, a task's own exception). Only polyproc clients can submit tasks (the server runs the
// C++ program's functions, not pickled Python ones).
class PoolProxy : public BaseProxy {
public:
    PoolProxy() = default;
    explicit PoolProxy(BaseProxy base) : BaseProxy(std::move(base)) {}

    template <class F, class... A>
    auto apply(F f, A&&... args) const {
        return apply_async(f, std::forward<A>(args)...).get();
    }
    template <class F, class... A>
    auto apply_async(F f, A&&... arguments) const {
        using Args = std::tuple<detail::sent_as_t<A>...>;
        detail::check_apply_task<F, Args>();
        using R = detail::apply_result_t<F, detail::sent_as_t<A>...>;
        detail::check_task_result<R>();
        const Args args(std::forward<A>(arguments)...);
        return AsyncResultProxy<R>(_callmethod_for_proxy("apply_async", detail::manager::apply_submission(f, args)));
    }
    // Results in input order; the first failure is thrown after every chunk ran. chunksize 0 =
    // Python's default: ceil(len / (4 × workers)).
    template <class F, class Range>
    auto map(F f, Range&& items, std::size_t chunksize = 0) const {
        return map_async(f, std::forward<Range>(items), chunksize).get();
    }
    template <class F, class Range>
    auto map_async(F f, Range&& items, std::size_t chunksize = 0) const {
        return map_impl<false>(f, std::forward<Range>(items), chunksize);
    }
    template <class F, class Range>
    auto starmap(F f, Range&& items, std::size_t chunksize = 0) const {
        return starmap_async(f, std::forward<Range>(items), chunksize).get();
    }
    template <class F, class Range>
    auto starmap_async(F f, Range&& items, std::size_t chunksize = 0) const {
        return map_impl<true>(f, std::forward<Range>(items), chunksize);
    }
    // The input is sent whole (a local Pool's imap pulls it lazily); the results come a chunk at
    // a time.
    template <class F, class Range>
    auto imap(F f, Range&& items, std::size_t chunksize = 1) const {
        return imap_impl(f, std::forward<Range>(items), chunksize, "imap");
    }
    template <class F, class Range>
    auto imap_unordered(F f, Range&& items, std::size_t chunksize = 1) const {
        return imap_impl(f, std::forward<Range>(items), chunksize, "imap_unordered");
    }
    void close() const { _callmethod("close"); }
    void terminate() const { _callmethod("terminate"); }
    void join() const { _callmethod("join"); }  // mp::ValueError "Pool is still running" before close()
    std::size_t processes() const { return static_cast<std::size_t>(_callmethod("processes").as_int()); }

private:
    template <bool Star, class F, class Range>
    auto map_impl(F f, Range&& items, std::size_t chunksize) const {
        POLYPROC_CHECK_SENDABLE_FUNCTION(F);
        if constexpr (std::ranges::sized_range<Range> && std::ranges::forward_range<Range>) {
            return map_sized<Star>(f, items, chunksize);
        } else {
            std::vector<std::ranges::range_value_t<Range>> all;
            for (auto&& x : items) all.push_back(std::forward<decltype(x)>(x));
            return map_sized<Star>(f, all, chunksize);
        }
    }
    template <bool Star, class F, class Range>
    auto map_sized(F f, const Range& items, std::size_t chunksize) const {
        using T = std::ranges::range_value_t<Range>;
        detail::check_map_items<Star, F, T>();
        using R = detail::item_result_t<F, T, Star>;
        detail::check_task_result<R>();
        using Value = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
        const std::size_t total = std::ranges::size(items);
        if (chunksize == 0) chunksize = std::max<std::size_t>(1, detail::default_chunksize(total, processes()));
        return AsyncResultProxy<Value>(
            _callmethod_for_proxy("map_async", detail::manager::chunk_submission<F, T, Star>(f, items, chunksize)));
    }
    template <class F, class Range>
    auto imap_impl(F f, Range&& items, std::size_t chunksize, const char* method) const {
        POLYPROC_CHECK_SENDABLE_FUNCTION(F);
        if (chunksize < 1) throw ValueError("Chunksize must be 1+, not " + std::to_string(chunksize));
        using T = std::ranges::range_value_t<Range>;
        detail::check_map_items<false, F, T>();
        using R = detail::item_result_t<F, T, false>;
        static_assert(!std::is_void_v<R>, "polyproc::PoolProxy::imap: the function must return a value (use map)");
        detail::check_task_result<R>();
        std::vector<T> all;
        for (auto&& x : items) all.push_back(std::forward<decltype(x)>(x));
        return IMapIteratorProxy<R>(
            _callmethod_for_proxy(method, detail::manager::chunk_submission<F, T, false>(f, all, chunksize)));
    }
};

// Python's managers.Server as BaseManager.get_server() returns it: the manager's server, run in
// this process. serve_forever() serves until a client sends 'shutdown' or stop() is called (from
// another thread, or a signal handler: it is async-signal-safe).
class Server {
public:
    Server(Server&&) noexcept;
    Server& operator=(Server&&) noexcept;
    ~Server();
    void serve_forever();
    void stop() noexcept;
    const Address& address() const;

private:
    friend class BaseManager;
    explicit Server(std::unique_ptr<detail::manager::Server> server);
    std::unique_ptr<detail::manager::Server> server_;
};

// Python's BaseManager: starts a server process (start()) or connects to a running one
// (connect()), and creates objects in it. Move-only; a manager that start()ed its server shuts
// it down when destroyed, as Python's `with` block does.
class BaseManager {
public:
    // An empty address is a fresh AF_UNIX path; an empty authkey is current_process().authkey().
    explicit BaseManager(std::optional<Address> address = {}, std::optional<std::string> authkey = {});
    BaseManager(BaseManager&&) noexcept;
    BaseManager& operator=(BaseManager&&) noexcept;
    virtual ~BaseManager();

    void start();                  // mp::ProcessError "Already started server" / "Manager has shut down"
    void connect();                // to the server at address(); mp::AuthenticationError on a wrong key
    void shutdown();               // idempotent; SIGTERM (handled as a 'shutdown' request), then SIGKILL after 1 s
    void join(Timeout timeout = {});
    // Python's get_server(): a server for this manager's address, authkey and registered types,
    // to run in this process (mp::ProcessError once started).
    Server get_server();
    const Address& address() const;
    std::optional<int> pid() const;  // the server process's, when this manager started it

    // Creates an object of the given typeid in the server (Python's manager.<typeid>(*args)).
    BaseProxy create(const std::string& type_id, const Object& args = Object::tuple(),
                     const Object& kwds = Object::dict());

    // Python's register(): the server this manager starts can make objects of registration Reg
    // (mp::ProcessError once started). A typeid registered again is replaced, as in Python; a
    // SyncManager's own typeids can be replaced too.
    template <class Reg>
    void register_() {
        register_type(std::string(Reg::type_id),
                      reinterpret_cast<std::uintptr_t>(&detail::manager::registered_type<Reg>));
    }
    // Python's register(type_id, callable=lambda: obj) for an object the server holds: the server
    // makes one object of `of_type_id` (one of its own typeids, "Queue", "dict"..., or a
    // register_()ed one) with `args` when type_id is first asked for, and every create(type_id),
    // from any client, C++ or Python, gives a proxy to that same object. It lives as long as the
    // server. Before start() or get_server() (mp::ProcessError after).
    //   manager.register_shared("get_task_queue", "Queue");      // the server's side
    //   mp::QueueProxy<int> tasks(manager.create("get_task_queue"));  // any client's
    void register_shared(std::string type_id, std::string of_type_id, Object args = Object::tuple());
    // Creates an object of registration Reg with the factory's arguments (a wrong type does not
    // compile); the server must know Reg (register_<Reg>() before start(), or the server's own).
    template <class Reg, class Proxy = AutoProxy<Reg>, class... Args>
    Proxy create(Args&&... args) {
        const Object packed =
            detail::manager::pack_arguments<typename Reg::factory_traits::params>(std::forward<Args>(args)...);
        return Proxy(create(std::string(Reg::type_id), packed));
    }
    std::size_t number_of_objects() const;  // Python's _number_of_objects()

protected:
    std::unique_ptr<detail::manager::ManagerState> state_;

private:
    void register_type(std::string type_id, std::uintptr_t getter);
};

// Python's SyncManager.
class SyncManager : public BaseManager {
public:
    using BaseManager::BaseManager;

    template <class K = Object, class V = Object>
    DictProxy<K, V> dict(const Object& initial = Object::dict()) {
        return DictProxy<K, V>(create("dict", Object::tuple({initial})));
    }
    template <class K, class V>
    DictProxy<K, V> dict(const std::map<K, V>& initial) {
        return DictProxy<K, V>(create("dict", Object::tuple({Object(initial)})));
    }
    template <class T = Object>
    ListProxy<T> list(const Object& initial = Object::list()) {
        return ListProxy<T>(create("list", Object::tuple({initial})));
    }
    template <class T>
    ListProxy<T> list(const std::vector<T>& initial) {
        return ListProxy<T>(create("list", Object::tuple({Object(initial)})));
    }
    NamespaceProxy Namespace() { return NamespaceProxy(create("Namespace")); }
    template <class T = Object>
    SetProxy<T> set(const std::vector<T>& initial = {}) {
        return SetProxy<T>(create("set", Object::tuple({Object(initial)})));
    }
    // A string literal makes a ValueProxy<std::string>.
    template <class T, class U = std::conditional_t<std::is_convertible_v<const T&, std::string_view> &&
                                                        !std::is_same_v<T, Object>,
                                                    std::string, std::decay_t<T>>>
    ValueProxy<U> Value(const T& value) {
        return ValueProxy<U>(create("Value", Object::tuple({detail::manager::typecode_for<U>(), Object(U(value))})));
    }
    template <class T>
    ArrayProxy<T> Array(const std::vector<T>& values) {
        static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>,
                      "manager.Array<T>: T must be an integer or floating point type (array.array's typecodes)");
        return ArrayProxy<T>(create("Array", Object::tuple({detail::manager::typecode_for<T>(), Object(values)})));
    }
    // Python's Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None), in the
    // server: processes 0 = the server's cpu_count(); maxtasksperchild 0 = no limit.
    PoolProxy Pool(int processes = 0, int maxtasksperchild = 0) {
        return PoolProxy(
            create("Pool", Object::tuple({processes > 0 ? Object(processes) : Object(), Object(), Object::tuple(),
                                          maxtasksperchild > 0 ? Object(maxtasksperchild) : Object()})));
    }
    LockProxy Lock() { return LockProxy(create("Lock")); }
    RLockProxy RLock() { return RLockProxy(create("RLock")); }
    SemaphoreProxy Semaphore(int value = 1) { return SemaphoreProxy(create("Semaphore", Object::tuple({value}))); }
    BoundedSemaphoreProxy BoundedSemaphore(int value = 1) {
        return BoundedSemaphoreProxy(create("BoundedSemaphore", Object::tuple({value})));
    }
    EventProxy Event() { return EventProxy(create("Event")); }
    ConditionProxy Condition() { return ConditionProxy(create("Condition")); }
    // Python's Condition(lock): on a Lock or RLock of this manager (mp::TypeError for another).
    ConditionProxy Condition(const AcquirerProxy& lock) {
        return ConditionProxy(create("Condition", Object::tuple({Object(lock)})));
    }
    BarrierProxy Barrier(int parties, Timeout timeout = {}) {
        return BarrierProxy(
            create("Barrier", Object::tuple({parties, Object(), detail::manager::timeout_object(timeout)})));
    }
    template <class T = Object>
    QueueProxy<T> Queue(std::size_t maxsize = 0) {
        return QueueProxy<T>(create("Queue", Object::tuple({static_cast<std::int64_t>(maxsize)})));
    }
    template <class T = Object>
    JoinableQueueProxy<T> JoinableQueue(std::size_t maxsize = 0) {
        return JoinableQueueProxy<T>(create("JoinableQueue", Object::tuple({static_cast<std::int64_t>(maxsize)})));
    }
};

// Python's multiprocessing.Manager(): a started SyncManager.
SyncManager Manager();

}  // namespace polyproc
