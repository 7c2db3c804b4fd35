// Readable names for diagnostics: C++ type names and signals.
#pragma once

#include <string>

namespace polyproc::detail {

std::string demangle(const char* mangled);  // the mangled name itself when it cannot be demangled
std::string signal_name(int sig);           // "SIGKILL", or the number
}  // namespace polyproc::detail
