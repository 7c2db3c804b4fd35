// libFuzzer target: the reader of a spawn or forkserver child's bootstrap message
// (src/spawn_bootstrap.hpp, read_bootstrap in src/spawn.cpp), the first thing a fresh child reads,
// fed arbitrary bytes. It must accept a well-formed message and refuse anything else with
// mp::DecodeError before the child acts on any of it.
//
// Input layout:
//   byte 0     bit 0: write this program's startup fingerprint at bytes 4..11 of the message (a
//              message from the same program; without it the reader stops at the fingerprint)
//   the rest   the message (what follows the 8-byte total on the socket)
//
// A thrown mp::DecodeError is fine; anything else thrown is a finding, as are a crash, a sanitizer
// report, a leak, a hang, or (abort() here) a message accepted whose parts do not fit in it.
//
//   build/fuzz/fuzz/bootstrap_fuzzer -max_len=65536 fuzz/corpus/bootstrap   (tools/fuzz)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "polyproc/errors.hpp"
#include "spawn_bootstrap.hpp"

namespace {

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "\n*** bootstrap_fuzzer: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::vector<std::byte> message(reinterpret_cast<const std::byte*>(data) + 1,
                                   reinterpret_cast<const std::byte*>(data) + size);
    if ((data[0] & 1) && message.size() >= 12) {
        const std::uint64_t fingerprint = polyproc::detail::startup_objects_fingerprint();
        std::memcpy(message.data() + 4, &fingerprint, sizeof fingerprint);
    }
    const std::size_t length = message.size();
    try {
        const auto b = polyproc::detail::read_bootstrap(std::move(message));
        if (b.bytes.size() != length || b.payload_at > b.bytes.size()) finding("the payload lies outside the message");
        if (b.descriptors == 0) finding("a message without the tracker's descriptor accepted");
    } catch (const polyproc::DecodeError&) {
    } catch (...) {
        finding("read_bootstrap threw something other than mp::DecodeError");
    }
    return 0;
}
