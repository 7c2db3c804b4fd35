// SharedRegion: memfd-backed shared memory, small regions carved from shared arenas.
#include "polyproc/detail/shared_region.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <sys/mman.h>
#include <sys/stat.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "polyproc/errors.hpp"

namespace polyproc::detail {

struct SharedSegment {
    FileDescriptor fd;
    void* base = nullptr;
    std::size_t size = 0;
    ~SharedSegment() {
        if (base) os::unmap(base, size);
    }
};

namespace {

constexpr std::size_t kArenaSize = 256 * 1024;
constexpr std::size_t kArenaAlign = 64;  // a cache line: two locks never share one
constexpr std::size_t kLargestArenaRegion = 16 * 1024;  // a Condition's slots fit

// The first cache line of an arena file: the bump pointer every process allocating from it shares.
struct ArenaHeader {
    std::atomic<std::uint64_t> used;
};
static_assert(sizeof(ArenaHeader) <= kArenaAlign);

std::shared_ptr<SharedSegment> new_segment(std::size_t size, bool noreserve) {
    auto seg = std::make_shared<SharedSegment>();
    seg->fd = os::memfd_create("polyproc");
    os::ftruncate(seg->fd.get(), static_cast<off_t>(size));
    // memfd pages are otherwise only taken when touched: a Value or an Array that does not fit
    // must fail here with ENOMEM, as an anonymous mapping did, not with SIGBUS at first use. A
    // queue's ring (noreserve) is address space on purpose.
    if (!noreserve) os::fallocate(seg->fd.get(), static_cast<off_t>(size));
    seg->base = os::map_shared_fd(seg->fd.get(), size, noreserve);
    seg->size = size;
    return seg;
}

struct Arenas {
    std::mutex mu;
    std::shared_ptr<SharedSegment> current;
    // Segments attached from other processes, by inode: one mapping per file.
    std::map<std::pair<dev_t, ino_t>, std::weak_ptr<SharedSegment>> attached;
};

Arenas& arenas() {
    static Arenas* a = new Arenas();  // never destroyed: regions may outlive static destructors
    return *a;
}

// A fork child inherits the parent's lock state; it is only ever held briefly and never across
// fork by the forking thread, but another thread may hold it.
const bool arenas_atfork = (register_after_fork([]() noexcept { new (&arenas().mu) std::mutex(); }), true);

}  // namespace

SharedRegion::SharedRegion(std::size_t size, Commit commit) {
    if (size == 0) size = 1;
    if (commit == Commit::now && size <= kLargestArenaRegion) {
        const std::size_t need = (size + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
        Arenas& a = arenas();
        std::lock_guard lock(a.mu);
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!a.current) {
                a.current = new_segment(kArenaSize, false);
                keep(Kept::fd, a.current->fd.get());  // kept as the current arena
                static_cast<ArenaHeader*>(a.current->base)->used.store(kArenaAlign, std::memory_order_relaxed);
            }
            auto* header = static_cast<ArenaHeader*>(a.current->base);
            const std::uint64_t at = header->used.fetch_add(need, std::memory_order_relaxed);
            if (at + need <= kArenaSize) {
                segment_ = a.current;
                offset_ = static_cast<std::size_t>(at);
                size_ = size;
                data_ = static_cast<std::byte*>(segment_->base) + offset_;
                return;
            }
            unkeep(Kept::fd, a.current->fd.get());
            a.current.reset();  // full (a fork relative may have filled it): start another
        }
    }
    segment_ = new_segment(size, commit == Commit::on_touch);
    size_ = size;
    data_ = segment_->base;
}

SharedRegion SharedRegion::attach(FileDescriptor memfd, std::size_t offset, std::size_t size) {
    struct stat st {};
    if (::fstat(memfd.get(), &st) != 0) os::throw_errno("fstat");
    const auto file_size = static_cast<std::size_t>(st.st_size);
    if (size == 0 || offset > file_size || size > file_size - offset)
        throw ValueError("polyproc: a shared region received from another process lies outside its file (offset " +
                         std::to_string(offset) + ", size " + std::to_string(size) + ", file " +
                         std::to_string(file_size) + " bytes)");
    Arenas& a = arenas();
    std::shared_ptr<SharedSegment> seg;
    {
        std::lock_guard lock(a.mu);
        auto& slot = a.attached[{st.st_dev, st.st_ino}];
        seg = slot.lock();
        if (!seg) {
            seg = std::make_shared<SharedSegment>();
            // Large files are queue rings reserved with MAP_NORESERVE by their creator.
            seg->base = os::map_shared_fd(memfd.get(), file_size, file_size > kArenaSize);
            seg->size = file_size;
            seg->fd = std::move(memfd);
            slot = seg;
        }
    }
    SharedRegion r;
    r.segment_ = std::move(seg);
    r.offset_ = offset;
    r.size_ = size;
    r.data_ = static_cast<std::byte*>(r.segment_->base) + offset;
    return r;
}

SharedRegion::~SharedRegion() = default;

int SharedRegion::fd() const noexcept { return segment_ ? segment_->fd.get() : -1; }

}  // namespace polyproc::detail
