// Interoperability with a real CPython: send_bytes/recv_bytes framing (including the 8-byte header
// above 2 GiB) and the authentication handshake, in both directions (our Listener with a Python
// Client, a Python Listener with our Client). Runs against python3 on PATH (3.11: the legacy MD5
// handshake) and against any 3.12+ interpreter found under pyenv (the {sha256} handshake).
#include <unistd.h>

#include "support.hpp"

namespace {

const std::string kPeer = std::string(POLYPROC_TEST_DIR) + "/python/peer.py";

// Runs the Python peer in a child process (so the fixture kills it if the test fails), with its
// stdout on a one-way pipe.
[[noreturn]] void exec_peer(const std::string& python, const std::vector<std::string>& args) {
    std::vector<char*> argv{const_cast<char*>(python.c_str()), const_cast<char*>(kPeer.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(python.c_str(), argv.data());
    std::_Exit(127);
}

mp::Process start_python(const std::string& python, std::vector<std::string> args,
                         mp::Connection* stdout_to = nullptr) {
    if (stdout_to) {
        auto [r, w] = mp::Pipe(false);
        *stdout_to = std::move(r);
        mp::Process p(
            [](mp::Connection& out, const std::string& interpreter, const std::vector<std::string>& peer_args) {
                ::dup2(out.fileno(), STDOUT_FILENO);
                exec_peer(interpreter, peer_args);
            },
            std::move(w), python, std::move(args));
        p.start();
        return p;
    }
    mp::Process p([](const std::string& interpreter,
                     const std::vector<std::string>& peer_args) { exec_peer(interpreter, peer_args); },
                  python, std::move(args));
    p.start();
    return p;
}

std::string read_line(mp::Connection& r) {
    std::string line;
    char c;
    while (::read(r.fileno(), &c, 1) == 1 && c != '\n') line += c;
    return line;
}

void exchange_messages(mp::Connection& conn) {
    for (std::size_t n : {0ul, 1ul, 100ul, 16384ul, 16385ul, 1ul << 20, 5ul << 20}) {
        std::vector<std::byte> msg(n);
        for (std::size_t i = 0; i < n; ++i) msg[i] = std::byte((i * 31 + n) & 0xff);
        conn.send_bytes(msg);
        EXPECT_EQ(conn.recv_bytes(), msg) << "size " << n;
    }
    conn.send_bytes("quit");
    EXPECT_EQ(bytes_to_string(conn.recv_bytes()).substr(0, 16), "bye from python ");
}

}  // namespace

class PythonInterop : public ProcessTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(PythonInterop, PythonClientTalksToOurListenerWithAuthentication) {
    mp::Listener listener(std::nullopt, 1, std::string("abc"));
    auto py = start_python(GetParam(), {"client", std::get<std::string>(listener.address()), "abc"});
    auto conn = listener.accept();
    exchange_messages(conn);
    py.join();
    EXPECT_EQ(py.exitcode(), 0);
}

TEST_P(PythonInterop, OurClientTalksToAPythonListenerWithAuthentication) {
    mp::Connection out;
    auto py = start_python(GetParam(), {"listener", "s3cret"}, &out);
    const std::string address = read_line(out);
    ASSERT_FALSE(address.empty());
    auto conn = mp::Client(address, std::string("s3cret"));
    exchange_messages(conn);
    py.join();
    EXPECT_EQ(py.exitcode(), 0);
}

TEST_P(PythonInterop, PythonListenerRejectsAWrongKey) {
    mp::Connection out;
    auto py = start_python(GetParam(), {"listener", "right"}, &out);
    const std::string address = read_line(out);
    EXPECT_THROW_WITH(mp::Client(address, std::string("wrong")), mp::AuthenticationError, "digest sent was rejected");
    py.join();
    EXPECT_NE(py.exitcode(), 0);  // Python's accept() raised AuthenticationError
}

INSTANTIATE_TEST_SUITE_P(Interpreters, PythonInterop, ::testing::ValuesIn(python_interpreters()),
                         [](const auto& param_info) { return "python" + std::to_string(param_info.index); });

TEST(PythonInteropBig, MessagesAbove2GiBBothWays) {
    BigMemoryTestLock one_at_a_time;
    mp::Listener listener;
    auto py = start_python(POLYPROC_TEST_PYTHON, {"big", std::get<std::string>(listener.address())});
    auto conn = listener.accept();
    {
        const std::size_t n = (1ull << 31) + 5;
        std::vector<std::byte> big(n, std::byte{0x11});
        big.back() = std::byte{0x22};
        conn.send_bytes(big);
    }
    EXPECT_EQ(bytes_to_string(conn.recv_bytes()), std::to_string((1ull << 31) + 5) + " 17 34");
    {
        auto back = conn.recv_bytes();
        EXPECT_EQ(back.size(), (1ull << 31) + 7);
        EXPECT_EQ(back.front(), std::byte{0x42});
        EXPECT_EQ(back.back(), std::byte{0x43});
    }
    conn.send_bytes("ok");
    py.join();
    EXPECT_EQ(py.exitcode(), 0);
    for (const auto& child : mp::active_children()) child.kill();
}
