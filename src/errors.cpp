// The exception types' constructors and messages (errors.hpp).
#include "polyproc/errors.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <memory>
#include <string>
#include <utility>

#include "names.hpp"

namespace polyproc {

namespace detail {

namespace {
std::string& process_name() {
    static std::string* name = new std::string("MainProcess");  // never destroyed: read at exit too
    return *name;
}
}  // namespace

const std::string& this_process_name() noexcept { return process_name(); }
void set_this_process_name(std::string name) { process_name() = std::move(name); }

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

std::string address_text(const void* p) {
    char text[32];
    std::snprintf(text, sizeof text, "%p", p);
    return text;
}

}  // namespace detail

BufferTooShort::BufferTooShort(std::vector<std::byte> message)
    : ProcessError("BufferTooShort: message of " + std::to_string(message.size()) + " bytes does not fit the buffer"),
      message_(std::move(message)) {}

OwnerDiedError::OwnerDiedError(pid_t dead_pid)
    : ProcessError("the owner of the lock (process " + std::to_string(dead_pid) +
                   ") died while holding it; you now hold the lock: repair what it guards, then release() it"),
      pid_(dead_pid) {}

RemoteError::RemoteError(std::string type_name, std::string message, pid_t pid, std::string trace)
    : ProcessError(type_name + ": " + message + " (raised in process " + std::to_string(pid) + ")"),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      pid_(pid),
      trace_(std::move(trace)) {}

WorkerLostError::WorkerLostError(pid_t pid, int exitcode, std::string task)
    : ProcessError("worker " + std::to_string(pid) + " died running " + task +
                   (exitcode < 0 ? " (killed by signal " + std::to_string(-exitcode) + ", " +
                                       detail::signal_name(-exitcode) + ")"
                                 : " (exit code " + std::to_string(exitcode) + ")")),
      pid_(pid),
      exitcode_(exitcode),
      task_(std::move(task)) {}

WorkerLostError::WorkerLostError(pid_t pid, std::string task, const std::string& why)
    : ProcessError("worker " + std::to_string(pid) + " was lost running " + task + ": " + why),
      pid_(pid),
      exitcode_(0),
      task_(std::move(task)) {}

}  // namespace polyproc
