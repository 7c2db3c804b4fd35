// What rank 0 and a worker rank say to each other on their connection (docs/design.md, "MPI pool
// messages"). Every message is one Connection frame: a kind byte, then its body.
//
//   worker -> rank 0, once, after the handshake:  hello  = kind, Hello (codec)
//   rank 0 -> worker, per pool:   start (PoolStart, codec), tasks (records), close, terminate
//   worker -> rank 0, per pool:   ready | start_failed (text), results (records), stopped,
//                                 broken (text: the worker's local pool broke)
//   either way: ping -> pong (rank 0 pings every second; a worker answers from its reader thread)
//   rank 0 -> worker, at the end: exit
//
// A records body is a run of records, each an 8-byte length then that many bytes: a task record
// (TaskHeader, body) or a result record (ResultHeader, payload), as on one machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail::mpi {

inline constexpr std::uint32_t kProtocolVersion = 1;
// A records message stops growing here (a batch of tasks, of results).
inline constexpr std::size_t kBatchBytes = 1 << 20;

enum class Kind : std::uint8_t {
    hello = 'h',
    start = 'P',
    ready = 'R',
    start_failed = 'E',
    tasks = 'T',
    results = 'r',
    close = 'C',
    terminate = 'K',
    stopped = 'S',
    broken = 'B',
    ping = 'p',
    pong = 'q',
    exit = 'X',
};

struct Hello {
    std::uint32_t version = kProtocolVersion;
    std::int32_t rank = 0;
    std::int32_t pid = 0;
    std::uint64_t program = 0;  // program_hash(): the executable's bytes and the startup libraries
    std::string host;
    template <class A>
    void serialize(A& ar) {
        ar(version, rank, pid, program, host);
    }
};

struct PoolStart {
    std::int64_t task_timeout_ns = -1;  // -1: none
    std::int32_t maxtasksperchild = 0;
    std::vector<std::byte> initializer;  // PoolInitializer::write's bytes; empty: none
    template <class A>
    void serialize(A& ar) {
        ar(task_timeout_ns, maxtasksperchild, initializer);
    }
};

// A message being built: the kind, then records or text.
class Message {
public:
    explicit Message(Kind kind) { bytes_.push_back(static_cast<std::byte>(kind)); }
    void add_record(std::span<const std::byte> head, std::span<const std::byte> rest = {}) {
        const std::uint64_t n = head.size() + rest.size();
        append(std::as_bytes(std::span(&n, 1)));
        append(head);
        append(rest);
    }
    void append(std::span<const std::byte> b) { bytes_.insert(bytes_.end(), b.begin(), b.end()); }
    void append(std::string_view text) { append(std::as_bytes(std::span(text.data(), text.size()))); }
    template <class T>
    void append_value(const T& value) {  // a codec value (Hello, PoolStart)
        const std::size_t at = bytes_.size();
        bytes_.resize(at + encoded_size(value));
        encode_into(value, std::span<std::byte>(bytes_).subspan(at));
    }
    std::span<const std::byte> bytes() const noexcept { return bytes_; }
    std::size_t size() const noexcept { return bytes_.size(); }
    bool has_records() const noexcept { return bytes_.size() > 1; }

private:
    std::vector<std::byte> bytes_;
};

inline Kind kind_of(std::span<const std::byte> message) {
    if (message.empty()) throw DecodeError("polyproc::mpi: an empty message");
    return static_cast<Kind>(message[0]);
}
inline std::string text_of(std::span<const std::byte> message) {
    return std::string(reinterpret_cast<const char*>(message.data()) + 1, message.size() - 1);
}

// Calls f(record) for each record of a records message; mp::ProtocolError for a torn one.
template <class F>
void for_each_record(std::span<const std::byte> message, F&& f) {
    std::span<const std::byte> rest = message.subspan(1);
    while (!rest.empty()) {
        std::uint64_t n;
        if (rest.size() < sizeof n) throw DecodeError("polyproc::mpi: a torn record length");
        std::memcpy(&n, rest.data(), sizeof n);
        rest = rest.subspan(sizeof n);
        if (n > rest.size()) throw DecodeError("polyproc::mpi: a record longer than its message");
        f(rest.first(n));
        rest = rest.subspan(n);
    }
}

}  // namespace polyproc::detail::mpi
