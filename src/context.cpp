// Start methods and contexts (context.hpp).
#include "polyproc/context.hpp"

#include "start_method.hpp"

namespace polyproc {

using detail::StartMethod;

std::vector<std::string> get_all_start_methods() {
    std::vector<std::string> all;
    for (StartMethod m : detail::kAllStartMethods) all.emplace_back(detail::start_method_name(m));
    return all;
}

std::string get_start_method() { return std::string(detail::start_method_name(detail::global_start_method())); }

std::optional<std::string> get_start_method(bool allow_none) {
    if (!allow_none) return get_start_method();
    const auto m = detail::global_start_method_if_set();
    if (!m) return std::nullopt;
    return std::string(detail::start_method_name(*m));
}

void set_start_method(std::optional<std::string> method, bool force) {
    std::optional<StartMethod> m;
    if (method) m = detail::parse_start_method(*method);
    detail::set_global_start_method(m, force);
}

Context get_context(std::optional<std::string> method) {
    Context c;
    if (method) {
        (void)detail::parse_start_method(*method);
        c.method_ = std::move(method);
    }
    return c;
}

std::string Context::get_start_method() const { return method_ ? *method_ : polyproc::get_start_method(); }

Context Context::get_context(std::optional<std::string> method) const {
    return method ? polyproc::get_context(std::move(method)) : *this;
}

void Context::set_start_method(std::optional<std::string> method, bool force) const {
    if (method_) throw ValueError("cannot set start method of concrete context");
    polyproc::set_start_method(std::move(method), force);
}

}  // namespace polyproc
