// libFuzzer target: the codec's decoder (include/polyproc/reduction.hpp, detail/archive.hpp), what
// every Queue item, Pool task and result, Connection::recv<T> and spawn bootstrap goes through, fed
// arbitrary bytes as one of several types: strings, vectors, maps, sets, tuples, optionals and
// variants, nested, and a whole message (magic, type id, checksum) as recv<T> reads it.
//
// Input layout:
//   byte 0     which type (below); bit 7: the bytes are a whole message (decode<T>) rather than a
//              payload (decode_payload<T>)
//   the rest   the bytes
//
// A thrown mp::DecodeError is fine (and is the only exception that may leave decode: anything else
// is a finding). A finding is a crash, a sanitizer report, a leak, a hang, an allocation far beyond
// the input (a length field trusted), or (abort() here) a value that does not survive being encoded
// and decoded again.
//
//   build/fuzz/fuzz/codec_fuzzer -max_len=65536 fuzz/corpus/codec   (tools/fuzz)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace mp = polyproc;

namespace {

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "\n*** codec_fuzzer: %s\n", what);
    std::abort();
}

template <class T>
std::vector<std::byte> whole_message_of(const T& value) {
    std::vector<std::byte> scratch;
    const auto message = mp::detail::encode(value, scratch);
    std::vector<std::byte> whole(message.header.begin(), message.header.end());
    whole.insert(whole.end(), message.payload.begin(), message.payload.end());
    return whole;
}

template <class T>
void try_type(std::span<const std::byte> bytes, bool whole_message) {
    T value;
    try {
        value = whole_message ? mp::detail::decode<T>(bytes) : mp::detail::decode_payload<T>(bytes);
    } catch (const mp::DecodeError&) {
        return;
    } catch (...) {
        finding("decode threw something other than mp::DecodeError");
    }
    // What decoded must come back the same through encode and decode: its encoding is the same
    // again (the input's bytes may differ: a map read with a repeated key keeps one of them; and
    // comparing values would call a NaN changed).
    const std::vector<std::byte> once = whole_message_of(value);
    try {
        if (whole_message_of(mp::detail::decode<T>(once)) != once)
            finding("a decoded value changed through encode and decode");
    } catch (const mp::DecodeError&) {
        finding("an encoded value does not decode");
    }
}

using Nested = std::map<std::string, std::vector<std::tuple<std::int32_t, std::optional<std::string>>>>;
using Variant = std::variant<std::int64_t, std::string, std::vector<std::uint8_t>, bool>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const bool whole = (data[0] & 0x80) != 0;
    const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
    switch (data[0] & 0x7f) {
        case 0:
            try_type<std::string>(bytes, whole);
            break;
        case 1:
            try_type<std::vector<std::int32_t>>(bytes, whole);
            break;
        case 2:
            try_type<std::vector<std::string>>(bytes, whole);
            break;
        case 3:
            try_type<std::map<std::int64_t, std::string>>(bytes, whole);
            break;
        case 4:
            try_type<std::set<std::string>>(bytes, whole);
            break;
        case 5:
            try_type<std::tuple<std::int32_t, std::string, bool, double>>(bytes, whole);
            break;
        case 6:
            try_type<std::optional<std::vector<std::string>>>(bytes, whole);
            break;
        case 7:
            try_type<Variant>(bytes, whole);
            break;
        case 8:
            try_type<Nested>(bytes, whole);
            break;
        case 9:
            try_type<std::vector<std::vector<bool>>>(bytes, whole);
            break;
        default:
            break;
    }
    return 0;
}
