// What a manager's server holds: dict, list and Namespace referents, their constructors and
// their methods, called by name as CPython's proxies call them (DictProxy's and ListProxy's
// exposed methods, Namespace's attribute access). The server holds each as an mp::Object and runs
// one method at a time on it.
#include <algorithm>

#include "manager_server.hpp"

namespace polyproc::detail::manager {

namespace {

void want_args(const Object& args, std::size_t least, std::size_t most, const std::string& method) {
    const std::size_t n = args.size();
    if (n >= least && n <= most) return;
    if (least == most)
        throw TypeError(method + "() takes exactly " + std::to_string(least) + " argument" + (least == 1 ? "" : "s") +
                        " (" + std::to_string(n) + " given)");
    throw TypeError(method + " expected " +
                    (n < least ? "at least " + std::to_string(least) : "at most " + std::to_string(most)) +
                    " argument" + ((n < least ? least : most) == 1 ? "" : "s") + ", got " + std::to_string(n));
}

[[noreturn]] void raise_key_error(const Object& key) {
    throw Raised(RaisedError{"builtins", "KeyError", Object::tuple({key})});
}

Object list_of(std::vector<Object> items) { return Object::list(std::move(items)); }

Object items_list(const Object& dict) {
    std::vector<Object> out;
    for (auto& [k, v] : dict.items()) out.push_back(Object::tuple({k, v}));
    return Object::list(std::move(out));
}

[[noreturn]] void not_exposed(const Referent& r, const std::string& method) {
    throw UnknownName("AttributeError: method '" + method + "' of <class '" + r.type_id + "'> object is not exposed");
}

Object call_dict(Referent& r, const std::string& m, const Object& a, const Object& kwds) {
    Object& d = r.value;
    if (m == "__getitem__") {
        want_args(a, 1, 1, m);
        const Object& key = a[0];
        if (!d.contains(key)) raise_key_error(key);
        return d.at(key);
    }
    if (m == "__setitem__") {
        want_args(a, 2, 2, m);
        d[a[0]] = a[1];
        return {};
    }
    if (m == "__delitem__") {
        want_args(a, 1, 1, m);
        if (!d.contains(a[0])) raise_key_error(a[0]);
        d.erase(a[0]);
        return {};
    }
    if (m == "__contains__") {
        want_args(a, 1, 1, m);
        return d.contains(a[0]);
    }
    if (m == "__len__") return static_cast<std::int64_t>(d.size());
    if (m == "get") {
        want_args(a, 1, 2, m);
        return d.get(a[0], a.size() > 1 ? a[1] : Object());
    }
    if (m == "setdefault") {
        want_args(a, 1, 2, m);
        return d.setdefault(a[0], a.size() > 1 ? a[1] : Object());
    }
    if (m == "pop") {
        want_args(a, 1, 2, m);
        if (a.size() == 2) return d.pop(a[0], a[1]);
        if (!d.contains(a[0])) raise_key_error(a[0]);
        return d.pop(a[0]);
    }
    if (m == "popitem") {
        want_args(a, 0, 0, m);
        auto [k, v] = d.popitem();
        return Object::tuple({k, v});
    }
    if (m == "update") {
        want_args(a, 0, 1, m);
        if (a.size()) d.update(a[0]);
        d.update(kwds);
        return {};
    }
    if (m == "keys") return list_of(d.keys());
    if (m == "values") return list_of(d.values());
    if (m == "items") return items_list(d);
    if (m == "clear") {
        d.clear();
        return {};
    }
    if (m == "copy" || m == "#GETVALUE") return d;
    not_exposed(r, m);
}

Object call_list(Referent& r, const std::string& m, const Object& a, const Object& kwds) {
    Object& l = r.value;
    if (m == "__getitem__") {
        want_args(a, 1, 1, m);
        return l.at(a[0]);
    }
    if (m == "__setitem__") {
        want_args(a, 2, 2, m);
        l.at(a[0]) = a[1];
        return {};
    }
    if (m == "__delitem__") {
        want_args(a, 1, 1, m);
        l.erase(a[0]);
        return {};
    }
    if (m == "__contains__") {
        want_args(a, 1, 1, m);
        return l.contains(a[0]);
    }
    if (m == "__len__") return static_cast<std::int64_t>(l.size());
    if (m == "append") {
        want_args(a, 1, 1, m);
        l.append(a[0]);
        return {};
    }
    if (m == "extend" || m == "__iadd__") {
        want_args(a, 1, 1, m);
        l.extend(a[0]);
        return {};
    }
    if (m == "insert") {
        want_args(a, 2, 2, m);
        l.insert(a[0].as_int(), a[1]);
        return {};
    }
    if (m == "pop") {
        want_args(a, 0, 1, m);
        return a.size() ? l.pop(a[0]) : l.pop();
    }
    if (m == "remove") {
        want_args(a, 1, 1, m);
        l.remove(a[0]);
        return {};
    }
    if (m == "index") {
        want_args(a, 1, 1, m);
        return static_cast<std::int64_t>(l.index(a[0]));
    }
    if (m == "count") {
        want_args(a, 1, 1, m);
        return static_cast<std::int64_t>(l.count(a[0]));
    }
    if (m == "reverse") {
        l.reverse();
        return {};
    }
    if (m == "sort") {
        l.sort(kwds.get("reverse", false).truthy());
        return {};
    }
    if (m == "clear") {
        l.clear();
        return {};
    }
    if (m == "copy" || m == "#GETVALUE") return l;
    not_exposed(r, m);
}

// A Namespace's attributes, in a dict of name -> value.
Object call_namespace(Referent& r, const std::string& m, const Object& a) {
    Object& attrs = r.value;
    const auto name = [&]() -> const Object& {
        if (a.size() == 0 || a[0].type() != Object::Type::str) throw TypeError("attribute name must be string");
        return a[0];
    };
    const auto no_attribute = [&](const Object& n) {
        throw AttributeError("'Namespace' object has no attribute '" + n.as_str() + "'");
    };
    if (m == "__getattribute__") {
        want_args(a, 1, 1, m);
        if (!attrs.contains(name())) no_attribute(name());
        return attrs.at(name());
    }
    if (m == "__setattr__") {
        want_args(a, 2, 2, m);
        attrs[name()] = a[1];
        return {};
    }
    if (m == "__delattr__") {
        want_args(a, 1, 1, m);
        if (!attrs.contains(name())) no_attribute(name());
        attrs.erase(name());
        return {};
    }
    if (m == "#GETVALUE") return attrs;
    not_exposed(r, m);
}

// Python's repr of a Namespace: Namespace(a=1, b='x'), names starting with '_' left out.
std::string namespace_repr(const Object& attrs) {
    std::string out = "Namespace(";
    bool first = true;
    for (const auto& [k, v] : attrs.items()) {
        if (k.as_str().starts_with('_')) continue;
        if (!first) out += ", ";
        first = false;
        out += k.as_str() + "=" + repr(v);
    }
    return out + ")";
}

}  // namespace

Object make_referent_value(const std::string& type_id, const Object& args, const Object& kwds) {
    if (type_id == "dict") {
        want_args(args, 0, 1, "dict");
        Object d = Object::dict();
        if (args.size()) d.update(args[0]);
        d.update(kwds);
        return d;
    }
    if (type_id == "list") {
        want_args(args, 0, 1, "list");
        Object l = Object::list();
        if (args.size()) l.extend(args[0]);
        return l;
    }
    if (type_id == "Namespace") {
        want_args(args, 0, 0, "Namespace");
        return Object::dict(kwds.items());
    }
    throw UnknownName("KeyError: " + repr(Object(type_id)) + " (no such typeid in this manager)");
}

Object call_referent(Referent& r, const std::string& method, const Object& args, const Object& kwds) {
    if (method == "__repr__" || method == "__str__")
        return r.type_id == "Namespace" ? namespace_repr(r.value) : repr(r.value);
    if (r.type_id == "dict") return call_dict(r, method, args, kwds);
    if (r.type_id == "list") return call_list(r, method, args, kwds);
    return call_namespace(r, method, args);
}

}  // namespace polyproc::detail::manager
