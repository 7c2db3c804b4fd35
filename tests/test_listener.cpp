// connection.hpp: Listener, Client and CPython's authentication handshake (docs/design.md,
// "Connection framing and the handshake").
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

std::string hex(std::string_view s) {
    std::string out;
    char buf[3];
    for (unsigned char c : s) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        out += buf;
    }
    return out;
}

std::string seq(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>(i);
    return s;
}

bool path_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

class ListenerApi : public ProcessTest {};

TEST_F(ListenerApi, DefaultAddressIsAPrivateUnixSocketRemovedOnClose) {
    mp::Listener listener;
    const auto path = std::get<std::string>(listener.address());
    EXPECT_TRUE(path_exists(path));
    EXPECT_FALSE(listener.last_accepted().has_value());
    std::thread client([&] {
        auto c = mp::Client(path);
        c.send(std::string("over unix"));
    });
    auto conn = listener.accept();
    EXPECT_EQ(conn.recv<std::string>(), "over unix");
    client.join();
    ASSERT_TRUE(listener.last_accepted().has_value());
    EXPECT_EQ(std::get<std::string>(*listener.last_accepted()), "");  // unnamed peer, as in Python
    listener.close();
    listener.close();
    EXPECT_FALSE(path_exists(path));
    EXPECT_FALSE(path_exists(path.substr(0, path.rfind('/'))));
    EXPECT_THROW_WITH(listener.accept(), std::system_error, "listener is closed");
}

TEST_F(ListenerApi, AbstractUnixSocket) {
    const std::string name = std::string(1, '\0') + "polyproc-test-" + std::to_string(::getpid());
    mp::Listener listener(name);
    std::thread client([&] { mp::Client(name).send(3); });
    EXPECT_EQ(listener.accept().recv<int>(), 3);
    client.join();
}

TEST_F(ListenerApi, InetOnAnyFreePortWithAChildProcessClient) {
    mp::Listener listener(mp::InetAddress{"127.0.0.1", 0});
    const auto addr = std::get<mp::InetAddress>(listener.address());
    EXPECT_NE(addr.port, 0);
    EXPECT_EQ(mp::to_string(listener.address()), "('127.0.0.1', " + std::to_string(addr.port) + ")");
    mp::Process p(
        [](const std::string& host, std::uint16_t port) {  // an InetAddress is not Serializable: its fields are
            auto c = mp::Client(mp::InetAddress{host, port});
            c.send(std::string("from a child"));
            if (c.recv<int>() != 42) std::_Exit(2);
        },
        addr.host, addr.port);
    p.start();
    auto conn = listener.accept();
    EXPECT_EQ(conn.recv<std::string>(), "from a child");
    conn.send(42);
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(std::get<mp::InetAddress>(*listener.last_accepted()).host, "127.0.0.1");
}

TEST_F(ListenerApi, BindingAnAddressInUseFails) {
    mp::Listener first(mp::InetAddress{"127.0.0.1", 0});
    try {
        mp::Listener second(first.address());
        FAIL() << "second bind succeeded";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::address_in_use);
        EXPECT_NE(std::string(e.what()).find("bind"), std::string::npos);
    }
}

TEST_F(ListenerApi, ClientErrorsAreSystemErrors) {
    mp::InetAddress port_zero_closed;
    {
        mp::Listener l(mp::InetAddress{"127.0.0.1", 0});
        port_zero_closed = std::get<mp::InetAddress>(l.address());
    }
    try {
        mp::Client(port_zero_closed);
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused);
    }
    try {
        mp::Client(std::string("/nonexistent/polyproc.sock"));
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    }
}

TEST_F(ListenerApi, AuthenticatedConnectionSucceedsWithTheSameKey) {
    mp::Listener listener(std::nullopt, 1, std::string("secret"));
    const auto addr = listener.address();
    mp::Process p(
        [](const std::string& path) { mp::Client(path, std::string("secret")).send(std::string("authenticated")); },
        std::get<std::string>(addr));  // the default address: an AF_UNIX path
    p.start();
    EXPECT_EQ(listener.accept().recv<std::string>(), "authenticated");
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ListenerApi, WrongKeyFailsOnBothSides) {
    mp::Listener listener(std::nullopt, 1, std::string("right"));
    const auto addr = listener.address();
    std::string client_error;
    std::thread client([&] {
        try {
            mp::Client(addr, std::string("wrong"));
        } catch (const mp::AuthenticationError& e) {
            client_error = e.what();
        }
    });
    EXPECT_THROW_WITH(listener.accept(), mp::AuthenticationError, "digest received was wrong");
    client.join();
    EXPECT_EQ(client_error, "digest sent was rejected");
}

TEST_F(ListenerApi, EmptyKeyIsARealKey) {
    mp::Listener listener(std::nullopt, 1, std::string());
    const auto addr = listener.address();
    std::thread client([&] { mp::Client(addr, std::string()).send(1); });
    EXPECT_EQ(listener.accept().recv<int>(), 1);
    client.join();
}

TEST_F(ListenerApi, HostileFirstFrameIsRejectedWithoutReadingIt) {
    mp::Listener listener(std::nullopt, 1, std::string("k"));
    const auto addr = listener.address();
    std::thread client([&] {
        auto c = mp::Client(addr);  // no key: does not answer the challenge
        c.send_bytes(std::string(1000, 'x'));
        c.recv_bytes();  // the challenge: stay connected until the server has sent it
    });
    EXPECT_THROW_WITH(listener.accept(), std::system_error, "bad message length");
    client.join();
}

// Deterministic vectors computed with CPython's hmac.
TEST(Handshake, AnswersALegacyChallengeWithRawHmacMd5) {
    auto [server, client] = mp::Pipe();
    server.send_bytes("#CHALLENGE#" + seq(20));
    server.send_bytes("#WELCOME#");
    mp::answer_challenge(client, "abc");
    EXPECT_EQ(hex(bytes_to_string(server.recv_bytes())), "1b373176a84c1b044d9ba09795b53791");
}

TEST(Handshake, AnswersAModernChallengeWithPrefixedSha256) {
    auto [server, client] = mp::Pipe();
    server.send_bytes("#CHALLENGE#{sha256}" + seq(40));
    server.send_bytes("#WELCOME#");
    mp::answer_challenge(client, "abc");
    EXPECT_EQ(hex(bytes_to_string(server.recv_bytes())),
              hex("{sha256}") + "ee2b4cd766c1e0f5eb564525d250361f729d00e3948c83c5651d1cefdb97de31");
}

TEST(Handshake, DeliverChallengeAcceptsALegacyPeersRawMd5Answer) {
    auto [server, client] = mp::Pipe();
    std::thread legacy_peer([&] {
        auto challenge = bytes_to_string(client.recv_bytes());
        ASSERT_EQ(challenge.substr(0, 19), "#CHALLENGE#{sha256}");
        const std::string message = challenge.substr(11);  // the whole 48 bytes, prefix included
        unsigned char mac[16];
        unsigned int len = 0;
        HMAC(EVP_md5(), "abc", 3, reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
        client.send_bytes(std::string(reinterpret_cast<char*>(mac), len));
        EXPECT_EQ(bytes_to_string(client.recv_bytes()), "#WELCOME#");
    });
    EXPECT_NO_THROW(mp::deliver_challenge(server, "abc"));
    legacy_peer.join();
}

TEST(Handshake, MalformedMessagesAreAuthenticationErrors) {
    {
        auto [server, client] = mp::Pipe();
        server.send_bytes("#NOTACHALLENGE#");
        EXPECT_THROW_WITH(mp::answer_challenge(client, "k"), mp::AuthenticationError, "expected challenge");
    }
    {
        auto [server, client] = mp::Pipe();
        server.send_bytes("#CHALLENGE#short");
        EXPECT_THROW_WITH(mp::answer_challenge(client, "k"), mp::AuthenticationError, "challenge too short");
    }
    {
        auto [server, client] = mp::Pipe();
        server.send_bytes("#CHALLENGE#{bogus}" + seq(40));
        EXPECT_THROW_WITH(mp::answer_challenge(client, "k"), mp::AuthenticationError, "unsupported");
    }
    {
        auto [server, client] = mp::Pipe();
        client.send_bytes("{sha256}short");  // pre-sent wrong-length answer
        EXPECT_THROW_WITH(mp::deliver_challenge(server, "k"), mp::AuthenticationError,
                          "expected 'sha256' of length 32 got 5");
        auto challenge = client.recv_bytes();
        EXPECT_EQ(bytes_to_string(client.recv_bytes()), "#FAILURE#");
    }
}
