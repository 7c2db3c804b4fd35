// SharedMemory: named POSIX shared memory, CPython 3.11's shared_memory.SharedMemory (docs/shared_memory.md).
#include "polyproc/shared_memory.hpp"

#include <fcntl.h>
#include <limits>
#include <sys/mman.h>
#include <utility>

#include "os.hpp"
#include "polyproc/errors.hpp"

namespace polyproc {

namespace {

// Python's _make_filename(): "psm_" + secrets.token_hex(4); with the slash, 14 characters, the
// limit of the most restrictive platform Python supports (macOS).
std::string make_filename() { return "psm_" + os::random_hex(4); }

// Python prepends one slash to the name it is given, and name() strips it again.
std::string shm_path(const std::string& name) { return "/" + name; }

}  // namespace

SharedMemory::SharedMemory(std::optional<std::string> name, bool create, std::size_t size, bool track) : track_(track) {
    // Python's checks, in Python's order ('size' < 0 cannot happen with size_t).
    if (create && size == 0) throw ValueError("'size' must be a positive number different from zero");
    if (!name && !create) throw ValueError("'name' can only be None if create=True");
    // Python 3.13 rejects these; before, the name was silently cut at the NUL.
    if (name && name->find('\0') != std::string::npos) throw ValueError("embedded null character");
    if (size > static_cast<std::size_t>(std::numeric_limits<off_t>::max()))
        throw ValueError("'size' is too large");  // Python: OverflowError from os.ftruncate

    FileDescriptor fd;
    if (!create) {
        fd = os::shm_open(shm_path(*name), O_RDWR, 0600);
        name_ = std::move(*name);
    } else if (name) {
        fd = os::shm_open(shm_path(*name), O_CREAT | O_EXCL | O_RDWR, 0600);
        name_ = std::move(*name);
    } else {
        for (;;) {  // a collision with an existing random name: draw another, as Python does
            std::string candidate = make_filename();
            try {
                fd = os::shm_open(shm_path(candidate), O_CREAT | O_EXCL | O_RDWR, 0600);
            } catch (const std::system_error& e) {
                if (e.code() == std::errc::file_exists) continue;
                throw;
            }
            name_ = std::move(candidate);
            break;
        }
    }

    bool registered = false;
    try {
        if (create) {
            // Register before anything else can fail or take time: from here on a SIGKILL can no
            // longer leak the name. (Before shm_open we could not: if the name were someone
            // else's, the tracker would unlink a segment that is not ours.)
            if (track_) {
                detail::tracker_register(name_);
                registered = true;
            }
            os::ftruncate(fd.get(), static_cast<off_t>(size));
        }
        // Attaching maps the real size; the requested one is ignored, as in Python.
        size_ = static_cast<std::size_t>(os::fstat_size(fd.get()));
        if (size_ == 0) throw ValueError("cannot mmap an empty file");  // Python's mmap.mmap(fd, 0)
        data_ = static_cast<std::byte*>(os::map_shared_fd(fd.get(), size_));
    } catch (...) {
        // A segment we created and cannot use is removed again (Python unlinks on OSError); one
        // we only attached to is someone else's and stays.
        if (create) {
            try {
                os::shm_unlink(shm_path(name_));
            } catch (const std::system_error&) {  // keep the original error
            }
            if (registered) detail::tracker_unregister(name_);
        }
        throw;
    }
    // The descriptor is closed here (by fd's destructor): the mapping keeps the object alive, and
    // a program with many segments does not spend a descriptor on each (Python keeps it open).
}

SharedMemory::SharedMemory(SharedMemory&& o) noexcept
    : name_(std::move(o.name_)),
      size_(std::exchange(o.size_, 0)),
      data_(std::exchange(o.data_, nullptr)),
      track_(o.track_) {
    o.name_.clear();
}

SharedMemory& SharedMemory::operator=(SharedMemory&& o) noexcept {
    if (this != &o) {
        close();
        name_ = std::move(o.name_);
        o.name_.clear();
        size_ = std::exchange(o.size_, 0);
        data_ = std::exchange(o.data_, nullptr);
        track_ = o.track_;
    }
    return *this;
}

SharedMemory::~SharedMemory() { close(); }

std::span<std::byte> SharedMemory::buf() const {
    // Python: buf is None after close(), and views taken from it raise this ValueError.
    if (!data_) throw ValueError("operation forbidden on released memoryview object");
    return {data_, size_};
}

void SharedMemory::close() noexcept {
    if (data_) os::unmap(data_, size_);
    data_ = nullptr;
}

void SharedMemory::unlink() {
    if (name_.empty()) throw ValueError("SharedMemory handle is empty (moved from)");
    try {
        os::shm_unlink(shm_path(name_));
    } catch (const std::system_error& e) {
        // Someone else removed it: the name is no longer ours to clean up at exit (and a later
        // segment of the same name must not be unlinked by our tracker).
        if (track_ && e.code() == std::errc::no_such_file_or_directory) detail::tracker_unregister(name_);
        throw;
    }
    // Python 3.13: only a tracking handle unregisters. Attaching does not register, so this also
    // lets a process of the same tree unlink a segment another one created without it being
    // reported as leaked. Without a tracker in this process this does nothing.
    if (track_) detail::tracker_unregister(name_);
}

std::string SharedMemory::repr() const { return "SharedMemory('" + name_ + "', size=" + std::to_string(size_) + ")"; }

}  // namespace polyproc
