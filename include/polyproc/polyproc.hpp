// polyproc/polyproc.hpp — the umbrella header: Python's multiprocessing for C++20 on Linux.
//
//   #include <polyproc/polyproc.hpp>
//   namespace mp = polyproc;             // like `import multiprocessing as mp`
//
//   int main(int argc, char** argv) {
//       mp::init(argc, argv);            // first line of main (spawn and forkserver need it)
//       auto [a, b] = mp::Pipe();
//       mp::Process p([&] { b.send(std::string("hello from the child")); });
//       p.start();
//       std::cout << a.recv<std::string>() << "\n";
//       p.join();
//   }
//
// Each component also has its own header, named after CPython's module: errors.hpp, object.hpp
// (mp::Object, Python's values), context.hpp (start methods, mp::init), reduction.hpp (the
// codec), connection.hpp, process.hpp, queues.hpp, pool.hpp, managers.hpp, synchronize.hpp,
// sharedctypes.hpp, shared_memory.hpp.
#pragma once

#include "polyproc/connection.hpp"
#include "polyproc/context.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/managers.hpp"
#include "polyproc/object.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/process.hpp"
#include "polyproc/queues.hpp"
#include "polyproc/reduction.hpp"
#include "polyproc/shared_memory.hpp"
#include "polyproc/sharedctypes.hpp"
#include "polyproc/synchronize.hpp"
