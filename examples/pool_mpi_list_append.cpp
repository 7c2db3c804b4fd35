// pool_mpi_list_append — seed 002 (002_99cc650f6dfa1104.txt), lines 266-300: the "CPU-heavy"
// list_append, which fills a list with `count` random numbers, run by `procs` workers at once.
// The seed starts one Process per job; here the same jobs go through Pool.map, and the pool's
// workers are the ranks of an MPI job when the program runs under mpiexec:
//
//   ./example_pool_mpi_list_append                  # a local pool of 2 processes
//   mpiexec -n 3 ./example_pool_mpi_list_append     # rank 0 runs main; ranks 1 and 2 are the pool
//
// The code is the same either way: mp::mpi::init turns ranks 1..N-1 into workers, and the pool
// takes mp::mpi::world() as its backend when there are worker ranks. Changes: out_list, which
// the seed's processes fill and lose (each child appends to its own copy), is the task's result
// here, and main prints its lengths; `id` is kept, unused as in the seed.
#include <cstddef>
#include <iostream>
#include <random>
#include <vector>

#include <polyproc/mpi.hpp>
#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// Creates an empty list and then appends a random number to the list 'count' number of times.
// A CPU-heavy operation!
std::size_t list_append(std::size_t count, int id) {
    (void)id;
    std::mt19937_64 random(std::random_device{}());
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<double> out_list;
    for (std::size_t i = 0; i < count; ++i) out_list.push_back(unit(random));
    return out_list.size();
}

int main(int argc, char** argv) {
    mp::mpi::init(argc, argv);  // under mpiexec, ranks 1..N-1 serve the pool from here on

    const std::size_t size = 10000000;  // Number of random numbers to add
    const int procs = 2;                // Number of processes to create

    // The jobs, one per process, as the seed's list of Process objects.
    std::vector<std::pair<std::size_t, int>> jobs;
    for (int i = 0; i < procs; ++i) jobs.emplace_back(size, i);

    mp::PoolOptions options{.processes = procs};
    if (mp::mpi::size() > 1) options.backend = mp::mpi::world();
    mp::Pool pool(options);
    for (std::size_t n : pool.starmap(list_append, jobs)) std::cout << "appended " << n << "\n";

    std::cout << "List processing complete.\n";
}
