// The bootstrap message of a spawn or forkserver child (spawn.cpp writes and reads it), read and
// checked in one step before the child acts on any of it, so that a corrupt or foreign message is
// a clear error and never half-applied (fuzz/bootstrap_fuzzer.cpp feeds this reader).
//
// The bytes after the 8-byte total: the magic "PSPP", the fingerprint of the libraries loaded at
// startup (parent and child must be the same program), the child's identity (an encoded tuple),
// the libraries the parent dlopen()ed, the entry (a flag and a CodeRef), the resource tracker's
// pid, the payload's size and the number of descriptors that follow the bytes (the tracker's pipe
// first); then the payload, which the entry decodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "polyproc/detail/code_ref.hpp"
#include "process_internal.hpp"

namespace polyproc::detail {

constexpr std::uint32_t kBootstrapMagic = 0x50505350;  // "PSPP"

struct Bootstrap {
    std::string method;
    ChildIdentity who;
    std::vector<std::string> late_libraries;
    std::optional<CodeRef> entry;
    pid_t tracker_pid = 0;
    std::uint64_t descriptors = 0;  // how many follow the bytes (at least the tracker's)
    std::vector<std::byte> bytes;   // the message, which the payload is the end of
    std::size_t payload_at = 0;
};

// Reads `bytes` (without its total); mp::DecodeError naming what is wrong.
Bootstrap read_bootstrap(std::vector<std::byte> bytes);

}  // namespace polyproc::detail
