// LocalPoolBackend's queues and life: the task queue (tasks and stop records put), the result
// queue (results taken), start and join. Its parts and their files: pool_local.hpp.
#include "pool_local.hpp"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <thread>

#include <sys/eventfd.h>
#include <unistd.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "pool_records.hpp"
#include "start_method.hpp"
#include "polyproc/detail/timeout.hpp"
#include "polyproc/errors.hpp"

namespace polyproc::detail {

LocalPoolBackend::LocalPoolBackend(const PoolOptions& options, const WorkerCounts& counts)
    : options_(options),
      method_(options_.start_method.empty() ? global_start_method() : parse_start_method(options_.start_method)),
      elastic_(options_.max_processes > 0),
      counts_(counts),
      creator_(::getpid()),
      region_(64 + sizeof(WorkerSlot) * std::size_t(counts_.max)) {
    shared_ = ::new (region_.data()) PoolShared();
    auto* slot_mem = static_cast<std::byte*>(region_.data()) + 64;
    slots_ = reinterpret_cast<WorkerSlot*>(slot_mem);
    for (int i = 0; i < counts_.max; ++i) ::new (&slots_[i]) WorkerSlot();
    workers_.resize(std::size_t(counts_.max));
    wake_fd_ = FileDescriptor(os::check("eventfd", [] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));
}

LocalPoolBackend::~LocalPoolBackend() {
    // In a forked copy the supervisor is the parent's, and does not exist here: forget its handle
    // (destroying a joinable std::thread would abort). In the creator, join() came first.
    if (::getpid() != creator_) new (&supervisor_) std::thread();
}

void LocalPoolBackend::start(Owner& owner) {
    owner_ = &owner;
    // Workers are forked by the supervisor thread (replacements must be, and a daemonic child dies
    // with the thread that forked it); start() waits until the first ones are started.
    try {
        supervisor_ = helper_thread([this] { supervise(); });
    } catch (...) {
        end_result_stream();
        throw;
    }
    {
        std::unique_lock lock(started_mu_);
        started_cv_.wait(lock, [&] { return started_; });
    }
    if (start_error_) {
        supervisor_.join();
        end_result_stream();
        std::rethrow_exception(start_error_);
    }
}

void LocalPoolBackend::join() {
    std::lock_guard lock(join_mu_);
    if (supervisor_.joinable()) supervisor_.join();  // it ends the result stream as it stops
}

void LocalPoolBackend::wake() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
}

bool LocalPoolBackend::put_on_task_queue(TaskHeader h, std::size_t body_size, const BodyWriter* write,
                                         const FunctionRef<void(std::uint64_t)>* admit, bool block) {
    std::byte* out = nullptr;
    // A full queue (its whole reservation, half of RAM) drains as workers take tasks. Wait in
    // slices: a pool terminated meanwhile has no workers left to drain it. Without `block`, the
    // producer lock too is only tried for a moment (another thread may hold it while it encodes
    // a large task).
    const Timeout patience = block ? Timeout(std::chrono::milliseconds(100)) : Timeout(std::chrono::milliseconds(1));
    if (block) {
        try {
            // The common case, room at once: no deadline, so no clock read (two per task were
            // 12% of a chunksize-1 map).
            out = tasks_.begin_put(sizeof(TaskHeader) + body_size, false, {});
        } catch (const Full&) {
        }
    }
    while (!out) {
        try {
            out = tasks_.begin_put(sizeof(TaskHeader) + body_size, true, patience);
        } catch (const Full&) {
            if (!block) return false;
            owner_->throw_if_terminated();
        }
    }
    // The producer lock is held from here to end_put: the ordinal is this put's.
    try {
        if (write) (*write)(std::span<std::byte>(out + sizeof h, body_size));
        h.ordinal = next_ordinal_;
        if (admit) (*admit)(h.ordinal);  // last: throws when the pool takes no more
        std::memcpy(out, &h, sizeof h);
    } catch (...) {
        tasks_.end_put(false);
        throw;
    }
    ++next_ordinal_;
    tasks_.end_put(true);
    return true;
}

void LocalPoolBackend::put_task(TaskHeader header, std::size_t body_size, BodyWriter write,
                                FunctionRef<void(std::uint64_t)> admit) {
    put_on_task_queue(header, body_size, &write, &admit, true);
    // An elastic pool grows when tasks wait and no worker waits for them.
    if (elastic_ && shared_->live.load(std::memory_order_relaxed) < counts_.max && backlog() && !nudged_.exchange(true))
        wake();
}

// No result comes back for a stop record: the engine learns nothing of its ordinal (at most an
// empty table entry, when a later task's admit fills the gap).
bool LocalPoolBackend::put_stop(bool block) {
    return put_on_task_queue(TaskHeader{0, 0, 0, TaskKind::stop, 0}, 0, nullptr, nullptr, block);
}

void LocalPoolBackend::close_workers() {
    for (int i = 0; i < counts_.max; ++i) put_stop(true);  // enough for every worker there can be
}

void LocalPoolBackend::post(const ResultHeader& h) { put_record(results_, bytes_of(h)); }
void LocalPoolBackend::end_result_stream() { post(ResultHeader{0, Status::shutdown, 0, 0, 0}); }

std::optional<ResultView> LocalPoolBackend::begin_result(bool block) {
    std::span<const std::byte> p;
    try {
        p = results_.begin_get(block, {});
    } catch (const Empty&) {
        return std::nullopt;
    }
    ResultView v;
    std::memcpy(&v.header, p.data(), sizeof v.header);
    v.payload = p.subspan(sizeof v.header);
    return v;
}

}  // namespace polyproc::detail
