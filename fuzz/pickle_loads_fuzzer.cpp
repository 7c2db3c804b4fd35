// libFuzzer target: mp::pickle_loads on hostile bytes (what a Python peer or a manager's client
// may send). The reader refusing the input with an exception (mp::UnpicklingError, or any other
// std::exception) is what hostile bytes should get. A finding is a crash, a sanitizer report, a
// leak, a hang, or (abort() here) a loaded value that repr() cannot print or that does not survive
// pickle_dumps -> pickle_loads unchanged.
//
//   build/fuzz/fuzz/pickle_loads_fuzzer -max_len=65536 fuzz/corpus/pickle_loads   (tools/fuzz)
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "polyproc/errors.hpp"
#include "polyproc/object.hpp"

namespace {

using polyproc::Object;

// A small pickle may reference one list from many places (memo) and expand to the reader's budget
// of 10 million values; that bound is the reader's business. Checking such a value (printing it,
// pickling it again without the sharing) would cost seconds per input, so the checks below are
// made only for values of at most this cost: one per value, shared parts counted each time they
// appear, plus one per 16 bytes of str and bytes.
constexpr std::uint64_t kCheckAtMost = 200'000;

bool fits(const Object& o, std::uint64_t& left) {
    if (left == 0) return false;
    --left;
    switch (o.type()) {
        case Object::Type::str:
        case Object::Type::bytes: {
            const std::uint64_t cost = (o.type() == Object::Type::str ? o.as_str().size() : o.as_bytes().size()) / 16;
            if (cost > left) return false;
            left -= cost;
            return true;
        }
        case Object::Type::tuple:
        case Object::Type::list:
            for (const Object& item : o.items_view())
                if (!fits(item, left)) return false;
            return true;
        case Object::Type::dict:
            for (const auto& [key, value] : o.items())
                if (!fits(key, left) || !fits(value, left)) return false;
            return true;
        case Object::Type::set:
            for (const Object& item : o)
                if (!fits(item, left)) return false;
            return true;
        case Object::Type::instance:
            return fits(o.instance_args(), left);
        default:
            return true;
    }
}

// The same value, strictly: the same types everywhere (Python's == has 1 == 1.0 == True), floats
// bit for bit (any NaN equals any NaN, which Python's == does not), dicts in the same order.
bool same(const Object& a, const Object& b);

bool same_items(std::span<const Object> a, std::span<const Object> b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same(a[i], b[i])) return false;
    return true;
}

// Sets: Python's equality (by hash), which fails only where a NaN is in them; then item by item in
// iteration order, then (for sets small enough) matching each item anywhere.
bool same_sets(const Object& a, const Object& b) {
    if (a.size() != b.size()) return false;
    if (a == b) return true;
    const std::vector<Object> x(a.begin(), a.end());
    std::vector<Object> y(b.begin(), b.end());
    if (same_items(x, y)) return true;
    if (x.size() > 4096) return true;  // cannot be checked cheaply; let it pass
    for (const Object& item : x) {
        const auto match = std::find_if(y.begin(), y.end(), [&](const Object& other) { return same(item, other); });
        if (match == y.end()) return false;
        y.erase(match);
    }
    return true;
}

bool same(const Object& a, const Object& b) {
    if (a.type() != b.type()) return false;
    switch (a.type()) {
        case Object::Type::none:
            return true;
        case Object::Type::boolean:
            return a.as_bool() == b.as_bool();
        case Object::Type::integer:
            return a.as_int() == b.as_int();
        case Object::Type::floating: {
            const double x = a.as_float(), y = b.as_float();
            return (std::isnan(x) && std::isnan(y)) ||
                   std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y);
        }
        case Object::Type::str:
            return a.as_str() == b.as_str();
        case Object::Type::bytes:
            return a.as_bytes() == b.as_bytes();
        case Object::Type::tuple:
        case Object::Type::list:
            return same_items(a.items_view(), b.items_view());
        case Object::Type::dict: {
            const auto x = a.items(), y = b.items();
            if (x.size() != y.size()) return false;
            for (std::size_t i = 0; i < x.size(); ++i)
                if (!same(x[i].first, y[i].first) || !same(x[i].second, y[i].second)) return false;
            return true;
        }
        case Object::Type::set:
            return same_sets(a, b);
        case Object::Type::instance:
            return a.instance_module() == b.instance_module() && a.instance_name() == b.instance_name() &&
                   same(a.instance_args(), b.instance_args());
    }
    return false;
}

std::string shown(const Object& o) {
    std::string text = polyproc::repr(o);
    if (text.size() > 2000) text = text.substr(0, 2000) + "...";
    return text;
}

[[noreturn]] void finding(const char* what, const std::string& detail) {
    std::fprintf(stderr, "\n*** pickle_loads_fuzzer: %s\n%s\n", what, detail.c_str());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    Object first;
    try {
        first = polyproc::pickle_loads(input);
    } catch (const std::exception&) {
        return 0;  // refused
    }
    std::uint64_t left = kCheckAtMost;
    if (!fits(first, left)) return 0;

    // Whatever the reader made must print, and hash unless it holds a list, dict or set.
    try {
        (void)polyproc::repr(first);
        (void)polyproc::str(first);
    } catch (const std::exception& e) {
        finding("repr()/str() of a loaded value threw", e.what());
    }
    try {
        (void)first.hash();
    } catch (const polyproc::TypeError&) {  // unhashable type
    }

    // Round trip: what was read is written and read back unchanged.
    std::string pickled;
    try {
        pickled = polyproc::pickle_dumps(first);
    } catch (const std::exception& e) {
        finding("pickle_dumps of a loaded value threw", std::string(e.what()) + "\nvalue: " + shown(first));
    }
    Object second;
    try {
        second = polyproc::pickle_loads(std::string_view(pickled));
    } catch (const std::exception& e) {
        finding("pickle_loads refused what pickle_dumps wrote", std::string(e.what()) + "\nvalue: " + shown(first));
    }
    if (!same(first, second))
        finding("the round trip changed the value", "loaded:   " + shown(first) + "\nreloaded: " + shown(second));
    return 0;
}
