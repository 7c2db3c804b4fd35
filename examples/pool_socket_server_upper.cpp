// pool_socket_server_upper — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2380-2444: a TCP server
// whose connections are each handled by a worker of a Pool(4). The main process accepts; every
// accepted socket goes to the pool with apply_async(talk, conn), and talk() echoes what the client
// sends, upper-cased, until the client closes. Six clients: four are served at once, the other two
// wait (connected, their message sent, no reply) until a client leaves and frees a worker; only
// four worker pids ever appear.
//
// The socket reaches a worker that was forked before the connection existed, as in Python: the
// seed's pickled socket travels through multiprocessing's resource sharer; here mp::DupFd does the
// same (a descriptor made sendable; the worker's detach() receives its own copy by SCM_RIGHTS).
//
// Changes, to make it a bounded, self-checking program: the server binds 127.0.0.1 port 0 (a free
// port) instead of 8080, accepts exactly six connections instead of looping forever, and then
// closes and joins the pool. The seed's interactive client (input() in a loop) becomes one client
// process that scripts six connections: "hello i" on each, "again" on connection 1, then closes
// connections 0 and 2 to free their workers. talk() gets the connection's index as an added
// argument so that the output shows which worker serves which connection. Printed text in English.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void talk(mp::DupFd handle, int index) {
    mp::FileDescriptor conn = handle.detach();
    std::printf("process pid: %d (connection %d)\n", ::getpid(), index);
    std::fflush(stdout);
    for (;;) {
        char msg[1024];
        const ssize_t n = ::recv(conn.get(), msg, sizeof msg, 0);
        if (n <= 0) break;  // the client closed (or the connection failed)
        std::transform(msg, msg + n, msg, [](char c) { return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c; });
        if (::send(conn.get(), msg, std::size_t(n), MSG_NOSIGNAL) != n) break;
    }
}

// The scripted client: one process, six connections.
void clients(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(std::uint16_t(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> socks;
    for (int i = 0; i < 6; ++i) {
        const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::perror("connect");
        socks.push_back(s);
    }
    auto send_text = [&](int i, const std::string& text) {
        (void)!::send(socks[std::size_t(i)], text.data(), text.size(), 0);
    };
    // The reply on connection i, or nothing within `wait`.
    auto reply = [&](int i, std::chrono::milliseconds wait) -> std::string {
        pollfd p{socks[std::size_t(i)], POLLIN, 0};
        if (::poll(&p, 1, int(wait.count())) != 1) return {};
        char buf[1024];
        const ssize_t n = ::recv(socks[std::size_t(i)], buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, std::size_t(n)) : std::string();
    };
    using namespace std::chrono_literals;
    for (int i = 0; i < 6; ++i) send_text(i, "hello " + std::to_string(i));
    std::vector<std::string> first;
    for (int i = 0; i < 4; ++i) first.push_back(reply(i, 30s));
    for (int i = 0; i < 4; ++i) std::cout << "client " << i << " -> " << first[std::size_t(i)] << std::endl;
    for (int i = 4; i < 6; ++i)
        if (reply(i, 500ms).empty()) std::cout << "client " << i << ": no reply within 0.5 s" << std::endl;
    send_text(1, "again");
    std::cout << "client 1 -> " << reply(1, 30s) << std::endl;
    std::cout << "closing client 0" << std::endl;
    ::close(socks[0]);
    std::cout << "client 4 -> " << reply(4, 30s) << std::endl;
    std::cout << "closing client 2" << std::endl;
    ::close(socks[2]);
    std::cout << "client 5 -> " << reply(5, 30s) << std::endl;
    for (int i : {1, 3, 4, 5}) ::close(socks[std::size_t(i)]);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // any free port (the seed: 8080)
    if (::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(server, 5) != 0) {
        std::perror("bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);

    mp::Pool p(4);
    mp::Process client(clients, int(ntohs(addr.sin_port)));
    client.start();
    for (int i = 0; i < 6; ++i) {
        const int conn = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
        p.apply_async(talk, mp::DupFd(conn), i);
        ::close(conn);  // the worker fetches its own copy
    }
    client.join();
    p.close();
    p.join();
    ::close(server);
    std::cout << "server done" << std::endl;
}
