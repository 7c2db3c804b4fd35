// polyproc/detail/code_ref.hpp — code addresses that stay valid in a re-executed program.
//
// A spawned or forkserver child runs the same executable at other addresses (ASLR), so a function
// pointer or a runner instantiation travels as a CodeRef: 64 bits that the child turns back into
// an address of its own. Code of the executable (or of the object holding polyproc) is an offset
// from an anchor there; code of a shared library loaded when the program started is the
// library's index in the program's startup list plus an offset; code of a library dlopen()ed
// later is a hash of its path plus an offset, and the child dlopen()s the same libraries before it
// runs anything. A function registered by name with POLYPROC_REGISTER travels as the hash of that
// name: the fallback for code whose file the child cannot load the same way. Code of no loaded
// file is refused when it would be shipped (mp::ValueError naming it), never sent as an address
// that means nothing in the child.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace polyproc::detail {

using CodeRef = std::uint64_t;

// Throws mp::ValueError (see above) when `address` cannot be found again in a child.
CodeRef code_offset(std::uintptr_t address);
// mp::ProcessError when the reference names nothing in this process (a corrupt message, or a
// child that did not load the same libraries).
std::uintptr_t code_address(CodeRef ref);

// Records the libraries loaded now as "loaded at startup" (mp::init does; otherwise the first use).
void snapshot_startup_objects();
// A hash of the startup libraries' names and order: parent and child must agree on it.
std::uint64_t startup_objects_fingerprint();
// A hash that two processes share only when they run the same files: the startup libraries'
// names and order, and the device and inode of every file whose code was mapped when the startup
// snapshot was taken (the executable and its libraries, as loaded). A code reference that travels
// between processes not related by fork or spawn (a manager's client and server) means the same
// code only when these agree.
std::uint64_t program_fingerprint();

// The libraries dlopen()ed since the startup snapshot, in load order; a fresh child loads them
// (load_late_libraries, mp::ProcessError naming one that fails) before it resolves any CodeRef.
std::vector<std::string> late_libraries();
void load_late_libraries(const std::vector<std::string>& paths);

// POLYPROC_REGISTER's engine: `name` must be unique in the program.
bool register_code(const char* name, std::uintptr_t address);

}  // namespace polyproc::detail

// Makes a function findable in spawn and forkserver children although it lives in code the
// automatic lookup cannot see (a library loaded with dlopen()). Place it at namespace scope in a
// source file that the child loads too:  POLYPROC_REGISTER(my_plugin_task);
#define POLYPROC_REGISTER(function)                                     \
    [[maybe_unused]] static const bool polyproc_registered_##function = \
        ::polyproc::detail::register_code(#function, reinterpret_cast<std::uintptr_t>(&function))
