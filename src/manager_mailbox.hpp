// A manager channel's fast path (polyproc's own): its requests and replies through shared memory
// instead of the socket. A channel carries one request, then its reply, then the next request, so
// one buffer serves both ways; a sequence word per direction says a message is there, and the
// receiver spins briefly before it sleeps on that word (a wake-up across cores costs ~40 µs here,
// a socket round trip ~5 µs, this one 0.1 to 0.6 µs as the cores are placed).
//
// The socket stays beside it: it carries a message that does not fit (64 KiB), and it is how
// either side notices that the other is gone (a sleeper looks every 100 ms; blocking referents
// watch it as before). The server makes the mailbox after the handshake and hands it over the
// socket (SCM_RIGHTS), so only an authenticated client ever maps it; the memfd's size is sealed
// first (a client that could truncate it would crash the server with SIGBUS), and neither side
// keeps the descriptor once it is mapped. The server copies a request out of shared memory before
// it reads it, and checks its length: a client that scribbles on the mailbox harms only its own
// channel.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <string_view>
#include <vector>

#include "polyproc/connection.hpp"
#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/futex_sleepers.hpp"
#include "os.hpp"

namespace polyproc::detail::manager {

// The shared mapping (the start of the memfd). Only the sender of a message bumps its direction's
// `sent`, after writing `length` and the message; the receiver sleeps on that word. A short
// message (most requests and replies) lives in the same cache line as its word and length, so a
// receiver spinning on the word finds all of it in the one line that crosses cores.
struct MailboxLayout {
    static constexpr std::size_t kCapacity = std::size_t{64} << 10;
    static constexpr std::size_t kInline = 56;
    static constexpr std::uint32_t kOnSocket = 0xffffffff;  // `length` when the message took the socket
    struct alignas(64) Direction {
        std::uint32_t sent = 0;    // messages sent this way (wrapping; the futex word)
        std::uint32_t length = 0;  // of the last one: in `short_data` when at most kInline, else in `data`
        std::byte short_data[kInline];
    };
    Direction to[2];  // to the client [0], to the server [1]
    alignas(64) FutexSleepers sleepers[2] = {};
    alignas(64) std::byte data[kCapacity];
};

// The offsets docs/design.md gives.
static_assert(sizeof(MailboxLayout::Direction) == 64 && offsetof(MailboxLayout, sleepers) == 128 &&
              offsetof(MailboxLayout, data) == 384);

class Mailbox {
public:
    static constexpr std::size_t kCapacity = MailboxLayout::kCapacity;
    enum class Side : std::uint8_t { client, server };

    // The server's, for a new channel, and the descriptor to send (then close) it by.
    static std::pair<Mailbox, FileDescriptor> create();
    // The client's; mp::ValueError for a descriptor that is not a sealed mailbox.
    static Mailbox attach(FileDescriptor memfd);

    Mailbox(Mailbox&&) noexcept = default;
    Mailbox& operator=(Mailbox&&) noexcept = default;
    Mailbox(const Mailbox&) = delete;  // `received_` is this end's
    Mailbox& operator=(const Mailbox&) = delete;

    // Sends one message from `side` to the other (over `socket` when it does not fit).
    void send(Side side, Connection& socket, std::string_view message);
    // The next message for `side`. EOFError when the socket shows the peer gone while it waits;
    // ProtocolError-like std::runtime_error for a length that cannot be.
    std::vector<std::byte> recv(Side side, Connection& socket, std::size_t max_bytes);

    // Ends a recv() waiting in this process now (it throws EOFError): a server that stops. From
    // any thread.
    void interrupt() noexcept;

    MailboxLayout& layout() noexcept { return *shared_; }  // for tests that play a hostile peer

private:
    using Shared = MailboxLayout;
    explicit Mailbox(std::shared_ptr<void> mapping);
    std::shared_ptr<void> mapping_;  // munmap when the last copy goes
    Shared* shared_ = nullptr;
    std::uint32_t received_ = 0;  // messages this side took so far
    os::AdaptivePause pause_;     // how long recv() pauses before it yields, learned from its waits
    std::shared_ptr<std::atomic<bool>> interrupted_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace polyproc::detail::manager
