// The codec's out-of-line parts: the frame header's checks and messages, type names by id.
#include "polyproc/reduction.hpp"

#include <mutex>
#include <unordered_map>

#include <cereal/details/helpers.hpp>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fork_safety.hpp"

namespace polyproc::detail {

std::uint64_t checksum(std::span<const std::byte> payload) noexcept {
    return XXH3_64bits(payload.data(), payload.size());
}

namespace {
std::mutex names_mutex;
// A fork child (a pool worker forked while another thread decodes) starts with the lock free.
const bool names_atfork = (register_after_fork([]() noexcept { new (&names_mutex) std::mutex(); }), true);
std::unordered_map<std::uint64_t, std::string>& names() {
    static auto* m = new std::unordered_map<std::uint64_t, std::string>();  // outlives static destructors
    return *m;
}
}  // namespace

void remember_type_name(std::uint64_t id, std::string_view name) {
    std::lock_guard lock(names_mutex);
    names().try_emplace(id, name);
}

void throw_header_error(std::span<const std::byte> message, std::uint64_t expected_id, std::string_view expected_name) {
    const std::string want(expected_name);
    if (message.size() >= kMagic.size() && std::memcmp(message.data(), kMagic.data(), kMagic.size()) != 0)
        throw DecodeError("polyproc: cannot decode " + want +
                          ": the message is not a polyproc object (bad magic); was it sent with send_bytes(), "
                          "or by a Python peer? Use recv_bytes() for raw bytes");
    if (message.size() < kHeaderSize)
        throw DecodeError("polyproc: cannot decode " + want + ": message of " + std::to_string(message.size()) +
                          " bytes is shorter than polyproc's " + std::to_string(kHeaderSize) + "-byte header");
    std::uint64_t got = 0;
    std::memcpy(&got, message.data() + 4, 8);
    std::string sent;
    (void)expected_id;
    {
        std::lock_guard lock(names_mutex);
        auto it = names().find(got);
        if (it != names().end()) sent = it->second;
    }
    char idbuf[32];
    std::snprintf(idbuf, sizeof idbuf, "0x%016llx", static_cast<unsigned long long>(got));
    throw DecodeError("polyproc: type mismatch: expected " + want + " but the message holds " +
                      (sent.empty() ? std::string("another type (type id ") + idbuf + ")" : sent));
}

void rethrow_as_decode_error(std::string_view type) {
    try {
        throw;
    } catch (const cereal::Exception& e) {
        throw DecodeError("polyproc: corrupt message decoding " + std::string(type) + ": " + e.what());
    } catch (const std::length_error& e) {
        throw DecodeError("polyproc: corrupt message decoding " + std::string(type) + ": " + e.what());
    } catch (const std::bad_alloc&) {
        throw DecodeError("polyproc: corrupt message decoding " + std::string(type) + ": allocation failed");
    }
}

}  // namespace polyproc::detail
