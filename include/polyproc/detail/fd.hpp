// polyproc/detail/fd.hpp — FileDescriptor, the one owning handle for a POSIX descriptor.
// Every descriptor polyproc opens is close-on-exec and owned by exactly one FileDescriptor.
#pragma once

#include <utility>

namespace polyproc {

class FileDescriptor {
public:
    FileDescriptor() noexcept = default;
    explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
    FileDescriptor(FileDescriptor&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    FileDescriptor& operator=(FileDescriptor&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the owned descriptor (errors from close(2) are ignored: the fd is gone either way).
    void reset(int fd = -1) noexcept;
    // A new close-on-exec descriptor for the same open file.
    FileDescriptor dup() const;

private:
    int fd_ = -1;
};

}  // namespace polyproc
