// libFuzzer target: CPython's authentication handshake, polyproc::deliver_challenge and
// polyproc::answer_challenge (include/polyproc/connection.hpp, src/listener.cpp), against a peer
// whose every byte is the fuzzer's: the challenge, the response and the verdict frames, and their
// framing.
//
// The peer runs without a thread: its bytes are written into one end of a socketpair before the
// handshake starts, then that end is shut for writing, so that a read past them gets EOF and never
// waits (what the handshake sends goes into the peer end's buffer, a few hundred bytes at most).
//
// Input layout:
//   byte 0     flags. bit 0: 0 = the server's order (deliver_challenge, then answer_challenge, as
//              Listener::accept and the manager server do), 1 = the client's (answer_challenge, then
//              deliver_challenge, as Client does).
//              bit 1: raw: the peer's bytes go on the wire as they are (the input frames them itself,
//              the ff ff ff ff + 8-byte length form included); else they are messages [u8 n][n bytes]
//              that this target frames (4-byte big-endian length), the last one taking what is left.
//              bit 2: go on: run the second half even when the first threw (reading what follows a
//              rejected frame); else stop there, as Listener::accept and Client do.
//   byte 1     the authkey's length (its low 6 bits); then the authkey's bytes.
//   the rest   what the peer sends (at most 4 KiB of it; a handshake frame is at most 256 bytes).
//
// A thrown exception (mp::AuthenticationError, mp::EOFError, std::system_error...) is fine. A
// finding is a crash, a sanitizer report, a leak, a hang, or (abort() here) deliver_challenge
// accepting the peer: its challenge holds 40 fresh random bytes the peer never read, so no response
// written in advance can be right.
//
//   build/fuzz/fuzz/handshake_fuzzer -max_len=65536 fuzz/corpus/handshake   (tools/fuzz)
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "fed_connection.hpp"
#include "polyproc/connection.hpp"
#include "polyproc/detail/fd.hpp"

namespace {

constexpr std::size_t kPeerBytesAtMost = 4096;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "\n*** handshake_fuzzer: %s\n", what);
    std::abort();
}

// CPython's framing: a 4-byte big-endian length, then the payload.
void frame(std::string& wire, std::string_view payload) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    for (int shift = 24; shift >= 0; shift -= 8) wire.push_back(static_cast<char>((n >> shift) & 0xff));
    wire.append(payload);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const bool client_order = (data[0] & 1) != 0, raw = (data[0] & 2) != 0, go_on = (data[0] & 4) != 0;
    std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
    const std::size_t key_length = std::min<std::size_t>(data[1] & 63, rest.size());
    const std::string authkey(rest.substr(0, key_length));
    rest.remove_prefix(key_length);
    rest = rest.substr(0, kPeerBytesAtMost);

    std::string wire;
    if (raw) {
        wire = rest;
    } else {
        while (!rest.empty()) {
            const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(rest[0]), rest.size() - 1);
            frame(wire, rest.substr(1, n));
            rest.remove_prefix(1 + n);
        }
    }

    FedConnection fed = fed_connection(wire);  // after its bytes, the handshake reads EOF
    polyproc::Connection& conn = fed.conn;

    const auto deliver = [&] {
        polyproc::deliver_challenge(conn, authkey);
        finding("deliver_challenge accepted a response written before its challenge was sent");
    };
    const auto answer = [&] { polyproc::answer_challenge(conn, authkey); };
    bool first_ok = true;
    try {
        client_order ? answer() : deliver();
    } catch (const std::exception&) {
        first_ok = false;
    }
    if (first_ok || go_on) {
        try {
            client_order ? deliver() : answer();
        } catch (const std::exception&) {
        }
    }
    return 0;
}
