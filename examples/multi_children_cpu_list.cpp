// multi_children_cpu_list — seed 002 (002_99cc650f6dfa1104.txt), lines 269-304: two CPU-bound
// children, each started with a target and three arguments, then joined. Incidentally each
// out_list in the main process stays empty: the appends happen in the child's copy.
#include <cstddef>
#include <iostream>
#include <random>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// Creates an empty list and then appends a random number to the list 'count' number of times.
// A CPU-heavy operation!
void list_append(std::size_t count, [[maybe_unused]] int id, std::vector<double>& out_list) {
    std::mt19937_64 gen(std::random_device{}());
    std::uniform_real_distribution<double> random(0.0, 1.0);
    for (std::size_t i = 0; i < count; ++i) out_list.push_back(random(gen));
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::size_t size = 10000000;  // Number of random numbers to add
    int procs = 2;                // Number of processes to create

    // Create a list of jobs and then iterate through the number of processes appending each
    // process to the job list
    std::vector<mp::Process> jobs;
    for (int i = 0; i < procs; ++i) {
        std::vector<double> out_list;
        mp::Process process(list_append, size, i, out_list);  // the Process keeps a copy of out_list
        jobs.push_back(std::move(process));
    }

    // Start the processes (i.e. calculate the random number lists)
    for (auto& j : jobs) j.start();

    // Ensure all of the processes have finished
    for (auto& j : jobs) j.join();

    std::cout << "List processing complete.\n" << std::flush;
}
