// Listener, Client and CPython's authentication handshake (docs/design.md, "Connection framing
// and the handshake"). We speak the 3.12+ protocol ("{sha256}" challenges) and accept the legacy
// raw HMAC-MD5 answers that <= 3.11 peers send, which is exactly what CPython 3.12+ itself does.
// An empty authkey is a real key, as in 3.13+.
#include <array>
#include <cstdlib>
#include <cstring>
#include <random>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "os.hpp"
#include "polyproc/connection.hpp"

namespace polyproc {

namespace {

constexpr std::string_view kChallenge = "#CHALLENGE#";
constexpr std::string_view kWelcome = "#WELCOME#";
constexpr std::string_view kFailure = "#FAILURE#";
constexpr std::size_t kMessageLength = 40;
constexpr std::size_t kMaxHandshakeFrame = 256;

std::string as_string(const std::vector<std::byte>& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Python's repr() of the first bytes of a message, for error texts.
std::string bytes_repr(std::string_view s) {
    std::string out = "b'";
    for (unsigned char c : s.substr(0, 64)) {
        if (c >= 32 && c < 127 && c != '\'' && c != '\\')
            out += static_cast<char>(c);
        else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out + (s.size() > 64 ? "'..." : "'");
}

const EVP_MD* digest_by_python_name(std::string_view name) {
    if (name == "md5") return EVP_md5();
    if (name == "sha256") return EVP_sha256();
    if (name == "sha384") return EVP_sha384();
    if (name == "sha3_256") return EVP_sha3_256();
    if (name == "sha3_384") return EVP_sha3_384();
    return nullptr;
}

std::string hmac(std::string_view digest, std::string_view key, std::string_view msg) {
    const EVP_MD* md = digest_by_python_name(digest);
    if (!md) throw AuthenticationError("response_digest='" + std::string(digest) + "' unsupported");
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int len = 0;
    static const char empty = 0;  // OpenSSL wants a non-null key pointer even for an empty key
    if (!HMAC(md, key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data(), &len))
        throw AuthenticationError("HMAC computation failed");
    return std::string(reinterpret_cast<const char*>(out.data()), len);
}

// CPython's _get_digest_name_and_payload (its parsing rule, followed exactly).
std::pair<std::string, std::string_view> digest_name_and_payload(std::string_view msg) {
    if (msg.size() == 20 || msg.size() == 16) return {"md5", msg};  // legacy
    if (!msg.empty() && msg[0] == '{') {
        const auto close = msg.substr(0, 10).find('}', 1);
        if (close != std::string_view::npos) {
            std::string name(msg.substr(1, close - 1));
            if (digest_by_python_name(name)) return {name, msg.substr(close + 1)};
        }
    }
    throw AuthenticationError("unsupported message length, missing digest prefix, or unsupported digest: message=" +
                              bytes_repr(msg));
}

// The challenge nonce: the kernel's CSPRNG, as Python's os.urandom.
std::string random_bytes(std::size_t n) {
    std::string s(n, '\0');
    os::random_bytes(std::as_writable_bytes(std::span(s)));
    return s;
}

}  // namespace

void deliver_challenge(Connection& conn, std::string_view authkey) {
    const std::string message = "{sha256}" + random_bytes(kMessageLength);
    conn.send_bytes(std::string(kChallenge) + message);
    const std::string response = as_string(conn.recv_bytes(kMaxHandshakeFrame));
    try {
        auto [name, mac] = digest_name_and_payload(response);
        const std::string expected = hmac(name, authkey, message);
        if (expected.size() != mac.size())
            throw AuthenticationError("expected '" + name + "' of length " + std::to_string(expected.size()) + " got " +
                                      std::to_string(mac.size()));
        if (CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0)
            throw AuthenticationError("digest received was wrong");
    } catch (const AuthenticationError&) {
        try {
            conn.send_bytes(kFailure);
        } catch (const std::system_error&) {  // the peer may already be gone; the verdict stands
        }
        throw;
    }
    conn.send_bytes(kWelcome);
}

void answer_challenge(Connection& conn, std::string_view authkey) {
    const std::string m = as_string(conn.recv_bytes(kMaxHandshakeFrame));
    if (m.compare(0, kChallenge.size(), kChallenge) != 0)
        throw AuthenticationError("Protocol error, expected challenge: message=" + bytes_repr(m));
    const std::string_view body = std::string_view(m).substr(kChallenge.size());
    if (body.size() < 20) throw AuthenticationError("challenge too short: " + std::to_string(body.size()) + " bytes");
    auto [name, payload] = digest_name_and_payload(body);
    (void)payload;
    if (body.size() == 20)
        conn.send_bytes(hmac("md5", authkey, body));  // legacy peer: raw HMAC-MD5
    else
        conn.send_bytes("{" + name + "}" + hmac(name, authkey, body));
    if (as_string(conn.recv_bytes(kMaxHandshakeFrame)) != kWelcome)
        throw AuthenticationError("digest sent was rejected");
}

std::string to_string(const Address& address) {
    if (const auto* in = std::get_if<InetAddress>(&address))
        return "('" + in->host + "', " + std::to_string(in->port) + ")";
    const auto& path = std::get<std::string>(address);
    if (!path.empty() && path[0] == '\0') return "'\\0" + path.substr(1) + "'";
    return "'" + path + "'";
}

namespace {

struct SockAddr {
    sockaddr_storage storage{};
    socklen_t len = 0;
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

SockAddr make_sockaddr(const Address& address) {
    SockAddr sa;
    if (const auto* path = std::get_if<std::string>(&address)) {
        auto* un = reinterpret_cast<sockaddr_un*>(&sa.storage);
        un->sun_family = AF_UNIX;
        if (path->empty()) throw ValueError("address type of '' unrecognized");
        if (path->size() >= sizeof(un->sun_path))
            os::throw_error(std::errc::filename_too_long, "AF_UNIX path too long: " + to_string(address));
        std::memcpy(un->sun_path, path->data(), path->size());
        // Abstract names are counted exactly; filesystem paths include their terminating NUL.
        sa.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path->size() + ((*path)[0] == '\0' ? 0 : 1));
        return sa;
    }
    const auto& in = std::get<InetAddress>(address);
    if (in.host.empty()) {  // Python's '': every interface to bind, this host to connect to
        auto* any = reinterpret_cast<sockaddr_in*>(&sa.storage);
        any->sin_family = AF_INET;
        any->sin_addr.s_addr = htonl(INADDR_ANY);
        any->sin_port = htons(in.port);
        sa.len = sizeof(sockaddr_in);
        return sa;
    }
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(in.host.c_str(), nullptr, &hints, &res); rc != 0 || !res)
        throw std::system_error(std::make_error_code(std::errc::address_not_available),
                                "getaddrinfo(" + in.host + "): " + ::gai_strerror(rc));
    std::memcpy(&sa.storage, res->ai_addr, res->ai_addrlen);
    sa.len = res->ai_addrlen;
    ::freeaddrinfo(res);
    reinterpret_cast<sockaddr_in*>(&sa.storage)->sin_port = htons(in.port);
    return sa;
}

Address address_from(const sockaddr_storage& st, socklen_t len) {
    if (st.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&st);
        char host[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return InetAddress{host, ntohs(in->sin_port)};
    }
    const auto* un = reinterpret_cast<const sockaddr_un*>(&st);
    const std::size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return std::string();
    if (un->sun_path[0] == '\0') return std::string(un->sun_path, n);
    return std::string(un->sun_path, strnlen(un->sun_path, n));
}

FileDescriptor make_socket(const Address& address) {
    const int family = std::holds_alternative<InetAddress>(address) ? AF_INET : AF_UNIX;
    return FileDescriptor(os::check("socket", [&] { return ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0); }));
}

}  // namespace

Listener::Listener(std::optional<Address> address, int backlog, std::optional<std::string> authkey)
    : authkey_(std::move(authkey)), creator_pid_(::getpid()) {
    if (!address) {
        const char* tmp = std::getenv("TMPDIR");
        std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/polyproc-XXXXXX";
        if (!::mkdtemp(dir.data())) os::throw_errno("mkdtemp");
        remove_dir_ = dir;
        address = remove_dir_ + "/listener-" + os::random_hex(6);
    }
    try {
        sock_ = make_socket(*address);
        const int one = 1;
        os::check("setsockopt(SO_REUSEADDR)",
                  [&] { return ::setsockopt(sock_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); });
        SockAddr sa = make_sockaddr(*address);
        os::check("bind", [&] { return ::bind(sock_.get(), sa.get(), sa.len); });
        if (const auto* path = std::get_if<std::string>(&*address); path && (*path)[0] != '\0') unlink_path_ = *path;
        os::check("listen", [&] { return ::listen(sock_.get(), backlog); });
        sockaddr_storage st{};
        socklen_t len = sizeof st;
        os::check("getsockname", [&] { return ::getsockname(sock_.get(), reinterpret_cast<sockaddr*>(&st), &len); });
        address_ = std::holds_alternative<InetAddress>(*address) ? address_from(st, len) : *address;
    } catch (...) {
        close();
        throw;
    }
}

Listener::Listener(Listener&& o) noexcept
    : sock_(std::move(o.sock_)),
      address_(std::move(o.address_)),
      last_accepted_(std::move(o.last_accepted_)),
      authkey_(std::move(o.authkey_)),
      unlink_path_(std::exchange(o.unlink_path_, {})),
      remove_dir_(std::exchange(o.remove_dir_, {})),
      creator_pid_(o.creator_pid_) {}

Listener& Listener::operator=(Listener&& o) noexcept {
    if (this != &o) {
        close();
        sock_ = std::move(o.sock_);
        address_ = std::move(o.address_);
        last_accepted_ = std::move(o.last_accepted_);
        authkey_ = std::move(o.authkey_);
        unlink_path_ = std::exchange(o.unlink_path_, {});
        remove_dir_ = std::exchange(o.remove_dir_, {});
        creator_pid_ = o.creator_pid_;
    }
    return *this;
}

Listener::~Listener() { close(); }

void Listener::close() noexcept {
    sock_.reset();
    // Only the creating process removes the socket file: a fork child closing its copy must not
    // pull the address from under the parent (Python does the same).
    if (creator_pid_ == ::getpid()) {
        if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
        if (!remove_dir_.empty()) ::rmdir(remove_dir_.c_str());
    }
    unlink_path_.clear();
    remove_dir_.clear();
}

int Listener::fileno() const {
    if (!sock_) os::throw_error(std::errc::bad_file_descriptor, "Listener.fileno: listener is closed");
    return sock_.get();
}

Connection Listener::accept() {
    if (!sock_) os::throw_error(std::errc::bad_file_descriptor, "Listener.accept: listener is closed");
    sockaddr_storage st{};
    socklen_t len = sizeof st;
    FileDescriptor fd(os::check("accept4", [&] {
        len = sizeof st;
        return ::accept4(sock_.get(), reinterpret_cast<sockaddr*>(&st), &len, SOCK_CLOEXEC);
    }));
    last_accepted_ = address_from(st, len);
    Connection conn(std::move(fd));
    if (authkey_) {
        deliver_challenge(conn, *authkey_);
        answer_challenge(conn, *authkey_);
    }
    return conn;
}

Connection Client(const Address& address, std::optional<std::string> authkey) {
    return detail::client_within(address, std::move(authkey), {});
}

namespace detail {

Connection client_within(const Address& address, std::optional<std::string> authkey, Timeout connect_timeout) {
    FileDescriptor fd = make_socket(address);
    SockAddr sa = make_sockaddr(address);
    // With a bound, connect(2) runs non-blocking and is waited for; without one, it blocks, and
    // one interrupted by a signal continues in the background: wait for it rather than retry.
    const int flags = os::check("fcntl", [&] { return ::fcntl(fd.get(), F_GETFL); });
    if (connect_timeout) os::check("fcntl", [&] { return ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK); });
    if (::connect(fd.get(), sa.get(), sa.len) == -1) {
        if (errno != EINTR && errno != EINPROGRESS) os::throw_errno("connect");
        pollfd p{fd.get(), POLLOUT, 0};
        if (os::poll_until(std::span(&p, 1), Deadline(connect_timeout), "poll") == 0)
            os::throw_errno("connect", ETIMEDOUT);
        int err = 0;
        socklen_t l = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) os::throw_errno("connect", err);
    }
    if (connect_timeout) os::check("fcntl", [&] { return ::fcntl(fd.get(), F_SETFL, flags); });
    Connection conn(std::move(fd));
    if (authkey) {
        answer_challenge(conn, *authkey);
        deliver_challenge(conn, *authkey);
    }
    return conn;
}

}  // namespace detail

}  // namespace polyproc
