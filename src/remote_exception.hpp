// Exceptions across the process boundary: a process catches an exception (capture), sends its
// description (RemoteException, any codec channel), and the process that receives it rethrows an
// exception of the same type (to_exception_ptr): the standard <stdexcept> types, std::bad_alloc,
// std::system_error (its code kept), polyproc's own errors, and whatever the program registered
// with mp::register_exception<E>(); anything else arrives as mp::RemoteError (the type's name, the
// message, the pid of the process that raised it). A pool's results use it; a manager's replies
// and an MPI pool's results are meant to.
//
// Both sides run the same program (a fork, spawn or forkserver child of it), so a type travels as
// its mangled name.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include <sys/types.h>

namespace polyproc::detail {

struct RemoteException {
    std::string type;  // mangled
    std::string message;
    std::int32_t code = 0;      // std::system_error's value
    std::int32_t category = 0;  // 1 system, 2 generic, 0 other / not a system_error
    template <class A>
    void serialize(A& ar) {
        ar(type, message, code, category);
    }
};

// The exception being handled; call it in a catch block.
RemoteException capture_current_exception();

// The same type again when it is known here, else mp::RemoteError naming `pid` as where it came from.
std::exception_ptr to_exception_ptr(const RemoteException& e, pid_t pid);

}  // namespace polyproc::detail
