// MpiPoolBackend: rank 0's side of a pool whose workers are MPI ranks (the agent's side is
// mpi_agent.cpp). Tasks wait in one queue here; each worker rank has a feeder thread that sends
// it a batch whenever it holds fewer than its window of tasks, and a reader thread that takes its
// results and watches that it still answers.
//
// The window adapts to the work: about a millisecond of it per rank (from how long its tasks ran,
// which every result says), at least 2 and at most 512 tasks; and a rank never takes more than a
// fair share of the tasks waiting. Short tasks then travel many to a message, and long ones leave
// no rank idle while another holds a queue of them at the end of a map.
//
// A rank is lost when its connection closes or it says nothing for lost_after (it answers the
// feeder's ping every second, busy or not; one thread watches every rank's silence): its tasks come back as Status::gone, the pool goes on
// with the others, and breaks (ProcessError) when none is left.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "mpi_world.hpp"
#include "pool_backend.hpp"
#include "pool_records.hpp"
#include "polyproc/mpi.hpp"
#include "polyproc/pool.hpp"

namespace polyproc::detail::mpi {

class MpiPoolFactory final : public PoolBackendFactory {
public:
    explicit MpiPoolFactory(polyproc::mpi::WorldOptions options) : options_(options) {}
    WorkerCounts plan(const PoolOptions& options) const override;
    std::unique_ptr<PoolBackend> make(const PoolOptions& options, const WorkerCounts& counts) const override;

private:
    polyproc::mpi::WorldOptions options_;
};

class MpiPoolBackend final : public PoolBackend {
public:
    MpiPoolBackend(const PoolOptions& options, std::vector<Link*> links, polyproc::mpi::WorldOptions world);
    ~MpiPoolBackend() override;

    void start(Owner& owner) override;
    void put_task(TaskHeader header, std::size_t body_size, BodyWriter write,
                  FunctionRef<void(std::uint64_t)> admit) override;
    void close_workers() override;
    std::optional<ResultView> begin_result(bool block) override;
    void end_result() override;
    void cancel_result() override;
    bool results_waiting() const noexcept override { return results_count_.load(std::memory_order_relaxed) != 0; }
    std::size_t size() const noexcept override { return live_.load(); }
    std::vector<pid_t> worker_pids() const override;
    void wake() noexcept override;
    void join() override;

private:
    struct Peer {
        Link* link;
        std::thread feeder, reader;
        std::unordered_set<std::uint64_t> outstanding;  // ordinals sent and not answered (under mu_)
        std::size_t window = 2;
        double service_ns = 0;  // mean time a task takes there (run time + overhead; under mu_)
        std::atomic<std::int64_t> last_heard_ns{0};
        bool close_sent = false, terminate_sent = false;  // feeder thread
        bool stopped = false, lost = false;  // under mu_
    };

    void start_on_every_rank();
    void feed(Peer& p);
    std::size_t room_for(const Peer& p) const;
    void watch();
    void read(Peer& p);
    void take_results(Peer& p, std::span<const std::byte> message);
    void lose(Peer& p, const std::string& why);
    void fail_held(Peer& p, const std::string& why);
    bool send(Peer& p, std::span<const std::byte> message);
    void post(std::vector<std::byte> record);
    void end_result_stream();  // the last result of all: Status::shutdown
    void release_world() noexcept;
    bool all_done();

    const PoolOptions options_;
    const polyproc::mpi::WorldOptions world_options_;
    Owner* owner_ = nullptr;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::thread watcher_;  // watch(): silence
    std::atomic<std::size_t> live_{0};

    std::mutex mu_;
    std::condition_variable cv_;  // feeders and join wait here
    std::deque<std::vector<std::byte>> pending_;  // task records not sent yet
    std::uint64_t next_ordinal_ = 0;
    bool closing_ = false;
    bool stream_ended_ = false;

    std::mutex results_mu_;
    std::condition_variable results_cv_;
    std::deque<std::vector<std::byte>> results_;  // result records, ResultHeader first
    std::atomic<std::size_t> results_count_{0};
    std::mutex turn_;  // held from begin_result to end_result or cancel_result

    std::mutex join_mu_;
    bool joined_ = false;
    bool world_held_ = false;
};

}  // namespace polyproc::detail::mpi
