// The resource sharer behind mp::DupFd (Python's multiprocessing.resource_sharer): one thread per
// process, started by the first DupFd, serving the registered descriptors on an abstract AF_UNIX
// socket (nothing on the file system to clean up). Only processes of the same user may connect
// (SO_PEERCRED; root may too); a fetcher sends the 128-bit random key of its DupFd, and receives
// the descriptor with SCM_RIGHTS. An unknown or already-fetched key just gets the connection
// closed (mp::EOFError for the fetcher). No HMAC handshake: the key is the capability, and it only
// travels inside messages between the sender and its chosen receiver.
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <unordered_map>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "os.hpp"
#include "polyproc/connection.hpp"
#include "fork_safety.hpp"
#include "polyproc/detail/thread_identity.hpp"

namespace polyproc {
namespace {

class ResourceSharer {
public:
    ResourceSharer()
        : pid_(::getpid()),
          listener_(Address(std::string(1, '\0') + "polyproc-sharer-" + std::to_string(pid_) + "-" + os::random_hex(8)),
                    128) {
        // Returns once the thread runs: a fork right after the first DupFd (the usual pattern:
        // make the DupFd, start the child) must not copy a thread caught inside its start-up
        // allocations, with an allocator lock held (ASan's allocator has no fork handler).
        std::promise<void> running;  // the thread's own: it may still be inside set_value when wait() returns
        auto started = running.get_future();
        detail::helper_thread([this, running = std::move(running)]() mutable {
            detail::keep(detail::Kept::thread, detail::this_thread().tid);
            running.set_value();
            serve();
        }).detach();
        started.wait();
        detail::keep(detail::Kept::fd, listener_.fileno());
    }
    void lock() noexcept { mu_.lock(); }
    void unlock() noexcept { mu_.unlock(); }
    void close_copies_in_child() noexcept {
        ::close(listener_.fileno());
        for (auto& [key, fd] : fds_) ::close(fd.release());
    }
    const Address& address() const { return listener_.address(); }

    std::string add(FileDescriptor fd) {
        std::string key = os::random_hex(16);
        std::lock_guard lock(mu_);
        fds_.emplace(key, std::move(fd));
        return key;
    }

private:
    [[noreturn]] void serve() {
        for (;;) {
            try {
                Connection conn = listener_.accept();
                ucred peer{};
                socklen_t len = sizeof peer;
                if (::getsockopt(conn.fileno(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 ||
                    (peer.uid != ::geteuid() && peer.uid != 0))
                    continue;  // another user's process
                const auto key = conn.recv<std::string>();
                FileDescriptor fd;
                {
                    std::lock_guard lock(mu_);
                    if (auto it = fds_.find(key); it != fds_.end()) {
                        fd = std::move(it->second);
                        fds_.erase(it);
                    }
                }
                if (fd) conn.send_handle(fd.get());
            } catch (...) {
                // A peer that failed the handshake or went away: serve the next one.
            }
        }
    }

    const pid_t pid_;
    Listener listener_;
    std::mutex mu_;
    std::unordered_map<std::string, FileDescriptor> fds_;
};

// This process's sharer, made on first use. Forking is bracketed by fork hooks (fork_safety.hpp): the
// parent holds both locks across fork(), so the child never inherits a half-changed table; the
// child then closes its copies of the listening socket and of the descriptors still waiting (a
// child must not keep its parent's pending sockets open: their peers would never see EOF), and
// forgets the sharer, whose thread does not exist there (the object is left, never destroyed).
std::mutex sharer_mu;
ResourceSharer* current_sharer = nullptr;

void lock_before_fork() noexcept {
    sharer_mu.lock();
    if (current_sharer) current_sharer->lock();
}
void unlock_in_parent() noexcept {
    if (current_sharer) current_sharer->unlock();
    sharer_mu.unlock();
}
// In the fork child, before it does anything else: only close(2) and plain stores.
void reset_in_child() noexcept {
    if (current_sharer) {
        current_sharer->close_copies_in_child();
        current_sharer->unlock();
    }
    current_sharer = nullptr;
    sharer_mu.unlock();
}
const bool atfork_registered = (detail::register_fork_hooks(lock_before_fork, unlock_in_parent, reset_in_child), true);

ResourceSharer& sharer() {
    std::lock_guard lock(sharer_mu);
    if (!current_sharer) current_sharer = new ResourceSharer();
    return *current_sharer;
}

}  // namespace

DupFd::DupFd(int fd) {
    FileDescriptor dup = os::dup_cloexec(fd);
    ResourceSharer& s = sharer();
    address_ = std::get<std::string>(s.address());
    key_ = s.add(std::move(dup));
}

FileDescriptor DupFd::detach() const {
    if (address_.empty()) throw ValueError("DupFd: empty (no descriptor was shared)");
    Connection conn = Client(Address(address_));
    conn.send(key_);
    return conn.recv_handle();
}

}  // namespace polyproc
