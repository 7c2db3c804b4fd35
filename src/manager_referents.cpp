// What a manager's server holds: dict, list, set, Namespace, Value and Array referents, their constructors and
// their methods, called by name as CPython's proxies call them (DictProxy's and ListProxy's
// exposed methods, Namespace's attribute access). The server holds each as an mp::Object and runs
// one method at a time on it.
#include <algorithm>
#include <limits>
#include <optional>
#include <vector>
#include <utility>

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

// Python's slice(start, stop, step), as a ListProxy sends l[1:3]: the indices it picks in a sequence
// of `length` (PySlice_AdjustIndices), or nothing for an index that is not a slice.
struct SliceIndices {
    std::int64_t start, step, count;
    std::int64_t at(std::int64_t i) const { return start + i * step; }
};
std::optional<SliceIndices> slice_indices(const Object& index, std::int64_t length) {
    if (!index.is_instance_of("builtins", "slice")) return std::nullopt;
    const Object& a = index.instance_args();
    if (a.size() != 3) throw TypeError("slice expected 3 arguments, got " + std::to_string(a.size()));
    const auto bound = [](const Object& o, std::int64_t none) {
        if (o.is_none()) return none;
        if (o.type() != Object::Type::integer && o.type() != Object::Type::boolean)
            throw TypeError("slice indices must be integers or None or have an __index__ method");
        return o.as_int();
    };
    // Python clamps the step to ±PY_SSIZE_T_MAX (so that -step never overflows)
    const std::int64_t step = std::max(bound(a[2], 1), -std::numeric_limits<std::int64_t>::max());
    if (step == 0) throw ValueError("slice step cannot be zero");
    const auto adjust = [&](const Object& o, std::int64_t none) {
        if (o.is_none()) return none;
        std::int64_t i = bound(o, none);
        if (i < 0) {
            i += length;
            if (i < 0) i = step < 0 ? -1 : 0;
        } else if (i >= length) {
            i = step < 0 ? length - 1 : length;
        }
        return i;
    };
    const std::int64_t start = adjust(a[0], step < 0 ? length - 1 : 0), stop = adjust(a[1], step < 0 ? -1 : length);
    std::int64_t count = 0;
    if (step < 0 && stop < start) count = (start - stop - 1) / -step + 1;
    if (step > 0 && start < stop) count = (stop - start - 1) / step + 1;
    return SliceIndices{start, step, count};
}

// seq[slice] as a list (the same for a list and an Array: CPython's ArrayProxy gets a list too).
Object slice_of(const Object& seq, const SliceIndices& s) {
    const auto items = seq.items_view();
    std::vector<Object> out;
    out.reserve(static_cast<std::size_t>(s.count));
    for (std::int64_t i = 0; i < s.count; ++i) out.push_back(items[static_cast<std::size_t>(s.at(i))]);
    return Object::list(std::move(out));
}

// seq[slice] = values, as Python's list does (a plain slice may change the length; an extended
// one must match it); `convert` checks each new item (an Array's typecode).
template <class Convert>
Object assign_slice(const Object& seq, const SliceIndices& s, const Object& values, Convert convert, bool resizable) {
    if (values.type() != Object::Type::list && values.type() != Object::Type::tuple)
        throw TypeError(resizable ? "can only assign an iterable" : "can only assign a sequence to an array slice");
    const auto old = seq.items_view();
    const auto fresh = values.items_view();
    if (s.step == 1 && resizable) {
        const auto begin = static_cast<std::size_t>(s.start);
        const auto end = begin + static_cast<std::size_t>(s.count);
        std::vector<Object> out(old.begin(), old.begin() + static_cast<std::ptrdiff_t>(begin));
        for (const Object& v : fresh) out.push_back(convert(v));
        out.insert(out.end(), old.begin() + static_cast<std::ptrdiff_t>(end), old.end());
        return Object::list(std::move(out));
    }
    if (static_cast<std::int64_t>(fresh.size()) != s.count)
        throw ValueError(s.step == 1 ? "Can only assign sequence of same size"
                                     : "attempt to assign sequence of size " + std::to_string(fresh.size()) +
                                           " to extended slice of size " + std::to_string(s.count));
    std::vector<Object> out(old.begin(), old.end());
    for (std::int64_t i = 0; i < s.count; ++i) out[static_cast<std::size_t>(s.at(i))] = convert(fresh[i]);
    return Object::list(std::move(out));
}

Object delete_slice(const Object& seq, const SliceIndices& s) {
    const auto old = seq.items_view();
    std::vector<bool> gone(old.size());
    for (std::int64_t i = 0; i < s.count; ++i) gone[static_cast<std::size_t>(s.at(i))] = true;
    std::vector<Object> out;
    for (std::size_t i = 0; i < old.size(); ++i)
        if (!gone[i]) out.push_back(old[i]);
    return Object::list(std::move(out));
}

[[noreturn]] void not_exposed(const Referent& r, const std::string& method) {
    throw UnknownName("AttributeError: method '" + method + "' of <class '" + r.type_id + "'> object is not exposed");
}

Object call_dict(Referent& r, const std::string& m, const Object& a, const Object& kwds) {
    Object& d = r.value;
    if (m == "__getitem__") {
        want_args(a, 1, 1, m);
        try {  // one lookup; const, so that reading never makes the dict unshareable
            return std::as_const(d).at(a[0]);
        } catch (const KeyError&) {
            raise_key_error(a[0]);
        }
    }
    if (m == "__setitem__") {
        want_args(a, 2, 2, m);
        d[a[0]] = a[1];
        return {};
    }
    if (m == "__delitem__") {
        want_args(a, 1, 1, m);
        try {
            d.erase(a[0]);
        } catch (const KeyError&) {
            raise_key_error(a[0]);
        }
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
        try {
            return d.pop(a[0]);
        } catch (const KeyError&) {
            raise_key_error(a[0]);
        }
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
    if (m == "__or__" || m == "__ior__") {  // Python 3.14's DictProxy: d | other, d |= other
        want_args(a, 1, 1, m);
        if (a[0].type() != Object::Type::dict)
            throw TypeError(std::string("unsupported operand type(s) for |: 'dict' and '") + a[0].type_name() + "'");
        if (m == "__ior__") {
            d.update(a[0]);
            return {};
        }
        Object merged = d;
        merged.update(a[0]);
        return merged;
    }
    not_exposed(r, m);
}

Object call_list(Referent& r, const std::string& m, const Object& a, const Object& kwds) {
    Object& l = r.value;
    const auto length = static_cast<std::int64_t>(l.size());
    const auto same = [](const Object& v) { return v; };
    if (m == "__getitem__") {
        want_args(a, 1, 1, m);
        if (const auto s = slice_indices(a[0], length)) return slice_of(l, *s);
        return std::as_const(l).at(a[0]);
    }
    if (m == "__setitem__") {
        want_args(a, 2, 2, m);
        if (const auto s = slice_indices(a[0], length)) {
            l = assign_slice(l, *s, a[1], same, true);
            return {};
        }
        l.at(a[0]) = a[1];
        return {};
    }
    if (m == "__delitem__") {
        want_args(a, 1, 1, m);
        if (const auto s = slice_indices(a[0], length)) {
            l = delete_slice(l, *s);
            return {};
        }
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
    // The rest of Python's ListProxy: l + other, l * n, n * l, l *= n, reversed(l) (as a list).
    if (m == "__add__") {
        want_args(a, 1, 1, m);
        if (a[0].type() != Object::Type::list)
            throw TypeError(std::string("can only concatenate list (not \"") + a[0].type_name() + "\") to list");
        Object sum = l;
        sum.extend(a[0]);
        return sum;
    }
    if (m == "__mul__" || m == "__rmul__" || m == "__imul__") {
        want_args(a, 1, 1, m);
        if (a[0].type() != Object::Type::integer && a[0].type() != Object::Type::boolean)
            throw TypeError(std::string("can't multiply sequence by non-int of type '") + a[0].type_name() + "'");
        const std::int64_t times = a[0].as_int();
        const auto items = l.items_view();
        std::vector<Object> out;
        if (times > 0 && !items.empty()) {
            // A peer's count is bounded by what a reply may carry, not trusted: no list longer
            // than kMaxItems, and no overflow in working that out.
            constexpr std::size_t kMaxItems = std::size_t{1} << 24;
            if (static_cast<std::uint64_t>(times) > kMaxItems / items.size())
                throw Raised(RaisedError{"builtins", "MemoryError", Object::tuple()});
            out.reserve(items.size() * static_cast<std::size_t>(times));
            for (std::int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
        }
        if (m != "__imul__") return Object::list(std::move(out));
        l = Object::list(std::move(out));
        return {};
    }
    if (m == "__reversed__") {
        Object reversed = l;
        reversed.reverse();
        return reversed;
    }
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
        return std::as_const(attrs).at(name());
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

Object call_set(Referent& r, const std::string& m, const Object& a) {
    Object& s = r.value;
    if (m == "add") {
        want_args(a, 1, 1, m);
        s.add(a[0]);
        return {};
    }
    if (m == "discard") {
        want_args(a, 1, 1, m);
        s.discard(a[0]);
        return {};
    }
    if (m == "remove") {
        want_args(a, 1, 1, m);
        if (!s.contains(a[0])) raise_key_error(a[0]);
        s.remove(a[0]);
        return {};
    }
    if (m == "pop") {
        if (s.size() == 0) raise_key_error(Object("pop from an empty set"));
        return s.pop();
    }
    if (m == "__contains__") {
        want_args(a, 1, 1, m);
        return s.contains(a[0]);
    }
    if (m == "__len__") return static_cast<std::int64_t>(s.size());
    if (m == "update") {
        for (const Object& iterable : a.items_view())
            for (const Object& item : iterable) s.add(item);
        return {};
    }
    if (m == "clear") {
        s.clear();
        return {};
    }
    if (m == "copy" || m == "#GETVALUE") return s;
    not_exposed(r, m);
}

// managers.Value: a typecode (not enforced, as in Python) and a value, as [typecode, value].
Object call_value(Referent& r, const std::string& m, const Object& a) {
    Object& v = r.value;
    if (m == "get") return std::as_const(v)[1];
    if (m == "set") {
        want_args(a, 1, 1, m);
        v[1] = a[0];
        return {};
    }
    if (m == "#GETVALUE") return std::as_const(v)[1];
    not_exposed(r, m);
}

// array.array: a typecode that is enforced, and the items, as [typecode, [items...]].
bool array_accepts(const std::string& typecode, const Object& item) {
    if (typecode == "f" || typecode == "d")
        return item.type() == Object::Type::floating || item.type() == Object::Type::integer ||
               item.type() == Object::Type::boolean;
    return item.type() == Object::Type::integer || item.type() == Object::Type::boolean;
}

Object array_item(const std::string& typecode, const Object& item) {
    if (!array_accepts(typecode, item))
        throw TypeError(
            std::string(typecode == "f" || typecode == "d" ? "must be real number" : "an integer is required") +
            ", not " + item.type_name());
    if (typecode == "f" || typecode == "d") return item.as_float();
    // The C type's range, as array.array checks it (l and L are 64 bits, as on Linux).
    const std::int64_t v = item.as_int();
    const auto check = [&](long double lo, long double hi, const char* what) {
        if (v < lo || v > hi) throw OverflowError(what);
    };
    switch (typecode[0]) {
        case 'b':
            check(-128, 127, "signed char is less than minimum");
            break;
        case 'B':
            check(0, 255, "unsigned byte integer is out of range");
            break;
        case 'h':
            check(-32768, 32767, "signed short integer is out of range");
            break;
        case 'H':
            check(0, 65535, "unsigned short is out of range");
            break;
        case 'i':
            check(-2147483648.0L, 2147483647.0L, "signed integer is out of range");
            break;
        case 'I':
            check(0, 4294967295.0L, "unsigned int is out of range");
            break;
        case 'L':
        case 'Q':
            check(0, 9.3e18L, "unsigned long is out of range");
            break;
        default:
            break;
    }
    return v;
}

Object call_array(Referent& r, const std::string& m, const Object& a) {
    const std::string typecode = r.value[0].as_str();
    Object& items = r.value[1];
    const auto index = [&](const char* what) {
        if (a.size() == 0) throw TypeError("an index is required");
        const std::int64_t n = static_cast<std::int64_t>(items.size());
        std::int64_t i = a[0].as_int();
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw IndexError(what);
        return i;
    };
    if (m == "__len__") return static_cast<std::int64_t>(items.size());
    const auto slice = a.size() ? slice_indices(a[0], static_cast<std::int64_t>(items.size())) : std::nullopt;
    if (m == "__getitem__")
        return slice ? slice_of(items, *slice) : std::as_const(items).at(index("array index out of range"));
    if (m == "__setitem__") {
        want_args(a, 2, 2, m);
        if (slice) {
            items = assign_slice(
                items, *slice, a[1], [&](const Object& v) { return array_item(typecode, v); }, false);
            return {};
        }
        const std::int64_t i = index("array assignment index out of range");
        items.at(i) = array_item(typecode, a[1]);
        return {};
    }
    if (m == "#GETVALUE") return items;
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

// An Iterator holds what is left of its items, last first, so that __next__ pops from the back.
Object iterator_value(const Object& items) {
    Object left = Object::list();
    left.extend(items);
    left.reverse();
    return left;
}

// Python's IteratorProxy: __next__ (StopIteration at the end) and close.
Object call_iterator(Referent& r, const std::string& m, const Object& a) {
    if (m == "__next__") {
        want_args(a, 0, 0, m);
        if (r.over) {  // the iterator's mutex is taken before the dict's, never the other way
            // Sticky, as Python's: every later step raises too. (The dict stays while its
            // iterator holds it, so its mutex is never released after it is gone.)
            std::lock_guard lock(r.over->mu);
            if (r.over->value.size() != r.over_size) throw RuntimeError("dictionary changed size during iteration");
        }
        if (r.value.size() == 0) throw Raised(RaisedError{"builtins", "StopIteration", Object::tuple()});
        return r.value.pop();
    }
    if (m == "close") {
        r.value.clear();
        return {};
    }
    if (m == "#GETVALUE")
        throw Raised(RaisedError{"builtins", "TypeError", Object::tuple({"cannot pickle an Iterator"})});
    not_exposed(r, m);
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
    if (type_id == "set") {
        want_args(args, 0, 1, "set");
        Object s = Object::set();
        if (args.size())
            for (const Object& item : args[0]) s.add(item);
        return s;
    }
    if (type_id == "Value") {
        want_args(args, 2, 2, "Value");
        if (args[0].type() != Object::Type::str) throw TypeError("Value's typecode must be a str");
        return Object::list({args[0], args[1]});
    }
    if (type_id == "Array") {
        want_args(args, 2, 2, "array");
        const Object& typecode = args[0];
        static const std::string codes = "bBhHiIlLqQfd";
        if (typecode.type() != Object::Type::str || typecode.as_str().size() != 1 ||
            codes.find(typecode.as_str()) == std::string::npos)
            throw ValueError("bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
        Object items = Object::list();
        for (const Object& item : args[1]) items.append(array_item(typecode.as_str(), item));
        return Object::list({typecode, items});
    }
    if (type_id == "Iterator") {  // Python's: the object given (here, the items of an iterable)
        want_args(args, 1, 1, "Iterator");
        return iterator_value(args[0]);
    }
    throw UnknownName("KeyError: " + repr(Object(type_id)) + " (no such typeid in this manager)");
}

std::shared_ptr<Referent> make_dict_iterator(const std::shared_ptr<Referent>& dict) {
    auto made = std::make_shared<Referent>();
    made->type_id = "Iterator";
    made->value = iterator_value(list_of(dict->value.keys()));
    made->over = dict;
    made->over_size = dict->value.size();
    return made;
}

Object call_referent(Referent& r, const std::string& method, const Object& args, const Object& kwds) {
    if (method == "__repr__" || method == "__str__") {
        if (r.type_id == "Namespace") return namespace_repr(r.value);
        if (r.type_id == "Value") return "Value(" + repr(r.value[0]) + ", " + repr(r.value[1]) + ")";
        if (r.type_id == "Array")
            return "array(" + repr(r.value[0]) + (r.value[1].size() ? ", " + repr(r.value[1]) : std::string()) + ")";
        return repr(r.value);
    }
    if (r.type_id == "dict") return call_dict(r, method, args, kwds);
    if (r.type_id == "list") return call_list(r, method, args, kwds);
    if (r.type_id == "set") return call_set(r, method, args);
    if (r.type_id == "Value") return call_value(r, method, args);
    if (r.type_id == "Array") return call_array(r, method, args);
    if (r.type_id == "Iterator") return call_iterator(r, method, args);
    return call_namespace(r, method, args);
}

}  // namespace polyproc::detail::manager
