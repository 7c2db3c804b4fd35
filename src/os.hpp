// src/os.hpp — the thin OS layer. Every syscall polyproc makes goes through here once:
// EINTR is retried in one place, every failure becomes std::system_error naming the call,
// every descriptor is opened close-on-exec and returned as a FileDescriptor.
#pragma once

#include <cerrno>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include <sys/types.h>
#include <sys/uio.h>

#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/timeout.hpp"

namespace polyproc::os {

[[noreturn]] void throw_errno(const char* call, int err = errno);
[[noreturn]] void throw_error(std::errc code, const std::string& what);

// Calls f() until it does not fail with EINTR.
template <class F>
auto retry_eintr(F&& f) {
    for (;;) {
        auto r = f();
        if (!(r == -1 && errno == EINTR)) return r;
    }
}

// Like retry_eintr, but throws std::system_error(call) on any other failure.
template <class F>
auto check(const char* call, F&& f) {
    auto r = retry_eintr(std::forward<F>(f));
    if (r == -1) throw_errno(call);
    return r;
}

std::pair<FileDescriptor, FileDescriptor> pipe();         // {read end, write end}
std::pair<FileDescriptor, FileDescriptor> socketpair();   // AF_UNIX, SOCK_STREAM
FileDescriptor open(const char* path, int flags, mode_t mode = 0);
FileDescriptor pidfd_open(pid_t pid);  // throws; ESRCH when the process is gone
int pidfd_send_signal(int pidfd, int sig);  // 0, or -1 with errno (ESRCH ignored by callers)

bool is_socket(int fd);
bool is_valid_fd(int fd);

// Waits until fd is readable (data, EOF or error). false on timeout. EINTR restarts with the
// remaining time.
bool wait_readable(int fd, detail::Deadline deadline);
bool poll_readable_now(int fd);

// Reads exactly buf.size() bytes. Returns the count read before EOF (== size on success).
size_t read_full(int fd, std::span<std::byte> buf);
// Writes every byte of every iovec (continuing partial writes). For sockets MSG_NOSIGNAL keeps
// a closed peer from raising SIGPIPE; the caller gets EPIPE as std::system_error.
void write_all(int fd, bool socket, std::span<iovec> parts, const char* call);

void ignore_sigpipe_once();

}  // namespace polyproc::os
