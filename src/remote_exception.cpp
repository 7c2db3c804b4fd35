// Exceptions across the process boundary. See remote_exception.hpp.
#include "remote_exception.hpp"

#include <cxxabi.h>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <typeinfo>
#include <unordered_map>

#include "names.hpp"
#include "polyproc/errors.hpp"

namespace polyproc::detail {

namespace {

// The types that come back as themselves: the standard ones and polyproc's, then whatever the
// program registers.
struct ExceptionRegistry {
    std::mutex mu;
    std::unordered_map<std::string, ExceptionFactory> factories;
    ExceptionRegistry() {
        add<std::logic_error>();
        add<std::invalid_argument>();
        add<std::domain_error>();
        add<std::length_error>();
        add<std::out_of_range>();
        add<std::runtime_error>();
        add<std::range_error>();
        add<std::overflow_error>();
        add<std::underflow_error>();
        add<ProcessError>();
        add<TimeoutError>();
        add<AuthenticationError>();
        add<DecodeError>();
        add<ValueError>();
        add<EOFError>();
        add<Empty>();
        add<Full>();
        add<BrokenBarrierError>();
        add<UnpicklingError>();
        add<KeyError>();
        add<IndexError>();
        add<TypeError>();
        add<AttributeError>();
        add<OverflowError>();
        add<RuntimeError>();
        factories[typeid(std::bad_alloc).name()] = [](const std::string&) {
            return std::make_exception_ptr(std::bad_alloc());
        };
    }
    template <class E>
    void add() {
        factories[typeid(E).name()] = [](const std::string& m) { return std::make_exception_ptr(E(m)); };
    }
};

ExceptionRegistry& exception_registry() {
    static ExceptionRegistry* r = new ExceptionRegistry();  // never destroyed: used until exit
    return *r;
}

}  // namespace

RemoteException capture_current_exception() {
    RemoteException info;
    try {
        throw;
    } catch (const std::system_error& e) {
        info.type = typeid(e).name();
        info.message = e.what();
        info.code = e.code().value();
        info.category = e.code().category() == std::system_category()    ? 1
                        : e.code().category() == std::generic_category() ? 2
                                                                         : 0;
    } catch (const std::exception& e) {
        info.type = typeid(e).name();
        info.message = e.what();
    } catch (...) {
        const std::type_info* t = abi::__cxa_current_exception_type();
        info.type = t ? t->name() : "unknown exception";
    }
    return info;
}

std::exception_ptr to_exception_ptr(const RemoteException& info, pid_t pid) {
    if (info.type == typeid(std::system_error).name() && info.category != 0) {
        const std::error_code ec(info.code, info.category == 1 ? std::system_category() : std::generic_category());
        // what() is "<message>: <the code's message>"; the constructor appends the second part again.
        std::string what = info.message;
        const std::string suffix = ": " + ec.message();
        if (what.size() >= suffix.size() && what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0)
            what.resize(what.size() - suffix.size());
        return std::make_exception_ptr(std::system_error(ec, what));
    }
    ExceptionFactory factory = nullptr;
    {
        auto& r = exception_registry();
        std::lock_guard lock(r.mu);
        if (auto it = r.factories.find(info.type); it != r.factories.end()) factory = it->second;
    }
    if (factory) return factory(info.message);
    return std::make_exception_ptr(RemoteError(demangle(info.type.c_str()), info.message, pid));
}

void register_exception_factory(const char* mangled_type_name, ExceptionFactory factory) {
    auto& r = exception_registry();
    std::lock_guard lock(r.mu);
    r.factories[mangled_type_name] = factory;
}

}  // namespace polyproc::detail
