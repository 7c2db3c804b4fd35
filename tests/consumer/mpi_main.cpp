// The MPI pool from an installed polyproc::mpi (or add_subdirectory): run alone, a world of one.
#include <polyproc/mpi.hpp>
#include <polyproc/polyproc.hpp>

#include <iostream>

int main(int argc, char** argv) {
    polyproc::mpi::init(argc, argv);
    std::cout << "mpi world of " << polyproc::mpi::size() << "\n";
}
