// A worker rank's side of an MPI pool: between pools it waits for rank 0 on its connection (a
// blocking read: nothing spins); for each pool it runs a local pool of one forked worker (a
// LocalPoolBackend) and relays: tasks from rank 0 into it, its results back, in batches of what is
// there. A task that crashes kills only the forked worker, which is replaced, as on one machine.
//
// Threads, per pool: this one reads rank 0's messages (tasks, close, terminate, pings) and a
// result thread sends results; sends are serialized by send_mu.
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fork_safety.hpp"
#include "os.hpp"
#include "mpi_wire.hpp"
#include "mpi_world.hpp"
#include "pool_backend.hpp"
#include "pool_local.hpp"
#include "pool_records.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/pool.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail::mpi {

namespace {

class AgentPool final : private PoolBackend::Owner {
    using Phase = PoolBackend::Phase;

public:
    AgentPool(Connection& conn, std::mutex& send_mu) : conn_(conn), send_mu_(send_mu) {}

    // Starts the local pool; false (having told rank 0 why) when it could not.
    bool start(const PoolStart& s) {
        try {
            PoolOptions o;
            o.processes = 1;
            o.maxtasksperchild = s.maxtasksperchild;
            if (s.task_timeout_ns >= 0) o.task_timeout = std::chrono::nanoseconds(s.task_timeout_ns);
            o.start_method = "fork";  // the rank is this program already: a fork child is enough
            if (!s.initializer.empty()) {
                initializer_bytes_ = s.initializer;
                reader_.emplace(std::span<const std::byte>(initializer_bytes_), std::vector<FileDescriptor>{});
                o.initializer = PoolInitializer::read(*reader_);  // read again in each forked worker
            }
            local_ = std::make_unique<LocalPoolBackend>(o, WorkerCounts{1, 1, 1});
            local_->start(*this);
        } catch (const std::exception& e) {
            local_.reset();
            Message m(Kind::start_failed);
            m.append(e.what());
            send(m);
            return false;
        }
        try {
            results_thread_ = helper_thread([this] { relay_results(); });
            send(Message(Kind::ready));
        } catch (const std::exception&) {  // no thread, or rank 0 gone: stop what started
            set_phase(Phase::terminate);
            local_->join();
            if (results_thread_.joinable()) results_thread_.join();
            return false;
        }
        return true;
    }

    // Rank 0's messages until the pool has stopped.
    enum class Then { next_pool, exit, rank_0_gone };
    Then serve() {
        Then then = Then::next_pool;
        while (!stopped_.load()) {
            try {
                // Rank 0's next message, or the result thread's word that the pool has stopped.
                std::array<pollfd, 2> fds{pollfd{conn_.fileno(), POLLIN, 0}, pollfd{wake_.get(), POLLIN, 0}};
                os::poll_until(fds, Deadline::never());
                if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                const std::vector<std::byte> message = conn_.recv_bytes();
                switch (kind_of(message)) {
                    case Kind::tasks:
                        for_each_record(message, [&](std::span<const std::byte> record) { put(record); });
                        break;
                    case Kind::ping:
                        send(Message(Kind::pong));
                        break;
                    case Kind::close:
                        released_.store(true);
                        set_phase(Phase::close);
                        local_->close_workers();
                        break;
                    case Kind::exit:  // rank 0 is ending mid-pool: stop at once, then exit
                        then = Then::exit;
                        set_phase(Phase::terminate);
                        break;
                    case Kind::terminate:
                        set_phase(Phase::terminate);
                        break;
                    default:
                        break;
                }
            } catch (const std::exception&) {  // rank 0 is gone, or sent what cannot be read
                then = Then::rank_0_gone;
                set_phase(Phase::terminate);
                break;
            }
        }
        local_->join();
        if (results_thread_.joinable()) results_thread_.join();
        // Said by this thread, after which it reads no more of this pool's messages: rank 0 may
        // start the next pool as soon as it hears it.
        if (then != Then::rank_0_gone) {
            try {
                send(Message(Kind::stopped));
            } catch (const std::exception&) {
                then = Then::rank_0_gone;
            }
        }
        return then;
    }

private:
    // ---- Owner: what the local pool asks ----
    Phase phase() const override { return phase_.load(); }
    bool workers_released() const override { return released_.load(); }
    bool tasks_outstanding() const override { return outstanding_.load() > 0; }
    void throw_if_terminated() const override {
        if (phase_.load() == Phase::terminate) throw ValueError("Pool not running");
    }
    void break_pool(std::string why) noexcept override {
        try {
            Message m(Kind::broken);
            m.append(why);
            send(m);
        } catch (...) {
        }
        phase_.store(Phase::terminate);
    }

    void set_phase(Phase p) {
        phase_.store(p);
        local_->wake();
    }

    void send(const Message& m) {
        std::lock_guard lock(send_mu_);
        conn_.send_bytes(m.bytes());
    }

    // A task from rank 0 into the local pool, remembering its ordinal there.
    void put(std::span<const std::byte> record) {
        TaskHeader h;
        if (record.size() < sizeof h) throw DecodeError("polyproc::mpi: a task record shorter than its header");
        std::memcpy(&h, record.data(), sizeof h);
        const auto body = record.subspan(sizeof h);
        const std::uint64_t at_rank_0 = h.ordinal;
        auto write = [&](std::span<std::byte> out) { std::memcpy(out.data(), body.data(), body.size()); };
        auto admit = [&](std::uint64_t local) {
            std::lock_guard lock(ordinals_mu_);
            ordinals_[local] = at_rank_0;
            outstanding_.fetch_add(1);
        };
        try {
            local_->put_task(h, body.size(), BodyWriter(write), FunctionRef<void(std::uint64_t)>(admit));
        } catch (const std::exception&) {
            // Terminated meanwhile: rank 0 fails what it sent and gets no result for it.
        }
    }

    // The local pool's results to rank 0, as many to a message as are there.
    void relay_results() {
        bool end = false;
        while (!end) {
            Message m(Kind::results);
            bool block = true;
            while (m.size() < kBatchBytes) {
                auto r = local_->begin_result(block);
                if (!r) break;
                if (r->header.status == Status::shutdown) {
                    local_->end_result();
                    end = true;
                    break;
                }
                ResultHeader h = r->header;
                bool known;
                {
                    std::lock_guard lock(ordinals_mu_);
                    auto it = ordinals_.find(h.ordinal);
                    known = it != ordinals_.end();
                    if (known) {
                        h.ordinal = it->second;
                        ordinals_.erase(it);
                    }
                }
                if (known) m.add_record(bytes_of(h), r->payload);
                local_->end_result();
                if (known) outstanding_.fetch_sub(1);
                block = false;
                if (!local_->results_waiting()) break;
            }
            try {
                if (m.has_records()) send(m);
            } catch (const std::exception&) {
                set_phase(Phase::terminate);  // rank 0 is gone: stop the worker, then the stream ends
            }
        }
        stopped_.store(true);
        const std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
    }

    Connection& conn_;
    std::mutex& send_mu_;
    std::vector<std::byte> initializer_bytes_;
    std::optional<ChildReader> reader_;
    std::unique_ptr<LocalPoolBackend> local_;
    std::thread results_thread_;
    std::atomic<Phase> phase_{Phase::run};
    std::atomic<bool> released_{false};
    std::atomic<std::int64_t> outstanding_{0};
    std::atomic<bool> stopped_{false};  // the local pool's result stream ended
    FileDescriptor wake_{os::check("eventfd", [] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); })};
    std::mutex ordinals_mu_;
    std::unordered_map<std::uint64_t, std::uint64_t> ordinals_;  // local ordinal -> rank 0's
};

}  // namespace

bool serve_pools(Connection& conn) {
    std::mutex send_mu;
    for (;;) {
        try {
            const std::vector<std::byte> message = conn.recv_bytes();  // a blocking read: an idle rank sleeps here
            switch (kind_of(message)) {
                case Kind::exit:
                    return true;
                case Kind::ping: {
                    std::lock_guard lock(send_mu);
                    conn.send_bytes(Message(Kind::pong).bytes());
                    break;
                }
                case Kind::start: {
                    const auto start = decode_payload<PoolStart>(std::span<const std::byte>(message).subspan(1));
                    AgentPool pool(conn, send_mu);
                    if (!pool.start(start)) break;
                    switch (pool.serve()) {
                        case AgentPool::Then::next_pool:
                            break;
                        case AgentPool::Then::exit:
                            return true;
                        case AgentPool::Then::rank_0_gone:
                            return false;
                    }
                    break;
                }
                default:  // a late close or terminate of a pool that is over
                    break;
            }
        } catch (const std::exception&) {
            return false;  // rank 0 is gone, or is not speaking this protocol
        }
    }
}

}  // namespace polyproc::detail::mpi
