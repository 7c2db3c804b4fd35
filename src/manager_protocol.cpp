// The manager protocol's messages (manager_protocol.hpp).
#include "manager_protocol.hpp"

#include <unistd.h>

#include "manager_compact.hpp"
#include "pickle.hpp"

namespace polyproc::detail::manager {

namespace {

// How an '#ERROR' payload reads here: a marker tuple the reply decoder takes apart.
constexpr std::string_view kRaisedMarker = "\x01polyproc-raised";

// How a '#PROXY' reply's Token reads here: the marker, then its state (typeid, address, id).
constexpr std::string_view kTokenMarker = "\x01polyproc-token";

// How a Python proxy class (RebuildProxy's first argument) reads here: the marker and its name.
constexpr std::string_view kProxyTypeMarker = "\x01polyproc-proxytype";
constexpr std::string_view kManagersModule = "multiprocessing.managers";

// The Python proxy class CPython's SyncManager registers for a typeid; AutoProxy for the others
// (Queue, a registered class), which asks the server for its methods (get_methods).
std::string_view python_proxy_class(std::string_view type_id) {
    static constexpr std::pair<std::string_view, std::string_view> classes[] = {{"dict", "DictProxy"},
                                                                                {"list", "ListProxy"},
                                                                                {"Namespace", "NamespaceProxy"},
                                                                                {"Lock", "AcquirerProxy"},
                                                                                {"RLock", "AcquirerProxy"},
                                                                                {"Semaphore", "AcquirerProxy"},
                                                                                {"BoundedSemaphore", "AcquirerProxy"},
                                                                                {"Condition", "ConditionProxy"},
                                                                                {"Event", "EventProxy"},
                                                                                {"Barrier", "BarrierProxy"},
                                                                                {"Value", "ValueProxy"},
                                                                                {"Array", "ArrayProxy"},
                                                                                {"Pool", "PoolProxy"},
                                                                                {"Iterator", "IteratorProxy"}};
    for (const auto& [id, cls] : classes)
        if (id == type_id) return cls;
    return "AutoProxy";
}

// A proxy's (typeid, address, id), as RebuildProxy's Token and polyproc.Proxy carry it: strs, the
// address a path or a (host, port) tuple.
bool is_proxy_state(const Object& a) {
    return a.type() == Object::Type::tuple && a.size() == 3 && a[0].type() == Object::Type::str &&
           a[2].type() == Object::Type::str && (a[1].type() == Object::Type::str || a[1].type() == Object::Type::tuple);
}

// What CPython's managers put in a pickle, as read here: a slice (an instance, which the list
// referent takes), a Token (NEWOBJ, then its state by
// BUILD) reads as (kTokenMarker, (typeid, address, id)); a proxy class given as a value, as
// (kProxyTypeMarker, name); and a proxy, RebuildProxy(class, Token, serializer, kwds), as the
// polyproc.Proxy that `make_proxy` makes of the Token's state. Nothing for another global.
std::optional<Object> python_manager_object(const std::string& qualified, const Object& args,
                                            const ProxyMaker& make_proxy) {
    if (qualified == "builtins.slice" && args.type() == Object::Type::tuple)  // a ListProxy's l[1:3]
        return Object::instance("builtins", "slice", args);
    if (!qualified.starts_with(kManagersModule) || qualified.size() <= kManagersModule.size() ||
        qualified[kManagersModule.size()] != '.')
        return std::nullopt;
    const std::string_view name = std::string_view(qualified).substr(kManagersModule.size() + 1);
    if (args.is_none()) {  // a class as a value
        if (name == "AutoProxy" || name.ends_with("Proxy")) return Object::tuple({kProxyTypeMarker, Object(name)});
        return std::nullopt;
    }
    if (name == "Token") return Object::tuple({Object(kTokenMarker)});
    if (name == "Token.__setstate__") {
        if (args.size() != 2) throw UnpicklingError("a Token's state must be one value");
        return Object::tuple({Object(kTokenMarker), args[1]});
    }
    if (name != "RebuildProxy") return std::nullopt;
    const bool well_formed = args.size() >= 2 && args[1].type() == Object::Type::tuple && args[1].size() == 2 &&
                             args[1][0] == Object(kTokenMarker) && is_proxy_state(args[1][1]);
    if (!well_formed) throw UnpicklingError("RebuildProxy wants (proxy class, Token(typeid, address, id), ...)");
    const Object& state = args[1][1];
    return make_proxy ? make_proxy(state) : proxy_object(state);
}

thread_local std::function<Object(const std::string&)> t_exposed_lookup;

// polyproc.Proxy as Python's managers pickle a proxy: RebuildProxy(class, Token, 'pickle', kwds),
// kwds {'exposed': ...} for an AutoProxy. Every peer reads it (polyproc's readers make a
// polyproc.Proxy of it again).
std::optional<Object> python_form(const Object& instance) {
    if (!is_proxy_object(instance)) return std::nullopt;
    const Object& a = instance.instance_args();
    if (!is_proxy_state(a)) return std::nullopt;  // as it is: RebuildProxy's reader would refuse it
    const std::string& type_id = a[0].as_str();
    const std::string_view cls = python_proxy_class(type_id);
    Object kwds = Object::dict();
    if (cls == "AutoProxy") kwds["exposed"] = t_exposed_lookup ? t_exposed_lookup(type_id) : native_exposed(type_id);
    return Object::instance(
        std::string(kManagersModule), "RebuildProxy",
        Object::tuple({pickle_global(kManagersModule, cls), pickle_new_object(kManagersModule, "Token", a),
                       Object("pickle"), std::move(kwds)}));
}

std::string pickle_for_peers(const Object& value) { return pickle_dumps_with(value, python_form); }

// The classes both pickled readers take: polyproc's own, then what CPython's managers write.
std::optional<Object> known_instance(const std::string& qualified, const Object& args, const ProxyMaker& make_proxy) {
    if (auto own = polyproc_instance(qualified, args, make_proxy)) return own;
    return python_manager_object(qualified, args, make_proxy);
}

// `called`: the last class the pickle called other than Token (an '#ERROR' reply's exception).
Object read_reply_object(std::string_view bytes, std::string& called, const ProxyMaker& make_proxy) {
    return pickle_loads_with(bytes, [&](const std::string& qualified, const Object& args) {
        if (auto known = known_instance(qualified, args, make_proxy)) return std::move(*known);
        if (args.is_none() || qualified.ends_with(".__setstate__"))
            throw UnpicklingError("a manager reply holds " + qualified + ", which polyproc does not read");
        called = qualified;
        const auto dot = qualified.rfind('.');
        return Object::tuple({Object(kRaisedMarker), qualified.substr(0, dot), qualified.substr(dot + 1), args});
    });
}

// A C++ what() as a str: it may hold any bytes, and a str must be UTF-8 (bytes beyond ASCII then
// become '?').
Object message_object(std::string text) {
    try {
        return Object(std::move(text));
    } catch (const ValueError&) {
        for (char& c : text)
            if (static_cast<unsigned char>(c) >= 0x80) c = '?';
        return Object(std::move(text));
    }
}

std::string message_of(const Object& args) {
    if (args.type() == Object::Type::tuple && args.size() == 1) return str(args[0]);
    if (args.type() == Object::Type::tuple && args.size() == 0) return "";
    return repr(args);
}

}  // namespace

std::string encode_request(const Object& ident, std::string_view method, const Object& args, const Object& kwds,
                           Encoding encoding) {
    if (encoding == Encoding::compact)
        if (auto bytes = compact::encode_request(ident, method, args, kwds)) return std::move(*bytes);
    return pickle_for_peers(Object::tuple({ident, Object(method), args, kwds}));
}

namespace {

// A pickled request's 4-tuple taken apart, with CPython's errors for another shape.
Request unpickle_request(std::string_view bytes, const ProxyMaker& make_proxy) {
    const Object message = pickle_loads_with(bytes, [&](const std::string& qualified, const Object& args) {
        if (auto known = known_instance(qualified, args, make_proxy)) return std::move(*known);
        throw UnpicklingError(unknown_class_text(qualified));
    });
    if (message.type() != Object::Type::tuple)
        throw ProtocolError(std::string("TypeError: cannot unpack non-iterable ") + message.type_name() + " object");
    if (message.size() != 4)
        throw ProtocolError("ValueError: " + std::string(message.size() < 4 ? "not enough" : "too many") +
                            " values to unpack (expected 4, got " + std::to_string(message.size()) + ")");
    if (message[1].type() != Object::Type::str)
        throw ProtocolError(std::string("TypeError: a method name must be a str, not ") + message[1].type_name());
    return Request{message[0], message[1].as_str(), message[2], message[3]};
}

}  // namespace

std::optional<Object> polyproc_instance(std::string_view qualified, const Object& args, const ProxyMaker& make_proxy) {
    const auto dot = qualified.rfind('.');
    if (dot == std::string_view::npos || qualified.substr(0, dot) != "polyproc" || args.type() != Object::Type::tuple)
        return std::nullopt;
    const std::string_view name = qualified.substr(dot + 1);
    if (name == kProxyClass) return make_proxy ? make_proxy(args) : proxy_object(args);
    if (name == "Native") return Object::instance("polyproc", "Native", args);
    return std::nullopt;
}

Object native_exposed(const std::string& type_id) {
    std::vector<Object> names;
    const auto add = [&](std::initializer_list<const char*> list) {
        for (const char* n : list) names.emplace_back(n);
    };
    if (type_id == "Queue" || type_id == "JoinableQueue")
        add({"empty", "full", "get", "get_nowait", "join", "put", "put_nowait", "qsize", "task_done"});
    else if (type_id == "Iterator")
        add({"__next__", "close"});
    else if (type_id == "Pool")
        add({"apply", "apply_async", "close", "imap", "imap_unordered", "join", "map", "map_async", "starmap",
             "starmap_async", "terminate"});
    else if (type_id == "AsyncResult")
        add({"get", "ready", "successful", "wait"});
    else if (type_id == "IMapIterator")
        add({"next"});
    return Object::tuple(std::move(names));
}

void set_exposed_lookup(std::function<Object(const std::string& type_id)> lookup) {
    t_exposed_lookup = std::move(lookup);
}

std::optional<Object> token_state(const Object& read) {
    if (read.type() != Object::Type::tuple || read.size() != 2 || read[0] != Object(kTokenMarker) ||
        read[1].type() != Object::Type::tuple || read[1].size() != 3 || read[1][2].type() != Object::Type::str)
        return std::nullopt;
    return read[1];
}

std::string unknown_class_text(std::string_view qualified) {
    return "a manager request refers to " + std::string(qualified) +
           ", which polyproc does not know (mp::Object holds None, bool, int, float, str, bytes, tuple, list, dict, "
           "set and manager proxies)";
}

Request decode_request(std::string_view bytes, const ProxyMaker& make_proxy) {
    Request r =
        compact::is_request(bytes) ? compact::decode_request(bytes, make_proxy) : unpickle_request(bytes, make_proxy);
    if (!r.ident.is_none() && r.ident.type() != Object::Type::str)
        throw ProtocolError(std::string("TypeError: an object id must be None or a str, not ") + r.ident.type_name());
    // A pickled request's args may be a list (CPython's server calls f(*args) with any sequence);
    // the compact writer makes tuples only.
    const bool list_ok = r.encoding == Encoding::pickle && r.args.type() == Object::Type::list;
    if (r.args.type() != Object::Type::tuple && !list_ok)
        throw ProtocolError(std::string("TypeError: args must be a tuple, not ") + r.args.type_name());
    if (r.kwds.type() != Object::Type::dict)
        throw ProtocolError(std::string("TypeError: kwds must be a dict, not ") + r.kwds.type_name());
    return r;
}

std::string encode_return(const Object& value, Encoding encoding) {
    if (encoding == Encoding::compact)
        if (auto bytes = compact::encode_return(value)) return std::move(*bytes);
    return pickle_for_peers(Object::tuple({"#RETURN", value}));
}

std::string encode_error(const RaisedError& error, Encoding encoding) {
    if (encoding == Encoding::compact)
        if (auto bytes = compact::encode_error(error)) return std::move(*bytes);
    return pickle_dumps_pair_with_call("#ERROR", error.module, error.name, error.args);
}

Object proxy_object(const Object& args, std::shared_ptr<const ObjectAttachment> attachment) {
    return Object::instance(std::string(kProxyModule), std::string(kProxyClass), args, std::move(attachment));
}

Object address_object(const Address& address) {
    if (const auto* path = std::get_if<std::string>(&address)) return Object(*path);
    const auto& inet = std::get<InetAddress>(address);
    return Object::tuple({Object(inet.host), Object(inet.port)});
}

std::string encode_proxy_reply(const Object& exposed, const std::string& type_id, const Object& address,
                               const std::string& ident, Encoding encoding) {
    if (encoding == Encoding::compact) return compact::encode_proxy(type_id, ident);
    return pickle_dumps_pair_with_instance("#PROXY", exposed, "multiprocessing.managers", "Token",
                                           Object::tuple({Object(type_id), address, Object(ident)}));
}

std::string encode_traceback(std::string_view text, Encoding encoding) {
    const Object str = message_object(std::string(text));  // a peer's bytes may be in it
    if (encoding == Encoding::compact) return compact::encode_traceback(str.as_str());
    return pickle_dumps(Object::tuple({"#TRACEBACK", str}));
}

Reply decode_reply(std::string_view bytes, const ProxyMaker& make_proxy) {
    if (compact::is_reply(bytes)) return compact::decode_reply(bytes, make_proxy);
    std::string called;
    const Object message = read_reply_object(bytes, called, make_proxy);
    if (message.type() != Object::Type::tuple || message.size() != 2 || message[0].type() != Object::Type::str)
        throw ProtocolError("a manager reply must be a (kind, payload) pair, not " + repr(message).substr(0, 80));
    Reply r;
    r.kind = message[0].as_str();
    r.value = message[1];
    if (!called.empty() && r.kind != "#ERROR")  // only an exception is read as a call
        throw UnpicklingError("a manager reply holds an instance of " + called + ", which polyproc does not read");
    if (r.kind == "#ERROR") {
        const Object& p = r.value;
        if (p.type() != Object::Type::tuple || p.size() != 4 || p[0] != Object(kRaisedMarker))
            throw ProtocolError("an '#ERROR' reply must hold an exception, not " + repr(p).substr(0, 80));
        r.error = RaisedError{p[1].as_str(), p[2].as_str(), p[3]};
    } else if (r.kind == "#PROXY") {
        // (exposed, Token(typeid, address, id))
        const Object& p = r.value;
        if (p.type() != Object::Type::tuple || p.size() != 2 || p[1].type() != Object::Type::tuple ||
            p[1].size() != 2 || p[1][0] != Object(kTokenMarker) || p[1][1].type() != Object::Type::tuple ||
            p[1][1].size() != 3 || p[1][1][0].type() != Object::Type::str || p[1][1][2].type() != Object::Type::str)
            throw ProtocolError("a '#PROXY' reply must hold (exposed, Token), not " + repr(p).substr(0, 80));
        r.token = Token{p[1][1][0].as_str(), p[1][1][2].as_str()};
    } else if (r.kind != "#RETURN" && r.kind != "#TRACEBACK" && r.kind != "#UNSERIALIZABLE") {
        throw ProtocolError("Unrecognized message type " + repr(message[0]));
    }
    return r;
}

RaisedError current_exception_as_raised() {
    // A polyproc error travels as the builtin of the same name, its message the one argument.
    const auto builtin = [](const char* name, const std::exception& e) {
        return RaisedError{"builtins", name, Object::tuple({message_object(e.what())})};
    };
    try {
        throw;
    } catch (const Raised& e) {
        return e.error;
    } catch (const KeyError& e) {
        return builtin("KeyError", e);
    } catch (const IndexError& e) {
        return builtin("IndexError", e);
    } catch (const ValueError& e) {
        return builtin("ValueError", e);
    } catch (const TypeError& e) {
        return builtin("TypeError", e);
    } catch (const AttributeError& e) {
        return builtin("AttributeError", e);
    } catch (const OverflowError& e) {
        return builtin("OverflowError", e);
    } catch (const std::exception& e) {  // RuntimeError and anything else
        return builtin("RuntimeError", e);
    } catch (...) {  // a user's method may throw anything
        return RaisedError{"builtins", "RuntimeError", Object::tuple({"a C++ exception that is no std::exception"})};
    }
}

void raise_reply_error(const Reply& reply, const std::string& where) {
    if (!reply.error) {
        const std::string text = reply.value.type() == Object::Type::str ? reply.value.as_str() : repr(reply.value);
        if (reply.kind == "#UNSERIALIZABLE") throw RemoteError("Unserializable message", text, 0);
        throw RemoteError("RemoteError", "the manager at " + where + " failed: " + text, 0);
    }
    const RaisedError& e = *reply.error;
    const std::string message = message_of(e.args);
    if (e.module == "builtins") {
        if (e.name == "KeyError")
            throw KeyError(e.args.size() == 1 ? repr(e.args[0]) : repr(e.args));  // Python's str()
        if (e.name == "IndexError") throw IndexError(message);
        if (e.name == "ValueError" || e.name == "AssertionError") throw ValueError(message);
        if (e.name == "TypeError") throw TypeError(message);
        if (e.name == "AttributeError") throw AttributeError(message);
        if (e.name == "OverflowError") throw OverflowError(message);
        if (e.name == "RuntimeError") throw RuntimeError(message);
        if (e.name == "EOFError") throw EOFError(message);
    }
    if (e.module == "polyproc" && e.name == "OwnerDiedError" && e.args.size() == 1 &&
        e.args[0].type() == Object::Type::integer)
        throw OwnerDiedError(static_cast<pid_t>(e.args[0].as_int()));
    if (e.module == "threading" && e.name == "BrokenBarrierError") throw BrokenBarrierError();
    if (e.module == "_queue" && e.name == "Empty") throw Empty();
    if (e.module == "queue" && e.name == "Full") throw Full();
    throw RemoteError(e.module + "." + e.name, message, 0);
}

}  // namespace polyproc::detail::manager
