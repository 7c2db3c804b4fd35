// A polyproc SyncManager server for Python clients (issue 15): CPython's own manager tests
// (tests/python/cpython_manager_suite.py) and the benchmarks connect to it as to a Python manager.
//
// Usage: sync_manager_server <address> <authkey>
//   address: host:port on TCP (port 0 picks one), else an AF_UNIX path
// Prints the address it listens on (host:port, or the path) on a line of its own, then serves
// until a client sends 'shutdown', SIGTERM arrives, or, when its stdin is a pipe, that pipe closes
// (its parent went away).
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

namespace {
mp::Server* g_server = nullptr;
extern "C" void on_term(int) {
    if (g_server) g_server->stop();  // async-signal-safe
}
}  // namespace

int main(int argc, char** argv) {
    mp::init(argc, argv);
    if (argc != 3) {
        std::cerr << "usage: sync_manager_server <host:port | path> <authkey>\n";
        return 2;
    }
    const std::string where = argv[1];
    mp::Address address = where;
    if (const auto colon = where.rfind(':'); colon != std::string::npos && where.find('/') == std::string::npos)
        address =
            mp::InetAddress{where.substr(0, colon), static_cast<std::uint16_t>(std::stoi(where.substr(colon + 1)))};
    mp::SyncManager manager(address, std::string(argv[2]));
    mp::Server server = manager.get_server();
    g_server = &server;
    struct sigaction term {};
    term.sa_handler = on_term;
    ::sigaction(SIGTERM, &term, nullptr);
    if (const auto* inet = std::get_if<mp::InetAddress>(&server.address()))
        std::cout << inet->host << ":" << inet->port << std::endl;
    else
        std::cout << std::get<std::string>(server.address()) << std::endl;
    struct stat in {};
    if (::fstat(STDIN_FILENO, &in) == 0 && S_ISFIFO(in.st_mode))
        std::thread([] {
            char buf[64];
            while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
            }
            if (g_server) g_server->stop();
        }).detach();
    server.serve_forever();
    g_server = nullptr;
    return 0;
}
