// libFuzzer target: Connection's framing (include/polyproc/connection.hpp, src/connection.cpp), the
// way a peer that has not authenticated yet (or a hostile one) feeds it: recv_bytes with a
// maxlength, recv_bytes_into, and typed recv<T> (the framing, then the codec's header and checksum),
// over a socket whose every byte is the fuzzer's.
//
// The peer's bytes are written into the other end of a socketpair before reading starts, then that
// end is shut for writing: a read past them gets EOF and never waits.
//
// Input layout:
//   byte 0     what to read, repeatedly until something throws: 0 recv_bytes(maxlength),
//              1 recv_bytes_into(a buffer of maxlength bytes), 2 recv<std::string>(),
//              3 recv<std::vector<std::int64_t>>(), others recv_bytes without a maxlength (only
//              for headers that claim at most 1 MiB: larger claims are the caller's to bound)
//   byte 1-2   maxlength (little-endian, at most 65535)
//   the rest   the wire (at most 64 KiB of it)
//
// A thrown exception (mp::EOFError, mp::DecodeError, std::system_error "bad message length"...) is
// fine. A finding is a crash, a sanitizer report, a leak, a hang, or (abort() here) a message longer
// than maxlength accepted, or more bytes returned than were sent.
//
//   build/fuzz/fuzz/framing_fuzzer -max_len=65536 fuzz/corpus/framing   (tools/fuzz)
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "fed_connection.hpp"
#include "polyproc/connection.hpp"
#include "polyproc/detail/fd.hpp"

namespace {

constexpr std::size_t kWireAtMost = 64 * 1024;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "\n*** framing_fuzzer: %s\n", what);
    std::abort();
}

// The length the next header claims (CPython's framing), or SIZE_MAX when it is cut short.
std::uint64_t claimed_length(std::string_view wire) {
    if (wire.size() < 4) return SIZE_MAX;
    std::uint64_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(wire[std::size_t(i)]);
    if (n != 0xffffffffu) return n;
    if (wire.size() < 12) return SIZE_MAX;
    n = 0;
    for (int i = 4; i < 12; ++i) n = (n << 8) | static_cast<unsigned char>(wire[std::size_t(i)]);
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const int mode = data[0];
    const std::size_t maxlength = std::size_t(data[1]) | std::size_t(data[2]) << 8;
    std::string_view wire(reinterpret_cast<const char*>(data) + 3, size - 3);
    wire = wire.substr(0, kWireAtMost);
    if (mode > 3 && claimed_length(wire) > (1u << 20)) return 0;  // only the first header is checked

    FedConnection fed = fed_connection(wire, 4 * int(kWireAtMost));
    polyproc::Connection& conn = fed.conn;

    std::size_t received = 0;
    std::vector<std::byte> into(maxlength);
    try {
        for (int round = 0; round < 64; ++round) {
            switch (mode) {
                case 0: {
                    const auto got = conn.recv_bytes(maxlength);
                    if (got.size() > maxlength) finding("recv_bytes returned more than maxlength");
                    received += got.size();
                    break;
                }
                case 1: {
                    const std::size_t n = conn.recv_bytes_into(std::span<std::byte>(into));
                    if (n > into.size()) finding("recv_bytes_into wrote past its buffer");
                    received += n;
                    break;
                }
                case 2:
                    received += conn.recv<std::string>().size();
                    break;
                case 3:
                    received += conn.recv<std::vector<std::int64_t>>().size() * sizeof(std::int64_t);
                    break;
                default:
                    if (round > 0) return 0;  // a later header may claim gigabytes: not ours to bound
                    received += conn.recv_bytes().size();
                    break;
            }
            if (received > wire.size()) finding("more bytes received than were sent");
        }
    } catch (const std::exception&) {
    }
    return 0;
}
