// A manager channel's shared-memory fast path (manager_mailbox.hpp).
#include "manager_mailbox.hpp"

#include <poll.h>

#include <atomic>
#include <cstring>
#include <limits>

#include "os.hpp"
#include "polyproc/detail/futex_sleepers.hpp"

namespace polyproc::detail::manager {

namespace {
constexpr std::size_t to(Mailbox::Side side) { return side == Mailbox::Side::client ? 0 : 1; }
constexpr Mailbox::Side other(Mailbox::Side side) {
    return side == Mailbox::Side::client ? Mailbox::Side::server : Mailbox::Side::client;
}
constexpr auto kLookForAGonePeer = std::chrono::milliseconds(100);

bool peer_gone(const Connection& socket) {
    pollfd p{socket.fileno(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}
}  // namespace

Mailbox::Mailbox(std::shared_ptr<SharedRegion> region)
    : region_(std::move(region)), shared_(static_cast<Shared*>(region_->data())) {}

void Mailbox::interrupt() noexcept {
    interrupted_->store(true);
    for (std::uint32_t& word : shared_->sent) os::futex_wake(&word, std::numeric_limits<int>::max());
}

Mailbox Mailbox::create() {
    auto region = std::make_shared<SharedRegion>(sizeof(Shared));
    ::new (region->data()) Shared();
    return Mailbox(std::move(region));
}

Mailbox Mailbox::attach(FileDescriptor memfd) {
    return Mailbox(std::make_shared<SharedRegion>(SharedRegion::attach(std::move(memfd), 0, sizeof(Shared))));
}

void Mailbox::send(Side side, Connection& socket, std::string_view message) {
    Shared& s = *shared_;
    const std::size_t peer = to(other(side));
    if (message.size() <= kCapacity) {
        std::memcpy(s.data, message.data(), message.size());
        std::atomic_ref(s.length).store(static_cast<std::uint32_t>(message.size()), std::memory_order_relaxed);
    } else {
        std::atomic_ref(s.length).store(Shared::kOnSocket, std::memory_order_relaxed);
        socket.send_bytes(message);
    }
    std::atomic_ref(s.sent[peer]).fetch_add(1, std::memory_order_seq_cst);  // publishes data and length
    os::futex_wake_sleepers(s.sent[peer], s.sleepers[peer], 1, os::Wake::word_changed);
}

std::vector<std::byte> Mailbox::recv(Side side, Connection& socket, std::size_t max_bytes) {
    Shared& s = *shared_;
    const std::size_t mine = to(side);
    const std::uint32_t expected = received_;
    const auto arrived = [&] {
        return std::atomic_ref(s.sent[mine]).load(std::memory_order_acquire) != expected || interrupted_->load();
    };
    os::WaitStyle style;
    style.sleep_while = expected;
    while (!os::futex_wait_until(s.sent[mine], s.sleepers[mine], arrived, Deadline(Timeout(kLookForAGonePeer)), style))
        if (peer_gone(socket)) throw EOFError("the manager channel's peer went away");
    if (interrupted_->load()) throw EOFError("the manager channel was closed");
    ++received_;
    const std::uint32_t length = std::atomic_ref(s.length).load(std::memory_order_relaxed);
    if (length == Shared::kOnSocket) return socket.recv_bytes(max_bytes);
    if (length > kCapacity || length > max_bytes)
        throw std::runtime_error("a manager mailbox message of " + std::to_string(length) + " bytes (at most " +
                                 std::to_string(std::min(kCapacity, max_bytes)) + ")");
    std::vector<std::byte> message(length);  // a copy: what is read next can no longer change under it
    std::memcpy(message.data(), s.data, length);
    return message;
}

}  // namespace polyproc::detail::manager
