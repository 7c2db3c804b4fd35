// polyproc/reduction.hpp — the codec: how values cross process boundaries (Python: pickle and
// multiprocessing.reduction).
//
// A type is sendable when it satisfies mp::Serializable:
//   * trivially copyable types (int, double, POD structs, std::array<int, N>, durations...):
//     sent as their bytes, with no serialization step and no extra copy;
//   * std::string, vector, array, deque, list, map, unordered_map, set, unordered_set, optional,
//     variant, tuple, pair, chrono durations, bitset, complex — nested as deep as you like;
//   * your own types with a cereal `serialize(Archive&)` (or save/load) function.
// Raw pointers, std::string_view and std::span are refused: they point into this process's memory.
// Sending anything else is a compile-time error that says what to do.
//
// Every encoded message carries a 20-byte header: the magic "PPC1", the 64-bit id of the sent type
// and a checksum of the payload. So `recv<int>()` on a message holding a std::string, a truncated
// message, a corrupted one or bytes from a Python peer each throw mp::DecodeError with a clear
// message, never garbage. The format is polyproc's own (Python's pickle is not spoken here; raw
// send_bytes/recv_bytes interoperate with Python byte for byte).
//
// Process-safety: pure functions, safe from any thread or process.
//
//   std::vector<std::byte> bytes = mp::dumps(std::map<std::string, int>{{"a", 1}});
//   auto m = mp::loads<std::map<std::string, int>>(bytes);
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "polyproc/detail/archive.hpp"
#include "polyproc/detail/type_name.hpp"
#include "polyproc/errors.hpp"

namespace polyproc {

namespace detail {

template <class T>
struct is_reference_wrapper : std::false_type {};
template <class T>
struct is_reference_wrapper<std::reference_wrapper<T>> : std::true_type {};

template <class T>
inline constexpr bool points_into_this_process =
    std::is_pointer_v<T> || std::is_member_pointer_v<T> || std::is_reference_v<T> || is_view<T>::value ||
    is_reference_wrapper<T>::value;

template <class T>
inline constexpr bool is_cereal_serializable =
    cereal::traits::is_output_serializable<T, OutputArchive>::value &&
    cereal::traits::is_input_serializable<T, InputArchive>::value && std::is_default_constructible_v<T>;

// sendable<T>: T itself can be sent, and so can everything a standard template holds inside it, so
// that std::vector<int*> or std::optional<std::string_view> fail with our message, not cereal's.
template <class T>
struct sendable;
template <class... Ts>
using all_sendable = std::conjunction<sendable<Ts>...>;

template <class T>
struct elements_sendable : std::true_type {};  // scalars and user types are judged by themselves
template <class T, class A>
struct elements_sendable<std::vector<T, A>> : sendable<T> {};
template <class T, class A>
struct elements_sendable<std::deque<T, A>> : sendable<T> {};
template <class T, class A>
struct elements_sendable<std::list<T, A>> : sendable<T> {};
template <class T, std::size_t N>
struct elements_sendable<std::array<T, N>> : sendable<T> {};
template <class K, class C, class A>
struct elements_sendable<std::set<K, C, A>> : sendable<K> {};
template <class K, class H, class E, class A>
struct elements_sendable<std::unordered_set<K, H, E, A>> : sendable<K> {};
template <class K, class V, class C, class A>
struct elements_sendable<std::map<K, V, C, A>> : all_sendable<K, V> {};
template <class K, class V, class H, class E, class A>
struct elements_sendable<std::unordered_map<K, V, H, E, A>> : all_sendable<K, V> {};
template <class T>
struct elements_sendable<std::optional<T>> : sendable<T> {};
template <class... Ts>
struct elements_sendable<std::variant<Ts...>> : all_sendable<Ts...> {};
template <class... Ts>
struct elements_sendable<std::tuple<Ts...>> : all_sendable<Ts...> {};
template <class A, class B>
struct elements_sendable<std::pair<A, B>> : all_sendable<A, B> {};

template <class T>
struct cereal_serializable : std::bool_constant<is_cereal_serializable<T>> {};

// std::conjunction instantiates each part only when the ones before it hold: the elements are
// judged before cereal is asked about the container (cereal's traits hard-fail on a container of
// some unsendable types, e.g. std::vector<mp::Lock>, instead of answering false).
template <class T>
struct sendable
    : std::conjunction<std::bool_constant<!points_into_this_process<T> && !std::is_const_v<T> && !std::is_array_v<T>>,
                       elements_sendable<T>, std::disjunction<std::is_trivially_copyable<T>, cereal_serializable<T>>> {
};

}  // namespace detail

template <class T>
concept Serializable = detail::sendable<T>::value;

#define POLYPROC_CHECK_SERIALIZABLE(T)                                                                      \
    static_assert(::polyproc::Serializable<T>,                                                              \
                  "polyproc: this type cannot be sent between processes. Make it trivially copyable, "      \
                  "build it from standard containers (std::string, std::vector, std::map, std::optional, "  \
                  "std::variant, std::tuple, ...), or give it a cereal `template <class Archive> void "     \
                  "serialize(Archive& ar) { ar(field1, field2); }` member. Raw pointers, std::string_view " \
                  "and std::span cannot be sent: they point into this process's memory.")

namespace detail {

inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::array<std::byte, 4> kMagic = {std::byte{'P'}, std::byte{'P'}, std::byte{'C'}, std::byte{'1'}};

std::uint64_t checksum(std::span<const std::byte> payload) noexcept;
// Remembers id -> name so that a type-mismatch error can name what was sent when it is known here.
void remember_type_name(std::uint64_t id, std::string_view name);
[[noreturn]] void throw_header_error(std::span<const std::byte> message, std::uint64_t expected_id,
                                     std::string_view expected_name);
[[noreturn]] void rethrow_as_decode_error(std::string_view type);

struct EncodedMessage {
    std::array<std::byte, kHeaderSize> header;
    std::span<const std::byte> payload;  // points into the value itself or into the scratch buffer
};

template <class T>
std::span<const std::byte> encode_payload(const T& value, std::vector<std::byte>& scratch) {
    if constexpr (std::is_trivially_copyable_v<T>) {
        return std::as_bytes(std::span<const T, 1>(&value, 1));
    } else {
        scratch.clear();
        OutputArchive ar(scratch);
        ar(value);
        return scratch;
    }
}

// The payload's size, then the payload written into memory of exactly that size: how a Queue
// encodes straight into its shared ring. Trivially copyable types are one memcpy; others take a
// counting pass and a writing pass through cereal (cheap next to a copy for large containers,
// whose elements go as one block).
template <class T>
std::size_t encoded_size(const T& value) {
    if constexpr (std::is_trivially_copyable_v<T>) {
        return sizeof(T);
    } else {
        OutputArchive ar(OutputArchive::CountOnly{});
        ar(value);
        return ar.written();
    }
}

template <class T>
void encode_into(const T& value, std::span<std::byte> out) {
    if constexpr (std::is_trivially_copyable_v<T>) {
        std::memcpy(out.data(), &value, sizeof(T));
    } else {
        OutputArchive ar(out);
        ar(value);
        if (ar.written() != out.size())
            throw ValueError(
                "polyproc: a value serialized to fewer bytes than its sizing pass counted "
                "(its serialize function is not deterministic)");
    }
}

// Registers T's name once per process (a function-local static: one cheap check per call).
template <class T>
void remember_type() {
    static const bool done = (remember_type_name(type_id<T>(), type_name<T>()), true);
    (void)done;
}

template <class T>
EncodedMessage encode(const T& value, std::vector<std::byte>& scratch) {
    POLYPROC_CHECK_SERIALIZABLE(T);
    remember_type<T>();
    EncodedMessage m{};
    m.payload = encode_payload(value, scratch);
    const std::uint64_t id = type_id<T>();
    const std::uint64_t sum = checksum(m.payload);
    std::memcpy(m.header.data(), kMagic.data(), 4);
    std::memcpy(m.header.data() + 4, &id, 8);
    std::memcpy(m.header.data() + 12, &sum, 8);
    return m;
}

// Decodes a payload whose header was already verified. Bounds-checked: also safe on hostile bytes.
template <class T>
T decode_payload(std::span<const std::byte> payload) {
    if constexpr (std::is_trivially_copyable_v<T>) {
        if (payload.size() != sizeof(T))
            throw DecodeError("polyproc: message of " + std::to_string(payload.size()) + " bytes cannot hold " +
                              std::string(type_name<T>()) + " (" + std::to_string(sizeof(T)) + " bytes)");
        std::array<std::byte, sizeof(T)> raw;
        std::memcpy(raw.data(), payload.data(), sizeof(T));
        return std::bit_cast<T>(raw);
    } else {
        T value{};
        try {
            InputArchive ar(payload);
            ar(value);
            if (ar.remaining() != 0)
                throw DecodeError("polyproc: corrupt message (" + std::to_string(ar.remaining()) +
                                  " bytes left over after decoding " + std::string(type_name<T>()) + ")");
        } catch (const DecodeError&) {
            throw;
        } catch (...) {
            rethrow_as_decode_error(type_name<T>());
        }
        return value;
    }
}

template <class T>
T decode(std::span<const std::byte> message) {
    POLYPROC_CHECK_SERIALIZABLE(T);
    constexpr std::uint64_t id = type_id<T>();
    remember_type<T>();
    std::uint64_t got_id = 0, got_sum = 0;
    if (message.size() >= kHeaderSize) {
        std::memcpy(&got_id, message.data() + 4, 8);
        std::memcpy(&got_sum, message.data() + 12, 8);
    }
    if (message.size() < kHeaderSize || std::memcmp(message.data(), kMagic.data(), 4) != 0 || got_id != id)
        throw_header_error(message, id, type_name<T>());
    auto payload = message.subspan(kHeaderSize);
    if (checksum(payload) != got_sum)
        throw DecodeError("polyproc: corrupt message: checksum mismatch in a " + std::to_string(message.size()) +
                          "-byte message holding " + std::string(type_name<T>()));
    return decode_payload<T>(payload);
}

}  // namespace detail

// Python's pickle.dumps / pickle.loads, in polyproc's own format (see the top of this file).
template <class T>
std::vector<std::byte> dumps(const T& value) {
    std::vector<std::byte> scratch;
    auto m = detail::encode(value, scratch);
    // memcpy rather than two inserts: GCC 12 warns (falsely) about the second insert.
    std::vector<std::byte> out(m.header.size() + m.payload.size());
    std::memcpy(out.data(), m.header.data(), m.header.size());
    if (!m.payload.empty()) std::memcpy(out.data() + m.header.size(), m.payload.data(), m.payload.size());
    return out;
}

template <class T>
T loads(std::span<const std::byte> message) {
    return detail::decode<T>(message);
}

}  // namespace polyproc
