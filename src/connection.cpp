// Connection, Pipe and wait. The framing is CPython's (docs/design.md, "Connection framing"); see connection.hpp.
#include "polyproc/connection.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "os.hpp"

namespace polyproc {

namespace {

constexpr std::int64_t kMaxShortLength = 0x7fffffff;
constexpr auto kMinSpin = std::chrono::microseconds(5);
constexpr auto kMaxSpin = std::chrono::microseconds(200);

[[noreturn]] void throw_closed(const char* call) {
    os::throw_error(std::errc::bad_file_descriptor, std::string(call) + ": handle is closed");
}

// Frame header: 4 or 12 bytes.
std::size_t encode_length(std::uint64_t n, std::array<std::byte, 12>& out) {
    auto put_be = [&](std::size_t at, std::uint64_t v, int bytes) {
        for (int i = 0; i < bytes; ++i)
            out[at + static_cast<std::size_t>(i)] = std::byte((v >> (8 * (bytes - 1 - i))) & 0xff);
    };
    if (n > static_cast<std::uint64_t>(kMaxShortLength)) {
        put_be(0, 0xffffffffu, 4);
        put_be(4, n, 8);
        return 12;
    }
    put_be(0, n, 4);
    return 4;
}

}  // namespace

void detail::SpinPolicy::on_hit() { budget = std::min<std::chrono::nanoseconds>(kMaxSpin, budget * 2); }
void detail::SpinPolicy::on_miss() { budget = std::max<std::chrono::nanoseconds>(kMinSpin, budget / 2); }

Connection::Connection(FileDescriptor fd, bool readable, bool writable) {
    if (!fd) throw ValueError("invalid handle");
    if (!readable && !writable) throw ValueError("at least one of `readable` and `writable` must be True");
    socket_ = os::is_socket(fd.get());
    if (!socket_ && writable) os::ignore_sigpipe_once();
    fd_ = std::move(fd);
    readable_ = readable;
    writable_ = writable;
}

void Connection::close() noexcept {
    fd_.reset();
    readable_ = writable_ = false;
}

int Connection::fileno() const {
    if (!fd_) throw_closed("Connection.fileno");
    return fd_.get();
}

void Connection::check_readable(const char* call) const {
    if (!fd_) throw_closed(call);
    if (!readable_) os::throw_error(std::errc::bad_file_descriptor, std::string(call) + ": connection is write-only");
}

void Connection::check_writable(const char* call) const {
    if (!fd_) throw_closed(call);
    if (!writable_) os::throw_error(std::errc::bad_file_descriptor, std::string(call) + ": connection is read-only");
}

void Connection::send_message(std::span<const std::byte> prefix, std::span<const std::byte> payload, const char* call) {
    std::array<std::byte, 12> header{};
    const std::uint64_t n = prefix.size() + payload.size();
    const std::size_t hlen = encode_length(n, header);
    std::array<iovec, 3> parts{{{header.data(), hlen},
                                {const_cast<std::byte*>(prefix.data()), prefix.size()},
                                {const_cast<std::byte*>(payload.data()), payload.size()}}};
    // One gathered write for header and payload at every size. CPython writes the header apart
    // above 16 KiB; the bytes on the wire are identical and we save a syscall. Small messages
    // (<= PIPE_BUF on pipes, <= the socket buffer on sockets) thus reach the kernel in one piece
    // and never interleave with another process's.
    os::write_all(fd_.get(), socket_, parts, call);
}

void Connection::send_bytes(std::span<const std::byte> buf, std::size_t offset, std::optional<std::size_t> size) {
    check_writable("Connection.send_bytes");
    if (offset > buf.size()) throw ValueError("buffer length < offset");
    const std::size_t n = size.value_or(buf.size() - offset);
    if (n > buf.size() - offset) throw ValueError("buffer length < offset + size");
    send_message({}, buf.subspan(offset, n), "Connection.send_bytes");
}

void Connection::wait_for_message() {
    const int fd = fd_.get();
    if (os::poll_readable_now(fd)) return;
    // Spin before sleeping: a sleeping receiver on the other core costs ~40 µs to wake.
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        // Yield rather than pause: when the peer shares our CPU, spinning would keep it from
        // running and replying; when it does not, sched_yield returns at once.
        os::yield_cpu();
        if (os::poll_readable_now(fd)) {
            spin_.on_hit();
            return;
        }
        if (std::chrono::steady_clock::now() - start >= spin_.budget) break;
    }
    spin_.on_miss();
    os::wait_readable(fd, detail::Deadline::never());
}

std::uint64_t Connection::read_header(std::optional<std::size_t> maxlength, const char* call) {
    wait_for_message();
    std::array<std::byte, 8> buf{};
    std::size_t got = os::read_full(fd_.get(), std::span(buf).first(4));
    if (got == 0) throw EOFError();
    if (got < 4) os::throw_error(std::errc::io_error, std::string(call) + ": got end of file during message");
    std::uint32_t raw = 0;
    for (int i = 0; i < 4; ++i) raw = (raw << 8) | std::to_integer<std::uint32_t>(buf[static_cast<std::size_t>(i)]);
    std::uint64_t n = raw;
    if (raw == 0xffffffffu) {
        got = os::read_full(fd_.get(), buf);
        if (got == 0) throw EOFError();
        if (got < 8) os::throw_error(std::errc::io_error, std::string(call) + ": got end of file during message");
        n = 0;
        for (auto b : buf) n = (n << 8) | std::to_integer<std::uint64_t>(b);
    } else if (raw & 0x80000000u) {
        // CPython treats this as an empty message; we call it what it is.
        os::throw_error(std::errc::protocol_error, std::string(call) + ": negative message length " +
                                                       std::to_string(static_cast<std::int32_t>(raw)));
    }
    if (maxlength && n > *maxlength) {
        // Python leaves the payload unread and the connection unusable for reading.
        if (writable_)
            readable_ = false;
        else
            close();
        os::throw_error(std::errc::message_size, std::string(call) + ": bad message length");
    }
    return n;
}

void Connection::read_payload(std::span<std::byte> into, const char* call) {
    const std::size_t got = os::read_full(fd_.get(), into);
    if (got == into.size()) return;
    if (got == 0) throw EOFError();  // CPython: EOF before the payload's first byte is EOFError
    os::throw_error(std::errc::io_error, std::string(call) + ": got end of file during message");
}

// Grows the buffer as bytes arrive, so a corrupt or hostile length cannot make us allocate
// gigabytes before the peer has sent them.
static void read_growing(int fd, std::vector<std::byte>& out, std::uint64_t n, const char* call) {
    constexpr std::uint64_t kFirstChunk = 64ull << 20;
    out.clear();
    std::uint64_t have = 0;
    while (have < n) {
        const std::uint64_t target = std::min<std::uint64_t>(n, std::max<std::uint64_t>(kFirstChunk, have * 2));
        out.resize(static_cast<std::size_t>(target));
        const std::size_t want = static_cast<std::size_t>(target - have);
        const std::size_t got = os::read_full(fd, std::span(out).subspan(static_cast<std::size_t>(have), want));
        have += got;
        if (got < want) {
            if (have == 0) throw EOFError();
            os::throw_error(std::errc::io_error, std::string(call) + ": got end of file during message");
        }
    }
}

void Connection::receive_into_buffer(const char* call) {
    check_readable(call);
    const std::uint64_t n = read_header({}, call);
    read_growing(fd_.get(), recv_buffer_, n, call);
}

std::vector<std::byte> Connection::recv_bytes(std::optional<std::size_t> maxlength) {
    constexpr const char* call = "Connection.recv_bytes";
    check_readable(call);
    const std::uint64_t n = read_header(maxlength, call);
    std::vector<std::byte> out;
    read_growing(fd_.get(), out, n, call);
    return out;
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buf, std::size_t offset) {
    constexpr const char* call = "Connection.recv_bytes_into";
    check_readable(call);
    if (offset > buf.size()) throw ValueError("offset too large");
    const std::uint64_t n = read_header({}, call);
    if (n > buf.size() - offset) {
        std::vector<std::byte> whole;
        read_growing(fd_.get(), whole, n, call);
        throw BufferTooShort(std::move(whole));
    }
    read_payload(buf.subspan(offset, static_cast<std::size_t>(n)), call);
    return static_cast<std::size_t>(n);
}

bool Connection::poll(Timeout timeout) {
    check_readable("Connection.poll");
    if (timeout.non_blocking()) return os::poll_readable_now(fd_.get());
    return os::wait_readable(fd_.get(), detail::Deadline(timeout));
}

void Connection::send_handle(int fd) {
    check_writable("Connection.send_handle");
    if (!socket_)
        os::throw_error(std::errc::not_a_socket, "Connection.send_handle: needs a duplex (socket) connection");
    os::send_fds(fd_.get(), std::span(&fd, 1));  // Python's reduction.sendfds: the same bytes
}

FileDescriptor Connection::recv_handle() {
    check_readable("Connection.recv_handle");
    if (!socket_)
        os::throw_error(std::errc::not_a_socket, "Connection.recv_handle: needs a duplex (socket) connection");
    wait_for_message();
    // Room for a few more than the one asked for, to say how many came (extras are closed).
    os::FdMessage m = os::recv_fd_message(fd_.get(), 4);
    if (m.end_of_file) throw EOFError();
    if (m.received == 0) throw std::runtime_error("Connection.recv_handle: received 0 items of ancdata");
    if (m.truncated || m.received != 1 || m.count != 1)
        throw std::runtime_error("Connection.recv_handle: Invalid data received (" + std::to_string(m.received) +
                                 " descriptors, count byte " + std::to_string(m.count) + ")");
    return std::move(m.fds.front());
}

std::pair<Connection, Connection> Pipe(bool duplex) {
    if (duplex) {
        auto [a, b] = os::socketpair();
        return {Connection(std::move(a)), Connection(std::move(b))};
    }
    auto [r, w] = os::pipe();
    return {Connection(std::move(r), true, false), Connection(std::move(w), false, true)};
}

std::vector<int> wait(const std::vector<int>& handles, Timeout timeout) {
    std::vector<pollfd> fds;
    fds.reserve(handles.size());
    for (int h : handles) fds.push_back({h, POLLIN, 0});
    os::poll_until(fds, detail::Deadline(timeout), "wait: poll");
    std::vector<int> ready;
    for (const auto& p : fds) {
        if (p.revents & POLLNVAL)
            os::throw_error(std::errc::bad_file_descriptor, "wait: invalid handle " + std::to_string(p.fd));
        if (p.revents) ready.push_back(p.fd);
    }
    return ready;
}

std::vector<Connection*> wait(const std::vector<Connection*>& connections, Timeout timeout) {
    std::vector<int> fds;
    fds.reserve(connections.size());
    for (Connection* c : connections) fds.push_back(c->fileno());
    const std::vector<int> ready = wait(fds, timeout);
    std::vector<Connection*> out;
    for (Connection* c : connections)
        if (std::find(ready.begin(), ready.end(), c->fileno()) != ready.end()) out.push_back(c);
    return out;
}

}  // namespace polyproc
