// What the fuzz targets that read a socket share: a Connection whose peer has already sent all it
// ever will. The bytes go into the other end of a socketpair before reading starts (what does not
// fit is dropped, never waited for), then that end is shut for writing, so that a read past them
// gets end of file and never waits. The peer end stays open: what the reader sends goes into its
// buffer.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <sys/socket.h>
#include <unistd.h>

#include "polyproc/connection.hpp"
#include "polyproc/detail/fd.hpp"

struct FedConnection {
    polyproc::FileDescriptor peer;
    polyproc::Connection conn;
};

// `peer_buffer`: the peer end's send buffer in bytes (0: the system's).
inline FedConnection fed_connection(std::string_view wire, int peer_buffer = 0) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        std::perror("fuzz: socketpair");
        std::abort();
    }
    if (peer_buffer > 0) ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &peer_buffer, sizeof peer_buffer);
    FedConnection fed{polyproc::FileDescriptor(fds[1]), polyproc::Connection{polyproc::FileDescriptor(fds[0])}};
    while (!wire.empty()) {
        const ssize_t n = ::send(fds[1], wire.data(), wire.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // full (EAGAIN): the rest is dropped
        wire.remove_prefix(static_cast<std::size_t>(n));
    }
    ::shutdown(fds[1], SHUT_WR);
    return fed;
}
