// Start methods and contexts (context.hpp).
#include "polyproc/context.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "process_internal.hpp"

namespace polyproc {

namespace {

std::mutex& method_mu() {
    static std::mutex* m = new std::mutex();
    return *m;
}
std::optional<std::string>& global_method() {
    static auto* m = new std::optional<std::string>();
    return *m;
}

void check_method(const std::string& method, const char* what = nullptr) {
    const auto all = get_all_start_methods();
    if (std::find(all.begin(), all.end(), method) == all.end()) {
        if (method == "forkserver") throw ValueError("forkserver start method not available");
        throw ValueError(std::string(what ? what : "") + "cannot find context for '" + method + "'");
    }
}

}  // namespace

namespace detail {
namespace {
// Fixes the default on first use, as Python's DefaultContext does; needs method_mu().
std::string effective_start_method_locked() {
    auto& m = global_method();
    if (!m) {
        // The default: fork, or what the environment says (run a program or a test suite under
        // another method without changing it).
        std::string method = "fork";
        if (const char* env = std::getenv("POLYPROC_START_METHOD"); env && *env) {
            check_method(env, "POLYPROC_START_METHOD: ");
            method = env;
        }
        m = method;
    }
    return *m;
}
}  // namespace

std::string effective_start_method() {
    std::lock_guard lock(method_mu());
    return effective_start_method_locked();
}
// In a fork child: the parent's lock may have been held by another thread.
void set_start_method_after_fork(const std::string& method) {
    new (&method_mu()) std::mutex();
    global_method() = method;
}
}  // namespace detail

std::vector<std::string> get_all_start_methods() { return {"fork", "spawn", "forkserver"}; }

std::string get_start_method() { return detail::effective_start_method(); }

std::optional<std::string> get_start_method(bool allow_none) {
    if (!allow_none) return detail::effective_start_method();
    std::lock_guard lock(method_mu());
    return global_method();
}

void set_start_method(std::optional<std::string> method, bool force) {
    if (method) check_method(*method);
    std::lock_guard lock(method_mu());
    if (global_method() && !force) throw std::runtime_error("context has already been set");
    if (!method && !force) {
        (void)detail::effective_start_method_locked();  // Python: set_start_method(None) fixes the default
        return;
    }
    global_method() = std::move(method);
}

Context get_context(std::optional<std::string> method) {
    Context c;
    if (method) {
        check_method(*method);
        c.method_ = std::move(method);
    }
    return c;
}

std::string Context::get_start_method() const { return method_ ? *method_ : detail::effective_start_method(); }

Context Context::get_context(std::optional<std::string> method) const {
    return method ? polyproc::get_context(std::move(method)) : *this;
}

void Context::set_start_method(std::optional<std::string> method, bool force) const {
    if (method_) throw ValueError("cannot set start method of concrete context");
    polyproc::set_start_method(std::move(method), force);
}

}  // namespace polyproc
