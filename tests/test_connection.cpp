// connection.hpp: Pipe, Connection, send_handle, wait. (Listener/Client: test_listener.cpp;
// interoperability with a real python3: test_python_interop.cpp.)
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

void write_raw(mp::Connection& c, std::initializer_list<unsigned char> bytes) {
    std::vector<unsigned char> v(bytes);
    ASSERT_EQ(::write(c.fileno(), v.data(), v.size()), static_cast<ssize_t>(v.size()));
}

std::error_code code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::system_error& e) {
        return e.code();
    }
    return {};
}

}  // namespace

class ConnectionApi : public ProcessTest {};

TEST_F(ConnectionApi, DuplexPipeCarriesValuesBothWays) {
    auto [a, b] = mp::Pipe();
    EXPECT_TRUE(a.readable() && a.writable() && b.readable() && b.writable());
    mp::Process p(
        [](mp::Connection& conn) {
            auto v = conn.recv<std::vector<int>>();
            int sum = 0;
            for (int x : v) sum += x;
            conn.send(sum);
            conn.send(std::string("done"));
        },
        std::move(b));
    p.start();
    a.send(std::vector<int>{1, 2, 3, 4});
    EXPECT_EQ(a.recv<int>(), 10);
    EXPECT_EQ(a.recv<std::string>(), "done");
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ConnectionApi, StringLiteralsAreSentAsStdString) {
    auto [a, b] = mp::Pipe();
    a.send("hello");
    const char* text = "world";
    a.send(text);
    EXPECT_EQ(b.recv<std::string>(), "hello");
    EXPECT_EQ(b.recv<std::string>(), "world");
}

TEST_F(ConnectionApi, OneWayPipeHasPythonsOrderAndDirections) {
    auto [r, w] = mp::Pipe(false);
    EXPECT_TRUE(r.readable());
    EXPECT_FALSE(r.writable());
    EXPECT_FALSE(w.readable());
    EXPECT_TRUE(w.writable());
    w.send(7);
    EXPECT_EQ(r.recv<int>(), 7);
    EXPECT_THROW_WITH(r.send(1), std::system_error, "connection is read-only");
    EXPECT_THROW_WITH(w.recv<int>(), std::system_error, "connection is write-only");
    EXPECT_THROW_WITH(w.poll(), std::system_error, "connection is write-only");
    EXPECT_THROW_WITH(w.recv_bytes(), std::system_error, "connection is write-only");
}

TEST_F(ConnectionApi, MessagesNeverMerge) {
    auto [a, b] = mp::Pipe();
    a.send_bytes("one");
    a.send_bytes("");
    a.send_bytes("three");
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "one");
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "");
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "three");
}

TEST_F(ConnectionApi, SendBytesOffsetAndSizeAreInBytesWithPythonsErrors) {
    auto [a, b] = mp::Pipe();
    const auto buf = string_to_bytes("abcdefgh");
    a.send_bytes(buf, 2);
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "cdefgh");
    a.send_bytes(buf, 2, 3);
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "cde");
    a.send_bytes(buf, 8);  // offset == len: an empty message
    EXPECT_EQ(b.recv_bytes().size(), 0u);
    a.send_bytes(buf, 0, 0);
    EXPECT_EQ(b.recv_bytes().size(), 0u);
    EXPECT_THROW_WITH(a.send_bytes(buf, 9), mp::ValueError, "buffer length < offset");
    EXPECT_THROW_WITH(a.send_bytes(buf, 4, 5), mp::ValueError, "buffer length < offset + size");
    EXPECT_FALSE(b.poll());  // nothing was sent by the failed calls
}

TEST_F(ConnectionApi, RecvBytesMaxlengthPoisonsLikePython) {
    {
        auto [a, b] = mp::Pipe();
        a.send_bytes("0123456789");
        EXPECT_THROW_WITH(b.recv_bytes(5), std::system_error, "bad message length");
        EXPECT_FALSE(b.readable());  // duplex: stays writable, no longer readable
        EXPECT_TRUE(b.writable());
        EXPECT_THROW_WITH(b.recv_bytes(), std::system_error, "write-only");
    }
    {
        auto [r, w] = mp::Pipe(false);
        w.send_bytes("0123456789");
        EXPECT_THROW_WITH(r.recv_bytes(5), std::system_error, "bad message length");
        EXPECT_TRUE(r.closed());  // read-only end: closed
    }
    auto [a, b] = mp::Pipe();
    a.send_bytes("01234");
    EXPECT_EQ(b.recv_bytes(5).size(), 5u);  // exactly maxlength is fine
}

TEST_F(ConnectionApi, RecvBytesIntoWritesAtOffsetOrThrowsBufferTooShort) {
    auto [a, b] = mp::Pipe();
    std::vector<std::byte> buf(8, std::byte{'.'});
    a.send_bytes("abc");
    EXPECT_EQ(b.recv_bytes_into(buf, 2), 3u);
    EXPECT_EQ(bytes_to_string(buf), "..abc...");
    a.send_bytes("0123456789");
    try {
        b.recv_bytes_into(buf, 4);
        FAIL() << "no BufferTooShort";
    } catch (const mp::BufferTooShort& e) {
        EXPECT_EQ(bytes_to_string(e.message()), "0123456789");  // the whole message, consumed
    }
    a.send_bytes("next");
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "next");
    EXPECT_THROW_WITH(b.recv_bytes_into(buf, 9), mp::ValueError, "offset too large");
}

TEST_F(ConnectionApi, PollSeesMessagesEmptyMessagesAndEof) {
    auto [a, b] = mp::Pipe();
    EXPECT_FALSE(b.poll());
    EXPECT_FALSE(b.poll(-1s));
    a.send_bytes("");
    EXPECT_TRUE(b.poll());
    b.recv_bytes();
    EXPECT_FALSE(b.poll(20ms));
    a.close();
    EXPECT_TRUE(b.poll());  // peer closed: poll is true and recv raises EOFError
    EXPECT_THROW(b.recv_bytes(), mp::EOFError);
}

TEST_F(ConnectionApi, PollWithTimeoutWaitsForAChild) {
    auto [a, b] = mp::Pipe();
    mp::Process p(
        [](mp::Connection& conn) {
            std::this_thread::sleep_for(50ms);
            conn.send(1);
        },
        std::move(b));
    p.start();
    EXPECT_TRUE(a.poll(std::chrono::duration<double>(30.0)));
    EXPECT_EQ(a.recv<int>(), 1);
    p.join();
}

TEST_F(ConnectionApi, EofOnlyOnceTheOtherEndIsClosedEverywhere) {
    auto [r, w] = mp::Pipe(false);
    mp::Process p(
        [](mp::Connection& out) {
            out.send(std::string("hello"));
            out.close();
        },
        std::move(w));
    p.start();  // the parent drops its copy once the child has started: only the child holds the write end
    EXPECT_EQ(r.recv<std::string>(), "hello");
    EXPECT_THROW(r.recv<std::string>(), mp::EOFError);
    p.join();
}

TEST_F(ConnectionApi, EofInsideAFrameIsAnError) {
    auto [a, b] = mp::Pipe();
    write_raw(a, {0, 0, 0, 10, 'a', 'b', 'c'});
    a.close();
    EXPECT_THROW_WITH(b.recv_bytes(), std::system_error, "got end of file during message");
    auto [c, d] = mp::Pipe();
    write_raw(c, {0, 0});
    c.close();
    EXPECT_THROW_WITH(d.recv_bytes(), std::system_error, "got end of file during message");
}

TEST_F(ConnectionApi, AcceptsTheExtendedHeaderEvenForSmallPayloads) {
    auto [a, b] = mp::Pipe();
    write_raw(a, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'});
    EXPECT_EQ(bytes_to_string(b.recv_bytes()), "hello");
}

TEST_F(ConnectionApi, NegativeLengthIsAProtocolError) {
    auto [a, b] = mp::Pipe();
    write_raw(a, {0xff, 0xff, 0xff, 0xfe});
    EXPECT_EQ(code_of([&] { b.recv_bytes(); }), std::errc::protocol_error);
}

TEST_F(ConnectionApi, HostileLengthDoesNotAllocateUpFront) {
    auto [a, b] = mp::Pipe();
    // Claims 2^62 bytes, sends 3, closes: an error, not a 4 EiB allocation.
    write_raw(a, {0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'});
    a.close();
    EXPECT_THROW_WITH(b.recv_bytes(), std::system_error, "got end of file during message");
}

TEST_F(ConnectionApi, WireBytesAreCPythonsFraming) {
    auto [a, b] = mp::Pipe();
    a.send_bytes("raw bytes");
    std::array<unsigned char, 13> wire{};
    ASSERT_EQ(::read(b.fileno(), wire.data(), wire.size()), 13);
    const std::array<unsigned char, 13> expected{0, 0, 0, 9, 'r', 'a', 'w', ' ', 'b', 'y', 't', 'e', 's'};
    EXPECT_EQ(wire, expected);
}

TEST_F(ConnectionApi, MessagesAbove2GiBUseThe8ByteHeader) {
    BigMemoryTestLock one_at_a_time;
    constexpr std::size_t n = 0x80000000ull + 1;  // 2 GiB + 1
    auto [a, b] = mp::Pipe();
    std::vector<std::byte> big(n, std::byte{0x5a});
    big.back() = std::byte{0x01};
    std::thread sender([&] { a.send_bytes(big); });
    std::array<unsigned char, 12> header{};
    ASSERT_EQ(::read(b.fileno(), header.data(), 12), 12);
    const std::array<unsigned char, 12> expected{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0x01};
    EXPECT_EQ(header, expected);
    std::vector<std::byte> got(n);
    std::size_t have = 0;
    while (have < n) {
        ssize_t r = ::read(b.fileno(), got.data() + have, n - have);
        ASSERT_GT(r, 0);
        have += static_cast<std::size_t>(r);
    }
    sender.join();
    EXPECT_EQ(got.back(), std::byte{0x01});
    EXPECT_EQ(got[n / 2], std::byte{0x5a});
}

TEST_F(ConnectionApi, SixteenMiBRoundTripThroughAChild) {
    auto [a, b] = mp::Pipe();
    mp::Process echo([](mp::Connection& conn) { conn.send_bytes(conn.recv_bytes()); }, std::move(b));
    echo.start();
    std::vector<std::byte> msg(16 << 20);
    for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = std::byte(i * 7);
    a.send_bytes(msg);
    EXPECT_EQ(a.recv_bytes(), msg);
    echo.join();
}

TEST_F(ConnectionApi, ClosedHandleIsAClearError) {
    auto [a, b] = mp::Pipe();
    a.close();
    a.close();  // idempotent
    EXPECT_TRUE(a.closed());
    EXPECT_THROW_WITH(a.send(1), std::system_error, "handle is closed");
    EXPECT_THROW_WITH(a.recv<int>(), std::system_error, "handle is closed");
    EXPECT_THROW_WITH(a.send_bytes("x"), std::system_error, "handle is closed");
    EXPECT_THROW_WITH(a.poll(), std::system_error, "handle is closed");
    EXPECT_THROW_WITH((void)a.fileno(), std::system_error, "handle is closed");
    mp::Connection empty;
    EXPECT_TRUE(empty.closed());
}

TEST_F(ConnectionApi, InvalidHandlesAreRejected) {
    EXPECT_THROW_WITH(mp::Connection(mp::FileDescriptor(-1)), mp::ValueError, "invalid handle");
    auto [a, b] = mp::Pipe();
    EXPECT_THROW_WITH(mp::Connection(mp::FileDescriptor(::dup(a.fileno())), false, false), mp::ValueError,
                      "at least one of `readable` and `writable` must be True");
}

TEST_F(ConnectionApi, SendingToAClosedPeerIsBrokenPipeNotSigpipe) {
    {
        auto [a, b] = mp::Pipe();
        b.close();
        EXPECT_EQ(code_of([&] { a.send_bytes("x"); }), std::errc::broken_pipe);
    }
    auto [r, w] = mp::Pipe(false);
    r.close();
    EXPECT_EQ(code_of([&] { w.send_bytes("x"); }), std::errc::broken_pipe);
}

TEST_F(ConnectionApi, ReceivingTheWrongTypeIsADecodeError) {
    auto [a, b] = mp::Pipe();
    a.send(std::string("text"));
    EXPECT_THROW_WITH(b.recv<int>(), mp::DecodeError, "type mismatch");
    a.send_bytes("not an object");
    EXPECT_THROW_WITH(b.recv<int>(), mp::DecodeError, "not a polyproc object");
    a.send(5);  // the connection is still in sync afterwards
    EXPECT_EQ(b.recv<int>(), 5);
}

TEST_F(ConnectionApi, SendHandlePassesAFileDescriptorToAChild) {
    auto [a, b] = mp::Pipe();
    mp::Process p(
        [](mp::Connection& conn) {
            mp::FileDescriptor fd = conn.recv_handle();
            const char msg[] = "written by the child";
            if (::write(fd.get(), msg, sizeof msg - 1) != sizeof msg - 1) std::_Exit(3);
        },
        std::move(b));
    p.start();
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    mp::FileDescriptor r(fds[0]), w(fds[1]);
    a.send_handle(w.get());
    w.reset();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    char buf[64] = {};
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(::read(r.get(), buf, sizeof buf))), "written by the child");
}

TEST_F(ConnectionApi, RecvHandleWithoutAHandleIsAnError) {
    auto [a, b] = mp::Pipe();
    ASSERT_EQ(::write(a.fileno(), "x", 1), 1);
    EXPECT_THROW_WITH(b.recv_handle(), std::runtime_error, "received 0 items of ancdata");
    a.close();
    EXPECT_THROW(b.recv_handle(), mp::EOFError);
    auto [r, w] = mp::Pipe(false);
    EXPECT_THROW_WITH(w.send_handle(0), std::system_error, "needs a duplex");
}

TEST_F(ConnectionApi, WaitReturnsReadyConnectionsAndSentinels) {
    auto [a1, b1] = mp::Pipe();
    auto [a2, b2] = mp::Pipe();
    EXPECT_TRUE(mp::wait(std::vector<mp::Connection*>{&a1, &a2}, 10ms).empty());
    EXPECT_TRUE(mp::wait(std::vector<mp::Connection*>{&a1, &a2}, -1s).empty());
    b2.send(1);
    auto ready = mp::wait(std::vector<mp::Connection*>{&a1, &a2}, 5s);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0], &a2);

    mp::Process p([] { std::this_thread::sleep_for(30ms); });
    p.start();
    auto fds = mp::wait({p.sentinel(), a1.fileno()});
    ASSERT_EQ(fds.size(), 1u);
    EXPECT_EQ(fds[0], p.sentinel());
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ConnectionApi, WaitOnAnInvalidHandleThrows) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_THROW_WITH(mp::wait({fds[0]}, 0s), std::system_error, "invalid handle");
}

TEST_F(ConnectionApi, ManyRoundTripsWithASpinningPeerStayCorrect) {
    auto [a, b] = mp::Pipe();
    mp::Process echo(
        [](mp::Connection& conn) {
            for (;;) {
                auto m = conn.recv_bytes();
                if (m.empty()) return;
                conn.send_bytes(m);
            }
        },
        std::move(b));
    echo.start();
    for (int i = 0; i < 2000; ++i) {
        const std::string s = std::to_string(i);
        a.send_bytes(s);
        ASSERT_EQ(bytes_to_string(a.recv_bytes()), s);
    }
    a.send_bytes("");
    echo.join();
    EXPECT_EQ(echo.exitcode(), 0);
}

// Python's reduction.DupFd: a descriptor opened after a child was forked reaches that child.
TEST_F(ConnectionApi, DupFdHandsADescriptorOpenedLaterToAnotherProcess) {
    mp::Queue<mp::DupFd> handles;
    mp::Queue<std::string> replies;
    mp::Process child(
        [](mp::Queue<mp::DupFd> handle_queue, mp::Queue<std::string> reply_queue) {
            mp::FileDescriptor fd = handle_queue.get().detach();
            char buf[64];
            const ssize_t n = ::read(fd.get(), buf, sizeof buf);
            reply_queue.put(std::string(buf, n > 0 ? std::size_t(n) : 0));
            try {
                handle_queue.get().detach();  // the same DupFd again: its descriptor was already fetched
                reply_queue.put("second ok");
            } catch (const std::exception& e) {
                reply_queue.put(std::string("second failed: ") + e.what());
            }
        },
        handles, replies);
    child.start();
    int p[2];
    ASSERT_EQ(::pipe(p), 0);  // opened after the fork: the child has no copy
    ASSERT_EQ(::write(p[1], "through DupFd", 13), 13);
    mp::DupFd h(p[0]);
    ::close(p[0]);
    ::close(p[1]);
    handles.put(h);
    EXPECT_EQ(replies.get(true, std::chrono::seconds(20)), "through DupFd");
    handles.put(h);  // the same key again: already fetched
    EXPECT_EQ(replies.get(true, std::chrono::seconds(20)).rfind("second failed:", 0), 0u);
    child.join();
    EXPECT_EQ(child.exitcode(), 0);
    EXPECT_THROW_WITH(mp::DupFd().detach(), mp::ValueError, "empty");
}

// A descriptor waiting in the resource sharer is not inherited by a child forked meanwhile (as
// Python's sharer closes it after fork): once the receiver closes its copy, the peer sees EOF.
TEST_F(ConnectionApi, DupFdWaitingInTheSharerIsNotKeptOpenByLaterChildren) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mp::DupFd h(sv[0]);
    ::close(sv[0]);
    mp::Event stop;
    mp::Process child([](mp::Event& stop_event) { stop_event.wait(std::chrono::seconds(20)); }, stop);
    child.start();
    { mp::FileDescriptor fetched = h.detach(); }  // fetched, then closed
    pollfd p{sv[1], POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 5000), 1);
    char c;
    EXPECT_EQ(::read(sv[1], &c, 1), 0);  // EOF: nobody holds the other end, the child included
    stop.set();
    child.join();
    ::close(sv[1]);
}
