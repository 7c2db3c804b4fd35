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
#include "object_checks.hpp"
#include "polyproc/object.hpp"

namespace {

using polyproc::Object;

using fuzz::fits;
using fuzz::kCheckAtMost;
using fuzz::same;
using fuzz::shown;

[[noreturn]] void finding(const char* what, const std::string& detail) {
    fuzz::finding("pickle_loads_fuzzer", what, detail);
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
