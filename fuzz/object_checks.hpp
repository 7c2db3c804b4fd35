// Checks the fuzz targets share (fuzz/*_fuzzer.cpp): whether a value is cheap enough to check,
// strict sameness of two values, a value shortened for a report, and a report that stops the run.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "polyproc/object.hpp"

namespace fuzz {

using polyproc::Object;

// A small pickle may reference one list from many places (memo) and expand to the reader's budget
// of 10 million values; that bound is the reader's business. Checking such a value (printing it,
// pickling it again without the sharing) would cost seconds per input, so the checks below are
// made only for values of at most this cost: one per value, shared parts counted each time they
// appear, plus one per 16 bytes of str and bytes.
constexpr std::uint64_t kCheckAtMost = 200'000;

inline bool fits(const Object& o, std::uint64_t& left) {
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
inline bool same(const Object& a, const Object& b);

inline bool same_items(std::span<const Object> a, std::span<const Object> b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same(a[i], b[i])) return false;
    return true;
}

// Sets: Python's equality (by hash), which fails only where a NaN is in them; then item by item in
// iteration order, then (for sets small enough) matching each item anywhere.
inline bool same_sets(const Object& a, const Object& b) {
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

inline bool same(const Object& a, const Object& b) {
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

inline std::string shown(const Object& o) {
    std::string text = polyproc::repr(o);
    if (text.size() > 2000) text = text.substr(0, 2000) + "...";
    return text;
}

// A finding: says what `target` found and aborts, which libFuzzer reports with the input.
[[noreturn]] inline void finding(const char* target, const char* what, const std::string& detail) {
    std::fprintf(stderr, "\n*** %s: %s\n%s\n", target, what, detail.c_str());
    std::abort();
}

}  // namespace fuzz
