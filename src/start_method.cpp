// The start methods and the global one. See start_method.hpp.
#include "start_method.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>

#include "polyproc/errors.hpp"

namespace polyproc::detail {

namespace {

std::mutex& method_mu() {
    static std::mutex* m = new std::mutex();  // never destroyed: used until exit
    return *m;
}
std::optional<StartMethod>& global_method() {
    static auto* m = new std::optional<StartMethod>();
    return *m;
}

// Fixes the default on first use, as Python's DefaultContext does; needs method_mu().
StartMethod global_start_method_locked() {
    auto& m = global_method();
    if (!m) {
        // fork, or what the environment says (run a program or a test suite under another method
        // without changing it).
        m = StartMethod::fork;
        if (const char* env = std::getenv("POLYPROC_START_METHOD"); env && *env)
            m = parse_start_method(env, "POLYPROC_START_METHOD: ");
    }
    return *m;
}

}  // namespace

StartMethod parse_start_method(std::string_view name, const char* what) {
    for (StartMethod m : kAllStartMethods)
        if (start_method_name(m) == name) return m;
    throw ValueError(std::string(what) + "cannot find context for '" + std::string(name) + "'");
}

StartMethod global_start_method() {
    std::lock_guard lock(method_mu());
    return global_start_method_locked();
}

std::optional<StartMethod> global_start_method_if_set() {
    std::lock_guard lock(method_mu());
    return global_method();
}

void set_global_start_method(std::optional<StartMethod> method, bool force) {
    std::lock_guard lock(method_mu());
    if (global_method() && !force) throw std::runtime_error("context has already been set");
    if (!method && !force) {
        (void)global_start_method_locked();  // Python: set_start_method(None) fixes the default
        return;
    }
    global_method() = method;
}

void set_start_method_in_child(StartMethod method) {
    new (&method_mu()) std::mutex();
    global_method() = method;
}

}  // namespace polyproc::detail
