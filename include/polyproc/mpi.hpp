// polyproc/mpi.hpp — a Pool whose workers are the ranks of an MPI job (the polyproc::mpi library,
// built when CMake finds MPI). mpi4py.futures' static world, with the whole of mp::Pool's API:
//
//   int main(int argc, char** argv) {
//       mp::mpi::init(argc, argv);  // ranks 1..N-1 serve as workers here and never return
//       mp::Pool pool(mp::PoolOptions{.backend = mp::mpi::world()});
//       std::vector<long> r = pool.map(cpu_bound, inputs);
//   }
//   $ mpiexec -n 3 ./app          # rank 0 runs main, ranks 1 and 2 are the pool's two workers
//
// How it works (docs/mpi.md has more): every rank runs the same program. init() starts MPI on
// every rank; rank 0 listens on TCP and tells the others (MPI_Bcast) where, with a random authkey;
// each worker rank connects back and authenticates (CPython's HMAC handshake), and says which
// program it runs. A pool sends its tasks over those connections; a worker rank runs each in a
// forked child of its own (a local pool of one worker), so a task that crashes fails only itself
// (mp::WorkerLostError) and the rank goes on. Functions and arguments travel as under spawn.
//
// Faults: a rank that runs another program is refused at pool start (mp::ValueError naming rank
// and host). A worker rank that dies, or stops answering for lost_after, fails the tasks it held
// with mp::WorkerLostError naming it, and the pool goes on with the others; but Open MPI 4.1 ends
// the whole job when one of its processes dies, unless mpiexec was given --enable-recovery.
// Nothing spins while idle: every wait is a blocking read on a socket.
//
// Not across hosts: a Queue, Lock, Value or shared memory passed to a task or an initializer (they
// live on one host; a manager is the cross-host state). Not supported on this backend: an elastic
// pool (the world is static) and start methods (workers are ranks).
//
// Process-safety: call init() once, first, on every rank; the rest on rank 0, from any thread. One
// pool at a time uses the world's workers (a second is refused while the first runs).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include "polyproc/pool.hpp"

namespace polyproc::mpi {

struct InitOptions {
    // How long rank 0 waits for every worker rank to connect, and a worker rank to reach rank 0.
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(60)};
};

// Call first in main, on every rank, in place of mp::init (it calls it). Rank 0 returns with MPI
// started (it ends at exit, and the worker ranks with it). Any other rank serves pools for rank 0
// and exits when rank 0 ends, never returning. Run without mpiexec, the program is rank 0 of a
// world of one: world() then has no workers. Throws mp::ProcessError on rank 0 when a worker rank
// does not connect within connect_timeout.
void init(int& argc, char**& argv, InitOptions options = {});

int rank();  // this process's rank in MPI_COMM_WORLD
int size();  // how many ranks the job has

// A worker rank as rank 0 knows it.
struct WorkerRank {
    int rank = 0;
    std::string host;  // its hostname
    pid_t pid = 0;     // on that host
    bool same_program = true;  // runs the same executable and libraries as rank 0
    bool alive = true;  // false once it was lost (its connection closed, or it stopped answering)
};
std::vector<WorkerRank> workers();  // rank 0, after init()

struct WorldOptions {
    // A worker rank that says nothing this long (it answers a ping every second, busy or not) is
    // lost: its tasks fail with mp::WorkerLostError. It must exceed the time one message takes to
    // cross the network (a task's arguments, a batch of results): a rank is silent meanwhile.
    std::chrono::milliseconds lost_after{std::chrono::seconds(10)};
};

// For PoolOptions::backend: a pool whose workers are the worker ranks still alive, one worker
// each (PoolOptions::processes, when set, takes that many of them: mp::ValueError if there are
// fewer). task_timeout, maxtasksperchild and initializer work as on one machine; the initializer
// must travel as under spawn, without handles. Rank 0 only, after init().
std::shared_ptr<const detail::PoolBackendFactory> world(WorldOptions options = {});

}  // namespace polyproc::mpi
