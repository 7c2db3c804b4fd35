#include "os.hpp"

#include <algorithm>
#include <climits>
#include <csignal>
#include <mutex>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace polyproc {

void FileDescriptor::reset(int fd) noexcept {
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);  // never retry close on EINTR: the fd is released
    fd_ = fd;
}

FileDescriptor FileDescriptor::dup() const {
    return FileDescriptor(os::check("fcntl(F_DUPFD_CLOEXEC)", [&] { return ::fcntl(fd_, F_DUPFD_CLOEXEC, 0); }));
}

namespace os {

void throw_errno(const char* call, int err) { throw std::system_error(err, std::generic_category(), call); }

void throw_error(std::errc code, const std::string& what) { throw std::system_error(std::make_error_code(code), what); }

std::pair<FileDescriptor, FileDescriptor> pipe() {
    int fds[2];
    check("pipe2", [&] { return ::pipe2(fds, O_CLOEXEC); });
    return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

std::pair<FileDescriptor, FileDescriptor> socketpair() {
    int fds[2];
    check("socketpair", [&] { return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); });
    return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

FileDescriptor open(const char* path, int flags, mode_t mode) {
    return FileDescriptor(check("open", [&] { return ::open(path, flags | O_CLOEXEC, mode); }));
}

FileDescriptor pidfd_open(pid_t pid) {
    return FileDescriptor(static_cast<int>(check("pidfd_open", [&] { return ::syscall(SYS_pidfd_open, pid, 0); })));
}

int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(retry_eintr([&] { return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0); }));
}

bool is_socket(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool is_valid_fd(int fd) { return fd >= 0 && ::fcntl(fd, F_GETFD) != -1; }

bool poll_readable_now(int fd) {
    pollfd p{fd, POLLIN, 0};
    int r = check("poll", [&] { return ::poll(&p, 1, 0); });
    if (r == 1 && (p.revents & POLLNVAL)) throw_errno("poll", EBADF);
    return r == 1;
}

bool wait_readable(int fd, detail::Deadline deadline) {
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, deadline.poll_ms());
        if (r == -1) {
            if (errno == EINTR) continue;  // the deadline keeps counting: no full restart
            throw_errno("poll");
        }
        if (r == 1) {
            if (p.revents & POLLNVAL) throw_errno("poll", EBADF);
            return true;
        }
        if (deadline.expired()) return false;
    }
}

size_t read_full(int fd, std::span<std::byte> buf) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t n = retry_eintr([&] { return ::read(fd, buf.data() + done, buf.size() - done); });
        if (n == -1) throw_errno("read");
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

void write_all(int fd, bool socket, std::span<iovec> parts, const char* call) {
    size_t first = 0;
    while (first < parts.size()) {
        if (parts[first].iov_len == 0) {
            ++first;
            continue;
        }
        const int count = static_cast<int>(std::min<size_t>(parts.size() - first, IOV_MAX));
        ssize_t n;
        if (socket) {
            msghdr msg{};
            msg.msg_iov = parts.data() + first;
            msg.msg_iovlen = static_cast<size_t>(count);
            n = retry_eintr([&] { return ::sendmsg(fd, &msg, MSG_NOSIGNAL); });
        } else {
            n = retry_eintr([&] { return ::writev(fd, parts.data() + first, count); });
        }
        if (n == -1) throw_errno(call);
        auto left = static_cast<size_t>(n);
        while (left > 0 && first < parts.size()) {
            iovec& v = parts[first];
            size_t take = std::min(left, v.iov_len);
            v.iov_base = static_cast<char*>(v.iov_base) + take;
            v.iov_len -= take;
            left -= take;
            if (v.iov_len == 0) ++first;
        }
    }
}

void ignore_sigpipe_once() {
    // Python ignores SIGPIPE so that writing to a closed pipe raises BrokenPipeError. We do the
    // same, but only when the program left SIGPIPE at its default (fatal) disposition.
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
            struct sigaction ign {};
            ign.sa_handler = SIG_IGN;
            ::sigemptyset(&ign.sa_mask);
            ::sigaction(SIGPIPE, &ign, nullptr);
        }
    });
}

}  // namespace os
}  // namespace polyproc
