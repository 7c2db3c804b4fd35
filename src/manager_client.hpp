// The client side of a manager, process-wide (Python's BaseProxy machinery): per manager, one
// session connection that holds this process's references, and per thread, a channel for method
// calls. A fork child starts afresh: it opens its own session and takes references of its own to
// the proxies it inherited when it first uses them.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "polyproc/connection.hpp"
#include "polyproc/managers.hpp"
#include "polyproc/object.hpp"

namespace polyproc::detail::manager {

class ProxyRef {
public:
    ProxyRef(Address address, std::string authkey, std::string ident, std::string type_id);
    ~ProxyRef();  // the last reference to the ident in this process tells the server
    ProxyRef(const ProxyRef&) = delete;
    ProxyRef& operator=(const ProxyRef&) = delete;

    const Address address;
    const std::string address_text, authkey, ident, type_id;

    // Makes sure this process holds a server reference for this ProxyRef (after a fork, the
    // parent's does not count); throws when the manager cannot be reached or the object is gone.
    void ensure_counted() const;

private:
    friend std::shared_ptr<ProxyRef> adopt_created(const Address&, const std::string&, const std::string&,
                                                   const std::string&);
    // The fork generation it was counted in (0: not counted), read and written through atomic_ref.
    alignas(std::atomic_ref<std::uint64_t>::required_alignment) mutable std::uint64_t generation_ = 0;
};

// A reference to an object this process just created on its own session (already counted).
std::shared_ptr<ProxyRef> adopt_created(const Address& address, const std::string& authkey, const std::string& ident,
                                        const std::string& type_id);

// A server function ('create', 'number_of_objects', ...) on this process's session.
Object call_server_function(const Address& address, const std::string& authkey, const std::string& function,
                            const Object& args = Object::tuple(), const Object& kwds = Object::dict());

// One request on a fresh connection, as CPython's one-shot connections (dummy, shutdown).
Object one_shot(const Address& address, const std::string& authkey, const std::string& function);

// Closes this process's session with the manager at `address` and the calling thread's channel to
// it: always when the manager's server is gone (`server_gone`, its owner shut it down), otherwise
// only if this process holds no references there any more. Python closes a thread's connection
// when its last proxy goes; here a manager's connections stay for the next proxy, and go with the
// manager (BaseManager's shutdown or destructor). Another thread's channel to it closes when that
// thread next finds the manager gone, or at its exit.
void release_connections(const Address& address, bool server_gone) noexcept;

// The text that names a manager in errors: its address.
std::string describe(const Address& address);

}  // namespace polyproc::detail::manager
