// polyproc/shared_memory.hpp — SharedMemory (Python's multiprocessing.shared_memory.SharedMemory):
// a named POSIX shared memory segment (shm_open, /dev/shm) that any process can attach to by
// name: fork children, unrelated polyproc programs, Python (names and layout are Python's), C.
//
// Python's behaviour and messages: creating needs a size > 0; attaching needs a name and maps the
// segment's real size (the size argument is ignored); a name collision on create is
// std::system_error(EEXIST) ("FileExistsError"), attaching to a missing name is
// std::system_error(ENOENT) ("FileNotFoundError"); name() has no leading slash; automatic names
// are "psm_" + 8 lowercase hex digits. close() unmaps this process's view and is idempotent;
// after it buf() throws mp::ValueError (Python's buf becomes None and its released memoryview
// raises ValueError); name() and size() stay valid. unlink() removes the name (a second
// unlink() is ENOENT); mappings stay valid until each process closes. The destructor closes and
// never unlinks.
//
// No leaks: a segment created with track = true (the default) is registered with this program
// tree's resource tracker, a small process forked the first time a tracked segment is created.
// Every process of the tree (the creator and everything it forks) holds the tracker's pipe; when
// the last of them is gone, however it ended (SIGKILL included), the tracker unlinks every
// registered segment nobody unlink()ed and prints one warning line to stderr, as Python's
// resource tracker does. unlink() unregisters. track = false opts a segment out (Python 3.13's
// track=False): it persists until someone unlinks it. The tree is the one rooted where the tracker
// was started: a process forked before that starts a tracker of its own when it first creates a
// tracked segment, and its segments go when its own subtree ends (so it is in Python with the
// fork start method).
// Unlike Python 3.11/3.12, attaching never registers: there, a process that merely attached
// (a Python reader of our segment, say) unlinks the segment when it exits, destroying it under
// the creator's feet (CPython gh-82300; 3.13 added track=False for this reason). Here a segment
// belongs to the tree that created it, and only that tree's end removes it.
// Limits: a SIGKILL in the microseconds between shm_open and the registration that follows it
// leaks that one name; what a tracker that was itself SIGKILLed knew is lost (the next creation
// starts a new one, with Python's warning). The tracker is a fork of the process that first
// created a tracked segment: it drops the descriptors and shared mappings it inherited, but keeps
// (copy-on-write) that process's private memory as it was at that moment.
//
// Process-safety: the bytes are plain shared memory with no synchronization: guard concurrent
// access with an mp::Lock or use std::atomic_ref. A handle is not synchronized either: use it from
// one thread at a time. A fork child inherits the handle's mapping (a captured handle works
// there, and closes its own view); other processes attach with SharedMemory(name). Exactly one
// process should unlink().
//
//   mp::SharedMemory shm(std::nullopt, /*create=*/true, 4096);   // name() == "psm_1a2b3c4d"
//   std::memcpy(shm.buf().data(), "hello", 5);
//   mp::Process p([name = shm.name()] {
//       mp::SharedMemory other(name);                            // attach by name
//       other.buf()[0] = std::byte{'H'};
//   });
//   p.start();
//   p.join();
//   shm.close();
//   shm.unlink();
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <sys/types.h>

#include "polyproc/detail/inherit.hpp"

namespace polyproc {

class SharedMemory {
public:
    // Python's SharedMemory(name=None, create=False, size=0) plus 3.13's track=True.
    explicit SharedMemory(std::optional<std::string> name = {}, bool create = false, std::size_t size = 0,
                          bool track = true);
    // Move-only. A moved-from handle is closed and has no name: only assignment and destruction
    // are meaningful (unlink() on it throws mp::ValueError).
    SharedMemory(SharedMemory&& o) noexcept;
    SharedMemory& operator=(SharedMemory&& o) noexcept;
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;
    ~SharedMemory();  // close(), never unlink()

    const std::string& name() const noexcept { return name_; }  // without the leading slash
    std::size_t size() const noexcept { return size_; }
    bool track() const noexcept { return track_; }
    // The whole segment. A handle, like a pointer: constness does not reach the shared bytes.
    // mp::ValueError once closed.
    std::span<std::byte> buf() const;
    bool closed() const noexcept { return data_ == nullptr; }

    void close() noexcept;
    void unlink();
    std::string repr() const;  // SharedMemory('psm_1a2b3c4d', size=4096)

    // Sending to a spawn or forkserver child, as Python pickles it: by name. The child attaches
    // without tracking (the creator's handle decides when it is unlinked).
    void reduce_for_child(detail::ChildWriter& w) const { w.value(name_); }
    explicit SharedMemory(detail::ChildReader& r) : SharedMemory(r.value<std::string>(), false, 0, false) {}

private:
    std::string name_;
    std::size_t size_ = 0;
    std::byte* data_ = nullptr;  // mapping of size_ bytes, or null when closed / size 0
    bool track_ = true;
};

namespace detail {
// The resource tracker (src/resource_tracker.cpp). Names are SharedMemory::name() (no slash).
// tracker_register starts this tree's tracker if needed (and relaunches one that was killed,
// with Python's warning); tracker_unregister never starts one. Thread-safe.
void tracker_register(std::string_view name);
void tracker_unregister(std::string_view name) noexcept;
// Starts the tracker now if this process has none, so that processes forked afterwards share it
// (Python's resource_tracker.ensure_running(), which its spawn and forkserver starts call).
void tracker_ensure_running();
// The tracker this process reports to (inherited through fork), or 0 before one is started.
pid_t tracker_pid() noexcept;
// For a spawn or forkserver start (Python's spawn passes tracker_fd): starts the tracker if none
// runs and returns its pipe and pid, for the child to adopt with tracker_adopt, so that one
// tracker serves the whole tree whatever the start methods.
std::pair<FileDescriptor, pid_t> tracker_for_child();
void tracker_adopt(FileDescriptor pipe, pid_t pid);
}  // namespace detail

}  // namespace polyproc
