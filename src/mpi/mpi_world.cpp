// mp::mpi::init and the world it makes: rank 0 listens on TCP, tells every rank where (MPI_Bcast,
// with a random authkey); each worker rank connects back, authenticates and says who it is. MPI
// itself carries nothing else: its progress engine polls, and a pool must not burn a core idle.
#include "mpi_world.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mpi.h>
#include <sys/socket.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fork_safety.hpp"
#include "mpi_pool.hpp"
#include "mpi_wire.hpp"
#include "os.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/detail/fd.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/process.hpp"

namespace polyproc::detail::mpi {

namespace {

constexpr std::size_t kAuthkeySize = 32;
constexpr std::size_t kRendezvousSize = 4096;  // what rank 0 broadcasts: authkey, port, addresses

int world_rank = -1;
int world_size = 0;
World* the_world = nullptr;  // rank 0 only; lives until exit
pid_t rank_0_pid = 0;         // a fork child of rank 0 (a local pool's worker) inherits the exit handler

std::string this_host() {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) != 0) return "?";
    return name.data();
}

// Rank 0's IPv4 addresses, loopback last: a rank on another host tries them in this order.
std::vector<std::string> own_addresses() {
    std::vector<std::string> out = os::ipv4_addresses();
    if (out.empty()) out.push_back("127.0.0.1");
    return out;
}

// A link's socket: keepalive and TCP_USER_TIMEOUT (a vanished host is found out), and no Nagle
// delay (a batch of one task must not wait for the previous one's ACK).
void tune(const Connection& conn) {
    os::set_tcp_keepalive(conn.fileno(), 5, 2, 8, 20);
    os::set_tcp_nodelay(conn.fileno());
}

// MPI's own threads (Open MPI's progress and PMIx threads) count as helpers: a fork child never
// calls MPI, and a rank forks its pool's workers; without this, every fork would warn of them.
void count_mpi_threads_as_helpers() {
    const long threads = threads_in_this_process();
    if (threads > 1) count_helper_thread(int(threads - 1 - helper_threads_running()));
}

void check_mpi(int rc, const char* call) {
    if (rc != MPI_SUCCESS)
        throw ProcessError(std::string("polyproc::mpi: ") + call + " failed (error " + std::to_string(rc) + ")");
}

// Rank 0 at exit: the worker ranks are told to exit, then MPI ends. With a rank lost, MPI_Finalize
// may wait for it forever (a stopped or hung rank; seen too with a dead one under
// --enable-recovery): then the job is aborted instead, which ends every rank.
void finish_rank_0() {
    if (::getpid() != rank_0_pid) return;
    bool abort = false;
    for (auto& link : the_world->links) {
        if (link->alive.load()) {
            try {
                link->send(Message(Kind::exit).bytes());
            } catch (...) {
            }
        }
        abort |= !link->alive.load();
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (abort) {
        std::fputs("polyproc::mpi: a worker rank was lost; ending the MPI job with MPI_Abort\n", stderr);
        MPI_Abort(MPI_COMM_WORLD, 0);
    }
    MPI_Finalize();
}

// A connection to rank 0 during init: the HMAC handshake (a peer without the authkey is refused),
// then its hello. A peer that goes silent meanwhile is cut off after kGreetLimit, so that a
// stranger cannot hold up init: its socket is shut down under the blocked read.
constexpr std::chrono::seconds kGreetLimit{5};
Hello greet(Connection& conn, const std::string& authkey) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    const int fd = conn.fileno();
    std::thread watchdog = helper_thread([&] {
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, kGreetLimit, [&] { return done; })) ::shutdown(fd, SHUT_RDWR);
    });
    auto stop_watching = [&] {
        {
            std::lock_guard lock(mu);
            done = true;
        }
        cv.notify_all();
        watchdog.join();
    };
    try {
        deliver_challenge(conn, authkey);
        answer_challenge(conn, authkey);
        const auto bytes = conn.recv_bytes(64 * 1024);
        if (kind_of(bytes) != Kind::hello) throw DecodeError("polyproc::mpi: a peer that does not say hello");
        Hello hello = decode_payload<Hello>(std::span(bytes).subspan(1));
        stop_watching();
        return hello;
    } catch (...) {
        stop_watching();
        throw;
    }
}

void init_rank_0(const polyproc::mpi::InitOptions& options) {
    std::string authkey(kAuthkeySize, '\0');
    os::random_bytes(std::as_writable_bytes(std::span(authkey.data(), authkey.size())));
    // No authkey on the Listener itself: the handshake runs below, under a bound.
    Listener listener(InetAddress{"", 0}, std::clamp(world_size, 1, 1024));
    const std::uint16_t port = std::get<InetAddress>(listener.address()).port;
    std::string addresses;
    for (const auto& a : own_addresses())
        if (addresses.size() + a.size() + 1 < kRendezvousSize - kAuthkeySize - 2) addresses += a + ",";
    std::vector<char> rendezvous(kRendezvousSize, '\0');
    std::memcpy(rendezvous.data(), authkey.data(), kAuthkeySize);
    std::memcpy(rendezvous.data() + kAuthkeySize, &port, sizeof port);
    std::memcpy(rendezvous.data() + kAuthkeySize + sizeof port, addresses.data(), addresses.size());
    check_mpi(MPI_Bcast(rendezvous.data(), int(rendezvous.size()), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");

    the_world = new World();  // NOLINT: lives until the last exit handler
    the_world->links.resize(std::size_t(world_size - 1));
    const Deadline deadline{Timeout(options.connect_timeout)};
    const std::uint64_t program = program_hash();
    int connected = 0;
    while (connected < world_size - 1) {
        if (!os::wait_readable(listener.fileno(), deadline)) {
            std::string missing;
            for (int r = 1; r < world_size; ++r)
                if (!the_world->links[std::size_t(r - 1)]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
            throw ProcessError("polyproc::mpi: rank(s) " + missing + " did not connect to rank 0 within " +
                               std::to_string(options.connect_timeout.count()) + " ms (rank 0 listened on port " +
                               std::to_string(port) + " of " + addresses + ")");
        }
        Connection conn;
        Hello hello;
        try {
            conn = listener.accept();
            hello = greet(conn, authkey);
        } catch (const std::exception&) {
            continue;  // not one of ours
        }
        if (hello.version != kProtocolVersion || hello.rank < 1 || hello.rank >= world_size ||
            the_world->links[std::size_t(hello.rank - 1)])
            continue;
        auto link = std::make_unique<Link>();
        link->rank = hello.rank;
        link->host = hello.host;
        link->pid = hello.pid;
        link->same_program = hello.program == program;
        tune(conn);
        link->conn = std::move(conn);
        the_world->links[std::size_t(hello.rank - 1)] = std::move(link);
        ++connected;
    }
    rank_0_pid = ::getpid();
    std::atexit(finish_rank_0);
}

[[noreturn]] void run_worker_rank(const polyproc::mpi::InitOptions& options) {
    std::vector<char> rendezvous(kRendezvousSize, '\0');
    check_mpi(MPI_Bcast(rendezvous.data(), int(rendezvous.size()), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
    const std::string authkey(rendezvous.data(), kAuthkeySize);
    std::uint16_t port;
    std::memcpy(&port, rendezvous.data() + kAuthkeySize, sizeof port);
    const std::string addresses(rendezvous.data() + kAuthkeySize + sizeof port);
    std::optional<Connection> conn;
    const Deadline deadline{Timeout(options.connect_timeout)};
    std::string tried;
    while (!conn && !deadline.expired()) {
        std::size_t at = 0;
        for (std::size_t comma; !conn && (comma = addresses.find(',', at)) != std::string::npos; at = comma + 1) {
            const std::string host = addresses.substr(at, comma - at);
            try {  // another host's interface may be unreachable from here: 2 s each
                conn = client_within(InetAddress{host, port}, authkey, std::chrono::seconds(2));
                tune(*conn);
            } catch (const std::exception& e) {
                tried += " " + host + " (" + e.what() + ")";
            }
        }
        if (!conn) ::usleep(200'000);
    }
    if (!conn) {
        std::fprintf(stderr, "polyproc::mpi: rank %d could not reach rank 0 at port %u of %s;%s ending the job\n",
                     world_rank, unsigned(port), addresses.c_str(), tried.c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    Hello hello;
    hello.rank = world_rank;
    hello.pid = ::getpid();
    hello.program = program_hash();
    hello.host = this_host();
    Message m(Kind::hello);
    m.append_value(hello);
    conn->send_bytes(m.bytes());
    const bool told_to_exit = serve_pools(*conn);
    conn->close();
    if (!told_to_exit) {
        std::fprintf(stderr, "polyproc::mpi: rank %d: rank 0 is gone; exiting\n", world_rank);
        std::_Exit(1);
    }
    MPI_Finalize();
    std::exit(0);
}

}  // namespace

World& world_of_rank_0() {
    if (!the_world) {
        if (world_rank > 0) throw ProcessError("polyproc::mpi::world(): only rank 0 runs pools");
        throw ProcessError("polyproc::mpi::world(): call mp::mpi::init(argc, argv) first");
    }
    return *the_world;
}

std::uint64_t program_hash() {
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    std::ifstream exe("/proc/self/exe", std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (exe) {
        exe.read(buf.data(), std::streamsize(buf.size()));
        XXH3_64bits_update(state, buf.data(), std::size_t(exe.gcount()));
    }
    const std::uint64_t libraries = startup_objects_fingerprint();
    XXH3_64bits_update(state, &libraries, sizeof libraries);
    const std::uint64_t h = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return h;
}

}  // namespace polyproc::detail::mpi

namespace polyproc::mpi {

void init(int& argc, char**& argv, InitOptions options) {
    polyproc::init(argc, argv);  // a spawn or forkserver child takes over here, before MPI starts
    int started = 0;
    MPI_Initialized(&started);
    if (started) throw ProcessError("polyproc::mpi::init: MPI was already initialized");
    int provided = 0;
    detail::mpi::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_rank(MPI_COMM_WORLD, &detail::mpi::world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &detail::mpi::world_size);
    detail::mpi::count_mpi_threads_as_helpers();
    if (detail::mpi::world_rank == 0)
        detail::mpi::init_rank_0(options);
    else
        detail::mpi::run_worker_rank(options);
}

int rank() { return detail::mpi::world_rank; }
int size() { return detail::mpi::world_size; }

std::vector<WorkerRank> workers() {
    auto& w = detail::mpi::world_of_rank_0();
    std::vector<WorkerRank> out;
    for (const auto& link : w.links)
        out.push_back(WorkerRank{link->rank, link->host, link->pid, link->same_program, link->alive.load()});
    return out;
}

std::shared_ptr<const detail::PoolBackendFactory> world(WorldOptions options) {
    detail::mpi::world_of_rank_0();
    if (options.lost_after <= std::chrono::milliseconds(0))
        throw ValueError("polyproc::mpi::world: lost_after must be positive");
    return std::make_shared<detail::mpi::MpiPoolFactory>(options);
}

}  // namespace polyproc::mpi
