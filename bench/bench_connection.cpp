// bench/bench_connection.cpp — mp::Pipe against the raw descriptors under it.
//
//   * 8-byte round trip: the parent sends 8 bytes, a child echoes them back. polyproc's duplex
//     Pipe (send_bytes/recv_bytes) against a blocking ping-pong over two os pipes and over a
//     socketpair (mp::Pipe's transport).
//   * 1 MiB one-way throughput: a child receives a batch of 1 MiB messages and acknowledges the
//     batch with one small message, so every timed iteration covers delivered bytes only. polyproc's
//     send_bytes + recv_bytes_into (reused buffer) and send_bytes + recv_bytes (allocating) against
//     the same framing written by hand on a socketpair: a 4-byte big-endian length and the payload
//     in one writev, read back exactly into a reused buffer.
//
// The parent and the child are pinned (bench::Placement): the round trips on two CPUs and on one,
// the throughput on two. CPython's figures come from bench/cpython_bench.py.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"

namespace {

using bench::Placement;

constexpr std::size_t kRoundTripSize = 8;
constexpr std::size_t kMessageSize = 1u << 20;                // the throughput benchmarks' messages
constexpr std::size_t kBatch = (64u << 20) / kMessageSize;  // messages per timed iteration (64 MiB)

// An owned raw descriptor.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Fd& operator=(Fd&&) = delete;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() noexcept { bench::close_fd(fd); }
};

std::pair<Fd, Fd> make_pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) bench::throw_errno("pipe2");
    return {Fd(p[0]), Fd(p[1])};
}

std::pair<Fd, Fd> make_socketpair() {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) bench::throw_errno("socketpair");
    return {Fd(s[0]), Fd(s[1])};
}

// ---------------------------------------------------------------------------------------------
// 8-byte round trip

void BM_PipeRoundTrip8_Polyproc(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        auto pipe = mp::Pipe();
        mp::Connection& conn = pipe.first;
        mp::Process child(
            [&conn, cpu = pin.child_cpu()](mp::Connection c) {
                bench::pin_to(cpu);
                conn.close();  // our inherited copy of the parent's end: the parent's close is then EOF
                for (;;) {
                    std::vector<std::byte> m;
                    try {
                        m = c.recv_bytes();
                    } catch (const mp::EOFError&) {
                        return;
                    }
                    c.send_bytes(m);
                }
            },
            std::move(pipe.second));
        child.set_daemon(true);  // killed by the kernel should the benchmark die
        bench::ProcessGuard guard(child, [&conn] { conn.close(); });
        child.start();

        std::array<std::byte, kRoundTripSize> msg{};
        std::memcpy(msg.data(), "pingpong", kRoundTripSize);
        for (auto _ : state) {
            conn.send_bytes(msg);
            std::vector<std::byte> reply = conn.recv_bytes();
            if (reply.size() != kRoundTripSize) throw std::runtime_error("short echo");
            benchmark::DoNotOptimize(reply.data());
        }
        state.SetItemsProcessed(state.iterations());
        conn.close();
        bench::finish_child(state, child);
    });
}

// The echo loop of the raw children: blocking read of exactly 8 bytes, write them back.
void raw_echo(int in, int out) {
    std::array<char, kRoundTripSize> buf{};
    while (bench::read_exact(in, buf.data(), buf.size())) bench::write_exact(out, buf.data(), buf.size());
}

void raw_round_trips(benchmark::State& state, int out, int in) {
    std::array<char, kRoundTripSize> msg{};
    std::memcpy(msg.data(), "pingpong", kRoundTripSize);
    std::array<char, kRoundTripSize> reply{};
    for (auto _ : state) {
        bench::write_exact(out, msg.data(), msg.size());
        if (!bench::read_exact(in, reply.data(), reply.size())) throw std::runtime_error("the echo child is gone");
        benchmark::DoNotOptimize(reply.data());
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_PipeRoundTrip8_RawPipe(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        auto [down_r, down_w] = make_pipe();  // parent -> child
        auto [up_r, up_w] = make_pipe();      // child -> parent
        bench::RawChild child([&] {
            bench::pin_to(pin.child_cpu());
            down_w.reset();
            up_r.reset();
            raw_echo(down_r.fd, up_w.fd);
        });
        bench::Defer stop([&] { down_w.reset(); });  // EOF for the child before it is reaped
        down_r.reset();
        up_w.reset();
        raw_round_trips(state, down_w.fd, up_r.fd);
        down_w.reset();
        bench::finish_child(state, child);
    });
}

// The same over TCP loopback: a connected pair through a listener on 127.0.0.1, Nagle off (as a
// remote manager's connections are used: one small request, one small reply).
std::pair<Fd, Fd> make_tcp_pair() {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (listener.fd < 0) bench::throw_errno("socket");
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listener.fd, 1) != 0 ||
        ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
        bench::throw_errno("bind/listen");
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (client.fd < 0 || ::connect(client.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        bench::throw_errno("connect");
    Fd server(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (server.fd < 0) bench::throw_errno("accept4");
    const int one = 1;
    for (int fd : {client.fd, server.fd}) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return {std::move(client), std::move(server)};
}

// An 8-byte round trip over a connected pair of sockets (`make`), the child echoing on its end.
void raw_socket_round_trips(benchmark::State& state, Placement placement, std::pair<Fd, Fd> (*make)()) {
    bench::run_guarded(state, [&] {
        bench::PinnedPair pin(placement);
        auto [ours, theirs] = make();
        bench::RawChild child([&] {
            bench::pin_to(pin.child_cpu());
            ours.reset();
            raw_echo(theirs.fd, theirs.fd);
        });
        bench::Defer stop([&] { ours.reset(); });
        theirs.reset();
        raw_round_trips(state, ours.fd, ours.fd);
        ours.reset();
        bench::finish_child(state, child);
    });
}

void BM_PipeRoundTrip8_RawSocketpair(benchmark::State& state, Placement placement) {
    raw_socket_round_trips(state, placement, make_socketpair);
}

void BM_PipeRoundTrip8_RawTcp(benchmark::State& state, Placement placement) {
    raw_socket_round_trips(state, placement, make_tcp_pair);
}

// ---------------------------------------------------------------------------------------------
// 1 MiB one-way throughput

enum class Receive { into, allocating };

void polyproc_throughput(benchmark::State& state, Placement placement, Receive how) {
    bench::run_guarded(state, [&] {
        constexpr std::size_t size = kMessageSize, batch = kBatch;
        bench::PinnedPair pin(placement);
        auto pipe = mp::Pipe();
        mp::Connection& conn = pipe.first;
        mp::Process child(
            [&conn, how, cpu = pin.child_cpu()](mp::Connection c) {
                bench::pin_to(cpu);
                conn.close();
                std::vector<std::byte> buf(size);
                const std::array<std::byte, 1> ack{};
                std::size_t count = 0;
                for (;;) {
                    std::size_t n = 0;
                    try {
                        if (how == Receive::into) {
                            n = c.recv_bytes_into(buf);
                        } else {
                            std::vector<std::byte> m = c.recv_bytes();
                            benchmark::DoNotOptimize(m.data());
                            n = m.size();
                        }
                    } catch (const mp::EOFError&) {
                        return;
                    }
                    if (n != size) throw std::runtime_error("unexpected message size");
                    if (++count == batch) {
                        count = 0;
                        c.send_bytes(ack);
                    }
                }
            },
            std::move(pipe.second));
        child.set_daemon(true);
        bench::ProcessGuard guard(child, [&conn] { conn.close(); });
        child.start();

        std::vector<std::byte> payload(size, std::byte{0x5a});
        std::array<std::byte, 16> ack{};
        for (auto _ : state) {
            for (std::size_t i = 0; i < batch; ++i) conn.send_bytes(payload);
            if (conn.recv_bytes_into(ack) != 1) throw std::runtime_error("bad acknowledgement");
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * size));
        state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
        conn.close();
        bench::finish_child(state, child);
    });
}

void BM_PipeThroughput_PolyprocRecvInto(benchmark::State& state, Placement placement) {
    polyproc_throughput(state, placement, Receive::into);
}
void BM_PipeThroughput_PolyprocRecvBytes(benchmark::State& state, Placement placement) {
    polyproc_throughput(state, placement, Receive::allocating);
}

// The same framing by hand on a socketpair: writev(header, payload); read exactly 4 then n bytes.
void BM_PipeThroughput_RawSocketpair(benchmark::State& state, Placement placement) {
    bench::run_guarded(state, [&] {
        constexpr std::size_t size = kMessageSize, batch = kBatch;
        bench::PinnedPair pin(placement);
        auto [ours, theirs] = make_socketpair();
        bench::RawChild child([&] {
            bench::pin_to(pin.child_cpu());
            ours.reset();
            std::vector<char> buf(size);
            std::size_t count = 0;
            for (;;) {
                std::uint32_t header = 0;
                if (!bench::read_exact(theirs.fd, &header, sizeof header)) return;
                const std::size_t n = ntohl(header);
                if (n != size) throw std::runtime_error("unexpected message size");
                if (!bench::read_exact(theirs.fd, buf.data(), n)) throw std::runtime_error("EOF before payload");
                if (++count == batch) {
                    count = 0;
                    bench::write_exact(theirs.fd, "k", 1);
                }
            }
        });
        bench::Defer stop([&] { ours.reset(); });
        theirs.reset();

        std::vector<char> payload(size, 0x5a);
        for (auto _ : state) {
            for (std::size_t i = 0; i < batch; ++i) {
                std::uint32_t header = htonl(static_cast<std::uint32_t>(size));
                std::array<iovec, 2> iov{{{&header, sizeof header}, {payload.data(), payload.size()}}};
                bench::writev_exact(ours.fd, iov.data(), static_cast<int>(iov.size()));
            }
            char ack = 0;
            if (!bench::read_exact(ours.fd, &ack, 1)) throw std::runtime_error("the receiving child is gone");
        }
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * size));
        state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
        ours.reset();
        bench::finish_child(state, child);
    });
}

// Registered as <function>/<placement>, e.g. BM_PipeRoundTrip8_Polyproc/cross_cpu.
const bool registered = [] {
    using Fn = void (*)(benchmark::State&, Placement);
    struct Entry {
        const char* name;
        Fn fn;
        bool same_cpu_too;
        benchmark::TimeUnit unit;
    };
    const Entry entries[] = {
        {"BM_PipeRoundTrip8_Polyproc", BM_PipeRoundTrip8_Polyproc, true, benchmark::kMicrosecond},
        {"BM_PipeRoundTrip8_RawPipe", BM_PipeRoundTrip8_RawPipe, true, benchmark::kMicrosecond},
        {"BM_PipeRoundTrip8_RawSocketpair", BM_PipeRoundTrip8_RawSocketpair, true, benchmark::kMicrosecond},
        {"BM_PipeRoundTrip8_RawTcp", BM_PipeRoundTrip8_RawTcp, false, benchmark::kMicrosecond},
        {"BM_PipeThroughput_PolyprocRecvInto", BM_PipeThroughput_PolyprocRecvInto, false, benchmark::kMillisecond},
        {"BM_PipeThroughput_PolyprocRecvBytes", BM_PipeThroughput_PolyprocRecvBytes, false, benchmark::kMillisecond},
        {"BM_PipeThroughput_RawSocketpair", BM_PipeThroughput_RawSocketpair, false, benchmark::kMillisecond},
    };
    for (Placement placement : {Placement::cross_cpu, Placement::same_cpu}) {
        for (const Entry& e : entries) {
            if (placement == Placement::same_cpu && !e.same_cpu_too) continue;
            bench::register_placed(e.name, e.fn, e.unit, placement);
        }
    }
    return true;
}();

}  // namespace
