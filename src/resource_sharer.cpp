// The resource sharer behind mp::DupFd (Python's multiprocessing.resource_sharer): one thread per
// process, started by the first DupFd, serving the registered descriptors on an abstract AF_UNIX
// socket (nothing on the file system to clean up). Only processes of the same user may connect
// (SO_PEERCRED; root may too); a fetcher sends the 128-bit random key of its DupFd, and receives
// the descriptor with SCM_RIGHTS. An unknown or already-fetched key just gets the connection
// closed (mp::EOFError for the fetcher). No HMAC handshake: the key is the capability, and it only
// travels inside messages between the sender and its chosen receiver.
#include <atomic>
#include <cstdint>
#include <new>
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

namespace polyproc {
namespace {

class ResourceSharer {
public:
    ResourceSharer()
        : pid_(::getpid()),
          listener_(Address(std::string(1, '\0') + "polyproc-sharer-" + std::to_string(pid_) + "-" + os::random_hex(8)),
                    128) {
        std::thread([this] { serve(); }).detach();
    }
    pid_t pid() const noexcept { return pid_; }
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

// This process's sharer. A fork child starts its own: the parent's thread does not exist there,
// and the parent's object is left as it is (never destroyed; its descriptors are the child's
// inherited copies, closed at exit).
ResourceSharer& sharer() {
    static std::mutex* mu = new std::mutex();
    static ResourceSharer* current = nullptr;
    static std::atomic<pid_t> owner{0};
    const pid_t me = ::getpid();
    if (const pid_t o = owner.load(); o != 0 && o != me) {
        new (mu) std::mutex();  // a fork child: another thread may have held it at fork time
        owner = 0;
    }
    std::lock_guard lock(*mu);
    if (!current || current->pid() != me) {
        current = new ResourceSharer();
        owner = me;
    }
    return *current;
}

}  // namespace

DupFd::DupFd(int fd) {
    FileDescriptor dup(os::check("fcntl(F_DUPFD_CLOEXEC)", [fd] { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }));
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
