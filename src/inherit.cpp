// ChildReader's out-of-line parts (detail/inherit.hpp): what a spawn or forkserver child reads of
// its bootstrap message, with the checks that make a corrupt message a DecodeError.
#include "polyproc/detail/inherit.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "polyproc/detail/shared_region.hpp"
#include "polyproc/errors.hpp"

namespace polyproc::detail {

std::span<const std::byte> ChildReader::take(std::size_t n) {
    if (n > bytes_.size() - at_) throw DecodeError("polyproc: corrupt bootstrap message (truncated arguments)");
    auto out = bytes_.subspan(at_, n);
    at_ += n;
    return out;
}

FileDescriptor ChildReader::fd() {
    const auto index = raw<std::uint32_t>();
    if (index >= fds_.size() || !fds_[index])
        throw DecodeError("polyproc: corrupt bootstrap message (descriptor " + std::to_string(index) + " missing)");
    return std::move(fds_[index]);
}

std::shared_ptr<SharedRegion> ChildReader::region() {
    FileDescriptor memfd = fd();
    const auto offset = raw<std::uint64_t>();
    const auto size = raw<std::uint64_t>();
    return std::make_shared<SharedRegion>(SharedRegion::attach(std::move(memfd), offset, size));
}

}  // namespace polyproc::detail
