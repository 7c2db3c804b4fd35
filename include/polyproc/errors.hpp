// polyproc/errors.hpp — the exception types of polyproc, mirroring Python's multiprocessing.
//
// Python name                        polyproc                 base
// ProcessError                       mp::ProcessError         std::runtime_error
// BufferTooShort/TimeoutError/
//   AuthenticationError              same names               mp::ProcessError
// queue.Empty / queue.Full           mp::Empty / mp::Full     std::runtime_error
// EOFError                           mp::EOFError             std::runtime_error
// ValueError / AssertionError        mp::ValueError           std::logic_error   (misuse)
// threading.BrokenBarrierError       mp::BrokenBarrierError   std::runtime_error
// (a lock's owner died; new)         mp::OwnerDiedError       mp::ProcessError
// OSError                            std::system_error naming the failed call
// pickle.UnpicklingError             mp::DecodeError          mp::ProcessError   (corrupt frame, wrong type)
//                                    mp::UnpicklingError      mp::DecodeError    (bad pickle bytes)
// KeyError / IndexError              mp::KeyError / mp::IndexError   std::out_of_range
// TypeError / AttributeError         mp::TypeError / mp::AttributeError   std::logic_error
// OverflowError                      mp::OverflowError        std::overflow_error
// RuntimeError                       mp::RuntimeError         std::runtime_error
// (worker raised)                    mp::RemoteError          mp::ProcessError
// (worker died mid-task)             mp::WorkerLostError      mp::ProcessError
//
// Process-safety: exceptions are plain values; they never cross a process boundary by themselves.
// A pool carries a task's exception back: the types above, the standard <stdexcept> ones,
// std::bad_alloc, std::system_error (its code kept) and any type given to register_exception<E>()
// are rethrown as themselves; anything else as mp::RemoteError.
//
//   try { conn.recv<int>(); } catch (const mp::EOFError&) { /* the other end is closed */ }
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <sys/types.h>
#include <vector>

namespace polyproc {

class ProcessError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// recv_bytes_into() got a message larger than the buffer; the whole message is kept here.
class BufferTooShort : public ProcessError {
public:
    explicit BufferTooShort(std::vector<std::byte> message);
    const std::vector<std::byte>& message() const noexcept { return message_; }

private:
    std::vector<std::byte> message_;
};

class TimeoutError : public ProcessError {
public:
    TimeoutError() : ProcessError("timed out") {}
    using ProcessError::ProcessError;
};

class AuthenticationError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

// A received frame is corrupt, truncated, not a polyproc object, or holds another type than asked.
class DecodeError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

// Bytes that should hold a pickle do not: truncated, an unknown opcode, a global outside the
// types polyproc knows.
class UnpicklingError : public DecodeError {
public:
    using DecodeError::DecodeError;
};

// A mapping has no such key. what() is the key's repr, as Python's str(KeyError(k)) is.
class KeyError : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

// A sequence index is out of range; the message is Python's ("list index out of range").
class IndexError : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

// An operation got a value of the wrong type ("unhashable type: 'list'").
class TypeError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// An object has no such attribute (a Namespace's missing name).
class AttributeError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// A number does not fit where it must go (an int beyond 64 bits).
class OverflowError : public std::overflow_error {
public:
    using std::overflow_error::overflow_error;
};

// Python's RuntimeError, for the errors Python reports with it ("release unlocked lock").
class RuntimeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Empty : public std::runtime_error {
public:
    Empty() : std::runtime_error("queue is empty") {}
    using std::runtime_error::runtime_error;
};

class Full : public std::runtime_error {
public:
    Full() : std::runtime_error("queue is full") {}
    using std::runtime_error::runtime_error;
};

class EOFError : public std::runtime_error {
public:
    EOFError() : std::runtime_error("EOFError: end of file") {}
    using std::runtime_error::runtime_error;
};

// Misuse of an API: Python raises ValueError or AssertionError; the message is Python's.
class ValueError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

class BrokenBarrierError : public std::runtime_error {
public:
    BrokenBarrierError() : std::runtime_error("barrier is broken") {}
    using std::runtime_error::runtime_error;
};

// A Lock or RLock was acquired after its previous owner died holding it (SIGKILL, crash, a thread
// that exited). The acquirer HOLDS the lock when this is thrown: repair the state the lock guards,
// then release() it. (Python's locks would block forever here.)
class OwnerDiedError : public ProcessError {
public:
    explicit OwnerDiedError(pid_t dead_pid);
    pid_t pid() const noexcept { return pid_; }  // the process the dead owner belonged to

private:
    pid_t pid_;
};

// A task raised an exception of a type that cannot be rethrown as itself in the parent.
class RemoteError : public ProcessError {
public:
    RemoteError(std::string type_name, std::string message, pid_t pid, std::string trace = {});
    const std::string& type_name() const noexcept { return type_name_; }
    const std::string& remote_message() const noexcept { return message_; }
    pid_t pid() const noexcept { return pid_; }
    const std::string& trace() const noexcept { return trace_; }

private:
    std::string type_name_, message_;
    pid_t pid_;
    std::string trace_;
};

// A worker process died while running a task (signal, exit(), abort()), or was lost with it.
class WorkerLostError : public ProcessError {
public:
    // exitcode follows Process::exitcode(): -N when killed by signal N.
    WorkerLostError(pid_t pid, int exitcode, std::string task);
    // A worker that cannot say how it ended (an MPI rank that stopped answering): exitcode() 0.
    WorkerLostError(pid_t pid, std::string task, const std::string& why);
    pid_t pid() const noexcept { return pid_; }
    int exitcode() const noexcept { return exitcode_; }
    const std::string& task() const noexcept { return task_; }

private:
    pid_t pid_;
    int exitcode_;
    std::string task_;
};

namespace detail {
using ExceptionFactory = std::exception_ptr (*)(const std::string& message);
void register_exception_factory(const char* mangled_type_name, ExceptionFactory factory);
}  // namespace detail

// Registers E so that an exception of exactly type E raised in another process (a pool's task) is
// rethrown here as E, built from its what() message, instead of as mp::RemoteError. Call it in
// the receiving process before such exceptions arrive.
template <class E>
void register_exception() {
    static_assert(std::is_constructible_v<E, std::string>,
                  "polyproc::register_exception: E must be constructible from its message (a std::string)");
    detail::register_exception_factory(typeid(E).name(),
                                       [](const std::string& message) { return std::make_exception_ptr(E(message)); });
}

}  // namespace polyproc
