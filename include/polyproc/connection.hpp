// polyproc/connection.hpp — Pipe, Connection, Listener, Client and wait (Python's
// multiprocessing.connection).
//
// A Connection owns one file descriptor (a socketpair end, a pipe end or a connected socket) and
// moves framed messages over it using CPython's framing byte for byte: a 4-byte big-endian length,
// or ff ff ff ff + an 8-byte length above 2 GiB. So send_bytes/recv_bytes interoperate with a
// Python peer; send<T>/recv<T> carry values through polyproc's codec (reduction.hpp).
//
// Process-safety: a Connection is a move-only handle. Fork children inherit copies of the
// descriptor. Every message is written with one gathered write, which the kernel keeps whole up to
// PIPE_BUF (4096 bytes) on a pipe and up to the socket buffer on a socketpair; beyond that,
// concurrent senders on the same end, and concurrent receivers, must serialize themselves (in
// Python: with a Lock). A Connection object itself is not thread-safe.
//
// SIGPIPE: like Python, polyproc sets SIGPIPE to "ignore" (only if it was at its default) the first
// time a writable pipe Connection is made, so that writing to a closed pipe throws
// std::system_error(EPIPE) instead of killing the process. Sockets never raise SIGPIPE.
//
// Latency: a blocking receive first spins briefly (adaptive, at most ~200 µs) on a non-blocking
// readiness check before sleeping in poll(2). Waking a sleeping process on another core costs
// ~40 µs on our VMs, so this turns a ping-pong round trip from ~85 µs into a few µs, while the
// Connection stays an ordinary descriptor that poll/select/mp::wait and Python peers understand.
//
//   auto [parent_conn, child_conn] = mp::Pipe();
//   mp::Process p([&] { child_conn.send(std::string("hello")); });
//   p.start();
//   std::cout << parent_conn.recv<std::string>() << "\n";
//   p.join();
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <variant>
#include <vector>

#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc {

namespace detail {
// Adaptive spin budget for blocking receives: grows when spinning found data, shrinks when not.
struct SpinPolicy {
    std::chrono::nanoseconds budget{std::chrono::microseconds(50)};
    void on_hit();
    void on_miss();
};
}  // namespace detail

class Connection {
public:
    Connection() noexcept = default;  // a closed connection
    // Takes ownership of fd. mp::ValueError("invalid handle") for a negative fd; mp::ValueError
    // ("at least one of `readable` and `writable` must be True") when both flags are false.
    explicit Connection(FileDescriptor fd, bool readable = true, bool writable = true);
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;

    // Sends one value through the codec (Python: send(obj), pickled).
    template <class T>
    void send(const T& value) {
        POLYPROC_CHECK_SERIALIZABLE(T);
        check_writable("Connection.send");
        auto m = detail::encode(value, scratch_);
        send_message(m.header, m.payload, "Connection.send");
    }

    // A C string (Python: conn.send('hello')) is sent as a std::string: recv<std::string>().
    void send(const char* text) { send(std::string(text)); }

    // Receives one value. mp::EOFError when the other end is closed everywhere; mp::DecodeError
    // when the message holds another type, is corrupt, or was not sent by send<T>.
    template <class T>
    T recv() {
        POLYPROC_CHECK_SERIALIZABLE(T);
        receive_into_buffer("Connection.recv");
        return detail::decode<T>(recv_buffer_);
    }

    // Sends buf[offset, offset + size) as one message. Offsets and sizes are in bytes.
    void send_bytes(std::span<const std::byte> buf, std::size_t offset = 0, std::optional<std::size_t> size = {});
    void send_bytes(std::string_view s) { send_bytes(std::as_bytes(std::span<const char>(s.data(), s.size()))); }
    // Receives one message. A message longer than maxlength throws std::system_error("bad message
    // length") and, as in Python, leaves the connection unusable for reading.
    std::vector<std::byte> recv_bytes(std::optional<std::size_t> maxlength = {});
    // Receives one message into buf at byte offset; returns its size. A message that does not fit
    // is consumed and thrown as mp::BufferTooShort carrying the whole message.
    std::size_t recv_bytes_into(std::span<std::byte> buf, std::size_t offset = 0);

    // True when a message (possibly empty) is waiting or the peer has closed. Default: no waiting.
    bool poll(Timeout timeout = std::chrono::seconds(0));

    void close() noexcept;
    bool closed() const noexcept { return !fd_; }
    bool readable() const noexcept { return readable_; }
    bool writable() const noexcept { return writable_; }
    int fileno() const;

    // Passes an open file descriptor to the peer (SCM_RIGHTS; duplex pipes and AF_UNIX only).
    // Wire-compatible with Python's multiprocessing.reduction.send_handle/recv_handle.
    void send_handle(int fd);
    FileDescriptor recv_handle();

    // Sending to a spawn or forkserver child (detail/inherit.hpp): the child gets a duplicate.
    void reduce_for_child(detail::ChildWriter& w) const {
        w.fd(fileno());
        w.raw(static_cast<std::uint8_t>(readable_ | (writable_ << 1)));
    }
    explicit Connection(detail::ChildReader& r) : Connection(ChildParts(r)) {}

private:
    struct ChildParts {
        explicit ChildParts(detail::ChildReader& r) : fd(r.fd()), flags(r.raw<std::uint8_t>()) {}
        FileDescriptor fd;
        std::uint8_t flags;
    };
    explicit Connection(ChildParts parts) : Connection(std::move(parts.fd), parts.flags & 1, (parts.flags & 2) != 0) {}
    void check_readable(const char* call) const;
    void check_writable(const char* call) const;
    void send_message(std::span<const std::byte> prefix, std::span<const std::byte> payload, const char* call);
    void wait_for_message();
    // Reads one frame header; returns the payload length. Enforces maxlength (poisoning on excess).
    std::uint64_t read_header(std::optional<std::size_t> maxlength, const char* call);
    void read_payload(std::span<std::byte> into, const char* call);
    void receive_into_buffer(const char* call);

    FileDescriptor fd_;
    bool readable_ = false;
    bool writable_ = false;
    bool socket_ = false;
    detail::SpinPolicy spin_;
    std::vector<std::byte> scratch_;      // encode buffer for send<T>
    std::vector<std::byte> recv_buffer_;  // reused by recv<T>
};

// duplex=true: a socketpair, both ends read and write. duplex=false: os.pipe(), the first
// Connection is read-only and the second write-only (Python's order).
std::pair<Connection, Connection> Pipe(bool duplex = true);

// Addresses: a std::string is an AF_UNIX path, or an abstract socket name when it starts with
// '\0'; InetAddress is AF_INET (IPv4), port 0 meaning "any free port" for a Listener.
struct InetAddress {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    friend bool operator==(const InetAddress&, const InetAddress&) = default;
};
using Address = std::variant<std::string, InetAddress>;
std::string to_string(const Address& address);

// Python's Listener(address=None, family=None, backlog=1, authkey=None). With no address, an
// AF_UNIX socket in a fresh private directory under $TMPDIR, both removed by close() in the
// creating process (a fork child closing its copy leaves them). With an authkey,
// accept() runs CPython's mutual HMAC challenge (sha256; legacy MD5 peers accepted) and throws
// mp::AuthenticationError when the peer fails it.
class Listener {
public:
    explicit Listener(std::optional<Address> address = {}, int backlog = 1, std::optional<std::string> authkey = {});
    Listener(Listener&&) noexcept;
    Listener& operator=(Listener&&) noexcept;
    ~Listener();

    Connection accept();
    void close() noexcept;
    bool closed() const noexcept { return !sock_; }
    const Address& address() const { return address_; }
    // Peer address of the last accepted connection ("" for unnamed AF_UNIX peers).
    const std::optional<Address>& last_accepted() const { return last_accepted_; }
    int fileno() const;

private:
    FileDescriptor sock_;
    Address address_;
    std::optional<Address> last_accepted_;
    std::optional<std::string> authkey_;
    std::string unlink_path_;  // filesystem socket to remove on close
    std::string remove_dir_;   // private temp dir to remove on close
    pid_t creator_pid_ = 0;    // only the creating process removes them
};

// Python's Client(address, family=None, authkey=None): a blocking connect, no retries.
Connection Client(const Address& address, std::optional<std::string> authkey = {});

namespace detail {
// Client() with a bound on connect(2) itself (not on the handshake): std::system_error ETIMEDOUT
// when the peer does not answer in time (an unreachable host's address). Empty: Client().
Connection client_within(const Address& address, std::optional<std::string> authkey, Timeout connect_timeout);
}  // namespace detail

// Python's multiprocessing.reduction.DupFd: a file descriptor made sendable. Constructing one
// duplicates `fd` and hands the duplicate to this process's resource sharer (a thread serving an
// abstract AF_UNIX socket to processes of the same user, started on first use) under a random
// 128-bit key.
// The DupFd itself is a small mp::Serializable value: send it in a task, a Queue or a Connection;
// the receiving process calls detach() to fetch its own copy of the descriptor (SCM_RIGHTS). This
// is how a socket accepted after a pool's workers were forked reaches a worker. Each DupFd can be
// detached once; the sender's duplicate is closed when it is fetched, or at the sender's exit.
//   int conn = ::accept(server, nullptr, nullptr);
//   pool.apply_async(talk, mp::DupFd(conn));  ::close(conn);
//   void talk(mp::DupFd h) { mp::FileDescriptor sock = h.detach(); ... }
class DupFd {
public:
    DupFd() = default;  // empty; what decoding starts from
    explicit DupFd(int fd);
    // The descriptor, from the process that made this DupFd. mp::ValueError when empty;
    // mp::EOFError when it was already fetched; std::system_error when the sender is gone.
    FileDescriptor detach() const;

    template <class Archive>
    void serialize(Archive& ar) {
        ar(address_, key_);
    }

private:
    std::string address_;
    std::string key_;
};

// The two halves of CPython's handshake, public as in Python.
void deliver_challenge(Connection& conn, std::string_view authkey);
void answer_challenge(Connection& conn, std::string_view authkey);

// Python's multiprocessing.connection.wait: returns the handles that are ready (readable data or
// EOF; a process sentinel when the process has ended). Empty on timeout; a negative timeout does
// not wait.
std::vector<int> wait(const std::vector<int>& handles, Timeout timeout = {});
inline std::vector<int> wait(std::initializer_list<int> handles, Timeout timeout = {}) {
    return wait(std::vector<int>(handles), timeout);
}
std::vector<Connection*> wait(const std::vector<Connection*>& connections, Timeout timeout = {});

}  // namespace polyproc
