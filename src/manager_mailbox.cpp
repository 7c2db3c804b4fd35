// A manager channel's shared-memory fast path (manager_mailbox.hpp).
#include "manager_mailbox.hpp"

#include <fcntl.h>

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
}  // namespace

Mailbox::Mailbox(std::shared_ptr<void> mapping)
    : mapping_(std::move(mapping)), shared_(static_cast<Shared*>(mapping_.get())) {}

namespace {
std::shared_ptr<void> map_mailbox(int fd) {
    void* p = os::map_shared_fd(fd, sizeof(MailboxLayout));
    return std::shared_ptr<void>(p, [](void* q) { os::unmap(q, sizeof(MailboxLayout)); });
}
}  // namespace

std::pair<Mailbox, FileDescriptor> Mailbox::create() {
    FileDescriptor fd = os::memfd_create("polyproc-mailbox", true);
    os::ftruncate(fd.get(), sizeof(Shared));
    os::seal_size(fd.get());
    Mailbox mailbox(map_mailbox(fd.get()));
    ::new (mailbox.shared_) Shared();
    return {std::move(mailbox), std::move(fd)};
}

Mailbox Mailbox::attach(FileDescriptor memfd) {
    // Only a file that can no longer change size is safe to keep mapped.
    const int seals = ::fcntl(memfd.get(), F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
        os::fstat_size(memfd.get()) != static_cast<off_t>(sizeof(Shared)))
        throw ValueError("the manager sent a mailbox that is not a sealed file of the expected size");
    return Mailbox(map_mailbox(memfd.get()));  // the descriptor closes here; the mapping stays
}

void Mailbox::interrupt() noexcept {
    interrupted_->store(true);
    for (Shared::Direction& way : shared_->to) {
        try {
            os::futex_wake(&way.sent, std::numeric_limits<int>::max());
        } catch (...) {  // a sleeper then notices within its 100 ms slice
        }
    }
}

void Mailbox::send(Side side, Connection& socket, std::string_view message) {
    Shared& s = *shared_;
    const std::size_t peer = to(other(side));
    Shared::Direction& way = s.to[peer];
    std::uint32_t length = Shared::kOnSocket;
    if (message.size() <= Shared::kInline) {
        std::memcpy(way.short_data, message.data(), message.size());
        length = static_cast<std::uint32_t>(message.size());
    } else if (message.size() <= kCapacity) {
        std::memcpy(s.data, message.data(), message.size());
        length = static_cast<std::uint32_t>(message.size());
    }
    std::atomic_ref(way.length).store(length, std::memory_order_relaxed);
    std::atomic_ref(way.sent).fetch_add(1, std::memory_order_seq_cst);  // publishes the message and length
    os::futex_wake_sleepers(way.sent, s.sleepers[peer], 1, os::Wake::word_changed);
    // After the word: a message larger than the socket's buffer is written while the peer reads it.
    if (length == Shared::kOnSocket) socket.send_bytes(message);
}

std::vector<std::byte> Mailbox::recv(Side side, Connection& socket, std::size_t max_bytes) {
    Shared& s = *shared_;
    const std::size_t mine = to(side);
    Shared::Direction& way = s.to[mine];
    const std::uint32_t expected = received_;
    const auto arrived = [&] {
        return std::atomic_ref(way.sent).load(std::memory_order_acquire) != expected || interrupted_->load();
    };
    os::WaitStyle style;
    style.sleep_while = expected;
    style.pause = &pause_;
    while (!os::futex_wait_until(way.sent, s.sleepers[mine], arrived, Deadline(Timeout(kLookForAGonePeer)), style)) {
        if (os::peer_hung_up(socket.fileno())) throw EOFError("the manager channel's peer went away");
        style.pause = nullptr;  // an idle channel's later slices say nothing of how long an answer takes
    }
    if (interrupted_->load()) throw EOFError("the manager channel was closed");
    ++received_;
    const std::uint32_t length = std::atomic_ref(way.length).load(std::memory_order_relaxed);
    if (length == Shared::kOnSocket) return socket.recv_bytes(max_bytes);
    if (length > kCapacity || length > max_bytes)
        throw std::runtime_error("a manager mailbox message of " + std::to_string(length) + " bytes (at most " +
                                 std::to_string(std::min(kCapacity, max_bytes)) + ")");
    // A copy: what is read next can no longer change under it.
    const std::byte* from = length <= Shared::kInline ? way.short_data : s.data;
    return std::vector<std::byte>(from, from + length);
}

}  // namespace polyproc::detail::manager
