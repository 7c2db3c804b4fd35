// The MPI world as polyproc sees it: on rank 0, a connection to every worker rank (a Link); on a
// worker rank, the loop that serves rank 0's pools (mpi_agent.cpp). init() (mpi_world.cpp) makes
// the connections: rank 0 listens, MPI_Bcast tells the others where and with which authkey.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/types.h>

#include "polyproc/connection.hpp"
#include "polyproc/mpi.hpp"

namespace polyproc::detail::mpi {

// Rank 0's connection to one worker rank. A pool uses it while it runs (World::in_use).
struct Link {
    int rank = 0;
    std::string host;
    pid_t pid = 0;
    bool same_program = true;
    Connection conn;
    std::atomic<bool> alive{true};  // false once lost: never used again
    std::mutex send_mu;             // one sender at a time (a pool's feeder, the exit handler)

    void send(std::span<const std::byte> message) {
        std::lock_guard lock(send_mu);
        conn.send_bytes(message);
    }
    // Never used again: its socket is shut down (a thread blocked on it returns with an error; the
    // rank, seeing its connection end, exits).
    void give_up() noexcept {
        alive.store(false);
        if (!conn.closed()) ::shutdown(conn.fileno(), SHUT_RDWR);
    }

    // "MPI rank 2 (host 'b', pid 123)"
    std::string name() const {
        return "MPI rank " + std::to_string(rank) + " (host '" + host + "', pid " + std::to_string(pid) + ")";
    }
};

struct World {
    std::vector<std::unique_ptr<Link>> links;  // by rank - 1
    std::mutex mu;
    bool in_use = false;  // under mu: a pool is using the links
};
World& world_of_rank_0();  // mp::ProcessError unless init() ran on rank 0

// A hash shared by two processes only when they run the same program: the executable's bytes and
// the names and order of the libraries loaded at startup (code references are offsets into those).
std::uint64_t program_hash();

// A worker rank's life after init: serves rank 0's pools on `conn` until rank 0 says exit (true)
// or is gone (false). mpi_agent.cpp.
bool serve_pools(Connection& conn);

}  // namespace polyproc::detail::mpi
