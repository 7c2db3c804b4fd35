// Readable names for diagnostics: C++ type names, signals, and this process's name.
#pragma once

#include <string>

namespace polyproc::detail {

std::string demangle(const char* mangled);  // the mangled name itself when it cannot be demangled
std::string signal_name(int sig);           // "SIGKILL", or the number
std::string address_text(const void* p);    // "0x7f...": where an object is, as its repr says

// This process's name, as current_process().name() reports it: "MainProcess", or the name its
// Process had. Kept here, below every layer that reports it (a lock's repr names its owner), and
// set by the process layer once, in a new child before any of its user code runs.
const std::string& this_process_name() noexcept;
void set_this_process_name(std::string name);

}  // namespace polyproc::detail
