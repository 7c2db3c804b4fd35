// MpiPoolBackend: rank 0's side of an MPI pool (mpi_pool.hpp says how it works).
#include "mpi_pool.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include <sys/socket.h>

#include "fork_safety.hpp"
#include "mpi_wire.hpp"
#include "remote_exception.hpp"
#include "polyproc/detail/inherit.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/reduction.hpp"

namespace polyproc::detail::mpi {

namespace {
constexpr std::size_t kMinWindow = 2, kMaxWindow = 512;
constexpr double kWindowWorkNs = 1e6;            // about this much work queued on each rank
constexpr double kTaskOverheadNs = 2000;         // a task's cost beyond its run time (decode, relay)
constexpr std::chrono::seconds kPingEvery{1};

std::int64_t now_ns() { return monotonic_ns(); }

std::vector<std::byte> record_of(const ResultHeader& h, std::span<const std::byte> payload = {}) {
    std::vector<std::byte> r(sizeof h + payload.size());
    std::memcpy(r.data(), &h, sizeof h);
    if (!payload.empty()) std::memcpy(r.data() + sizeof h, payload.data(), payload.size());
    return r;
}
std::span<const std::byte> bytes_of_text(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
}  // namespace

// ---- the factory ----------------------------------------------------------------------------------

WorkerCounts MpiPoolFactory::plan(const PoolOptions& o) const {
    if (o.max_processes > 0) throw ValueError("polyproc::mpi: an MPI pool cannot be elastic (the world is static)");
    if (!o.start_method.empty())
        throw ValueError("polyproc::mpi: an MPI pool has no start method (its workers are ranks)");
    World& w = world_of_rank_0();
    int alive = 0;
    for (const auto& l : w.links) alive += l->alive.load();
    if (alive == 0)
        throw ValueError(
            "polyproc::mpi: the MPI world has no worker ranks (run the program under mpiexec -n N, N >= 2)");
    if (o.processes > alive)
        throw ValueError("polyproc::mpi: " + std::to_string(o.processes) +
                         " processes asked for, but the MPI world has " + std::to_string(alive) + " worker rank(s)");
    const int n = o.processes ? o.processes : alive;
    return {n, n, n};
}

std::unique_ptr<PoolBackend> MpiPoolFactory::make(const PoolOptions& options, const WorkerCounts& counts) const {
    World& w = world_of_rank_0();
    std::vector<Link*> links;
    for (const auto& l : w.links)
        if (l->alive.load() && links.size() < std::size_t(counts.max)) links.push_back(l.get());
    return std::make_unique<MpiPoolBackend>(options, std::move(links), options_);
}

// ---- start and stop -------------------------------------------------------------------------------

MpiPoolBackend::MpiPoolBackend(const PoolOptions& options, std::vector<Link*> links, polyproc::mpi::WorldOptions world)
    : options_(options), world_options_(world) {
    for (Link* l : links) {
        auto p = std::make_unique<Peer>();
        p->link = l;
        peers_.push_back(std::move(p));
    }
}

MpiPoolBackend::~MpiPoolBackend() {
    try {
        join();
    } catch (...) {
    }
}

void MpiPoolBackend::end_result_stream() { post(record_of(ResultHeader{0, Status::shutdown, 0, 0, 0})); }

void MpiPoolBackend::release_world() noexcept {
    if (!world_held_) return;
    World& w = world_of_rank_0();
    std::lock_guard lock(w.mu);
    w.in_use = false;
    world_held_ = false;
}

void MpiPoolBackend::start(Owner& owner) {
    owner_ = &owner;
    try {
        for (const auto& p : peers_)
            if (!p->link->same_program)
                throw ValueError("polyproc::mpi: " + p->link->name() +
                                 " runs another program than rank 0 (another executable, or other libraries): every "
                                 "rank must run the same build");
        {
            World& w = world_of_rank_0();
            std::lock_guard lock(w.mu);
            if (w.in_use)
                throw ValueError("polyproc::mpi: another pool is using the MPI world's workers (one at a time)");
            w.in_use = true;
            world_held_ = true;
        }
        start_on_every_rank();
    } catch (...) {
        joined_ = true;  // no thread to join; the stream ends here
        release_world();
        end_result_stream();
        throw;
    }
    live_.store(peers_.size());
    try {
        for (auto& p : peers_) {
            p->last_heard_ns.store(now_ns());
            p->reader = helper_thread([this, peer = p.get()] { read(*peer); });
            p->feeder = helper_thread([this, peer = p.get()] { feed(*peer); });
        }
        watcher_ = helper_thread([this] { watch(); });
    } catch (...) {
        // No thread to be had (a limit on threads): the ranks are given up, which ends the stream.
        for (auto& p : peers_) lose(*p, "rank 0 could not start a thread for it");
        join();
        throw;
    }
}

// Every rank starts its local pool of one worker, or says why it could not; then all run, or none.
void MpiPoolBackend::start_on_every_rank() {
    PoolStart start;
    start.task_timeout_ns = options_.task_timeout ? options_.task_timeout.value().count() : -1;
    start.maxtasksperchild = options_.maxtasksperchild;
    if (options_.initializer) {
        if (!options_.initializer.travels())
            throw ValueError(
                "polyproc::mpi: the initializer cannot be sent to another rank: use a function or a "
                "lambda without captures, with sendable (mp::Serializable) arguments");
        ChildWriter w;
        options_.initializer.write(w);
        if (!w.fds().empty())
            throw ValueError(
                "polyproc::mpi: the initializer's arguments hold handles (a Queue, a Lock, a Value...) "
                "that cannot reach another host: use a manager for state shared across hosts");
        start.initializer = w.bytes();
    }
    Message m(Kind::start);
    m.append_value(start);
    // A rank that cannot be reached, or does not answer within a minute, is given up (never used
    // again) and the pool starts on the others; a rank whose local pool could not start fails the
    // start (what failed there would fail on every rank: an initializer, a resource).
    std::string failed, given_up;
    auto give_up = [&](Peer& p, const std::string& why) {
        given_up += p.link->name() + ": " + why + "; ";
        p.link->give_up();
        p.lost = true;
    };
    std::vector<Peer*> started;
    for (auto& p : peers_) {
        try {
            p->link->send(m.bytes());
            started.push_back(p.get());
        } catch (const std::exception& e) {
            give_up(*p, e.what());
        }
    }
    const Deadline deadline{Timeout(std::chrono::seconds(60))};
    std::vector<Peer*> ready;
    for (Peer* p : started) {
        try {
            for (;;) {
                if (!p->link->conn.poll(deadline.remaining().value_or(std::chrono::seconds(0))))
                    throw TimeoutError("no answer within 60 s");
                const auto reply = p->link->conn.recv_bytes();
                const Kind k = kind_of(reply);
                if (k == Kind::pong) continue;  // a late answer to a ping of the pool before
                if (k == Kind::ready) {
                    ready.push_back(p);
                    break;
                }
                if (k == Kind::start_failed) {
                    failed += p->link->name() + ": " + text_of(reply) + "; ";
                    break;
                }
                throw DecodeError("an unexpected message");
            }
        } catch (const std::exception& e) {
            give_up(*p, e.what());
        }
    }
    std::erase_if(peers_, [](const auto& p) { return p->lost; });
    if (failed.empty() && !peers_.empty()) return;
    // Undo: the ranks that started stop again, and say so (within a bound), before the start fails.
    const Deadline undo{Timeout(std::chrono::seconds(10))};
    for (Peer* p : ready) {
        if (p->lost) continue;
        try {
            p->link->send(Message(Kind::terminate).bytes());
            for (;;) {
                if (!p->link->conn.poll(undo.remaining().value_or(std::chrono::seconds(0))))
                    throw TimeoutError("no answer within 10 s");
                if (kind_of(p->link->conn.recv_bytes()) == Kind::stopped) break;
            }
        } catch (const std::exception&) {
            p->link->give_up();
        }
    }
    const std::string why = !failed.empty() ? failed : given_up;
    throw ProcessError("polyproc::mpi: the pool could not start " +
                       std::string(!failed.empty() ? "on every rank: " : "on any rank: ") +
                       why.substr(0, why.size() - 2));
}

void MpiPoolBackend::join() {
    std::lock_guard jl(join_mu_);
    if (joined_ || !owner_) return;
    {
        std::unique_lock lock(mu_);
        // Every rank says it stopped, or is lost (silence is noticed within lost_after).
        cv_.wait(lock, [&] {
            return std::all_of(peers_.begin(), peers_.end(), [](const auto& p) { return p->stopped || p->lost; });
        });
    }
    cv_.notify_all();
    for (auto& p : peers_) {
        if (p->feeder.joinable()) p->feeder.join();
        if (p->reader.joinable()) p->reader.join();
    }
    if (watcher_.joinable()) watcher_.join();  // it ends with the stream
    joined_ = true;
    release_world();
}

void MpiPoolBackend::wake() noexcept {
    { std::lock_guard lock(mu_); }  // a feeder between its look and its wait sees the change
    cv_.notify_all();
}

std::vector<pid_t> MpiPoolBackend::worker_pids() const {
    std::vector<pid_t> out;
    for (const auto& p : peers_)
        if (p->link->alive.load()) out.push_back(p->link->pid);
    return out;
}

// ---- tasks ----------------------------------------------------------------------------------------

void MpiPoolBackend::put_task(TaskHeader header, std::size_t body_size, BodyWriter write,
                              FunctionRef<void(std::uint64_t)> admit) {
    const std::uint64_t n = sizeof header + body_size;
    std::vector<std::byte> record(sizeof n + n);
    std::memcpy(record.data(), &n, sizeof n);
    write(std::span<std::byte>(record.data() + sizeof n + sizeof header, body_size));
    {
        std::lock_guard lock(mu_);
        header.ordinal = next_ordinal_;
        admit(header.ordinal);  // last: throws when the pool takes no more
        std::memcpy(record.data() + sizeof n, &header, sizeof header);
        ++next_ordinal_;
        pending_.push_back(std::move(record));
    }
    cv_.notify_all();
}

void MpiPoolBackend::close_workers() {
    {
        std::lock_guard lock(mu_);
        closing_ = true;
    }
    cv_.notify_all();
}

bool MpiPoolBackend::send(Peer& p, std::span<const std::byte> message) {
    try {
        p.link->send(message);
        return true;
    } catch (const std::exception& e) {
        lose(p, std::string("its connection failed (") + e.what() + ")");
        return false;
    }
}

// A rank's feeder: tasks while it has room (room_for), then close or terminate; a ping every
// second throughout, which a rank answers busy or not, so that the watch thread can tell a silent
// rank from a busy one.
void MpiPoolBackend::feed(Peer& p) {
    std::unique_lock lock(mu_);
    auto next_ping = std::chrono::steady_clock::now();
    for (;;) {
        if (p.lost || p.stopped) return;
        std::optional<Message> message;
        if (std::chrono::steady_clock::now() >= next_ping) {  // first: a stream of batches must not starve it
            message.emplace(Kind::ping);
            next_ping = std::chrono::steady_clock::now() + kPingEvery;
        } else if (owner_->phase() == Phase::terminate) {
            if (!p.terminate_sent) {
                p.terminate_sent = true;
                message.emplace(Kind::terminate);
            }
        } else if (const std::size_t room = room_for(p); room > 0) {
            message.emplace(Kind::tasks);
            for (std::size_t n = 0; n < room && !pending_.empty() && message->size() < kBatchBytes; ++n) {
                const auto& record = pending_.front();
                TaskHeader h;
                std::memcpy(&h, record.data() + sizeof(std::uint64_t), sizeof h);
                p.outstanding.insert(h.ordinal);
                message->append(record);
                pending_.pop_front();
            }
        } else if (closing_ && pending_.empty() && !p.close_sent) {
            p.close_sent = true;
            message.emplace(Kind::close);
        }
        if (!message) {
            cv_.wait_until(lock, next_ping);
            continue;
        }
        lock.unlock();
        const bool sent = send(p, message->bytes());
        lock.lock();
        if (!sent) return;
    }
}

// Under mu_: how many waiting tasks `p` may take now: what its window leaves, and at most a fair
// share of all the work (a window sized by earlier, shorter tasks must not take a whole map of long
// ones away from the other ranks). 0 when it must wait.
std::size_t MpiPoolBackend::room_for(const Peer& p) const {
    if (pending_.empty() || p.outstanding.size() >= p.window) return 0;
    std::size_t live = 0, held = 0;
    for (const auto& q : peers_) {
        live += !q->lost && !q->stopped;
        held += q->outstanding.size();
    }
    const std::size_t share =
        std::max<std::size_t>(1, (pending_.size() + held + live - 1) / std::max<std::size_t>(live, 1));
    const std::size_t limit = std::min(p.window, share);
    return limit > p.outstanding.size() ? limit - p.outstanding.size() : 0;
}

// The watch on silence, for every rank at once: a reader stuck in the middle of a frame, or a
// feeder stuck in a send, cannot notice that its rank stopped answering; this thread can.
void MpiPoolBackend::watch() {
    const auto lost_after_ns = std::chrono::nanoseconds(world_options_.lost_after).count();
    std::unique_lock lock(mu_);
    while (!stream_ended_) {
        cv_.wait_for(lock, kPingEvery);
        std::vector<Peer*> silent;
        for (const auto& q : peers_)
            if (!q->lost && !q->stopped && now_ns() - q->last_heard_ns.load() > lost_after_ns)
                silent.push_back(q.get());
        lock.unlock();
        for (Peer* q : silent)
            lose(*q, "it stopped answering (nothing for " + std::to_string(world_options_.lost_after.count()) + " ms)");
        lock.lock();
    }
}

// ---- results --------------------------------------------------------------------------------------

// A rank's reader: its results, its pongs, its stop.
void MpiPoolBackend::read(Peer& p) {
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (p.lost || p.stopped) return;
        }
        std::vector<std::byte> message;
        try {
            if (!p.link->conn.poll(kPingEvery)) continue;  // the watch thread judges silence
            message = p.link->conn.recv_bytes();
        } catch (const std::exception& e) {
            lose(p, std::string("its connection closed (") + e.what() + ")");
            return;
        }
        p.last_heard_ns.store(now_ns());
        try {
            switch (kind_of(message)) {
                case Kind::results:
                    take_results(p, message);
                    break;
                case Kind::pong:
                    break;
                case Kind::stopped: {
                    {
                        std::lock_guard lock(mu_);
                        // Tasks it still held will never be answered (only a faulty peer stops so).
                        fail_held(p, p.link->name() + ": it stopped without answering");
                        p.stopped = true;
                        live_.fetch_sub(1);
                        if (all_done()) end_result_stream();
                    }
                    cv_.notify_all();
                    return;
                }
                case Kind::broken:
                    owner_->break_pool(p.link->name() + ": " + text_of(message));
                    wake();
                    break;
                default:
                    throw DecodeError("a message of unknown kind " + std::to_string(int(message[0])));
            }
        } catch (const std::exception& e) {
            lose(p, std::string("it sent what cannot be read (") + e.what() + ")");
            return;
        }
    }
}

void MpiPoolBackend::take_results(Peer& p, std::span<const std::byte> message) {
    struct Taken {
        ResultHeader h;
        std::vector<std::byte> record;  // as it goes to the engine
    };
    std::vector<Taken> out;
    const std::string where = " on " + p.link->name();
    for_each_record(message, [&](std::span<const std::byte> record) {
        ResultHeader h;
        if (record.size() < sizeof h) throw DecodeError("a result record shorter than its header");
        std::memcpy(&h, record.data(), sizeof h);
        auto payload = record.subspan(sizeof h);
        if (h.status == Status::lost) {  // the rank's text (where the task crashed), then which rank
            const std::string crashed(reinterpret_cast<const char*>(payload.data()),
                                      std::min<std::size_t>(payload.size(), 400));
            out.push_back({h, record_of(h, bytes_of_text(crashed + where))});
        } else if (h.status == Status::raised) {
            // An exception of a type not known here arrives as RemoteError: say which rank raised it.
            RemoteException e = decode_payload<RemoteException>(payload);
            bool known = true;
            try {
                std::rethrow_exception(to_exception_ptr(e, h.pid));
            } catch (const RemoteError&) {
                known = false;
            } catch (...) {
            }
            if (known) {
                out.push_back({h, {record.begin(), record.end()}});
            } else {
                e.message += " [" + p.link->name() + "]";
                std::vector<std::byte> body(encoded_size(e));
                encode_into(e, body);
                out.push_back({h, record_of(h, body)});
            }
        } else if (h.status == Status::ok || h.status == Status::timed_out) {
            out.push_back({h, {record.begin(), record.end()}});
        } else {
            throw DecodeError("a result of unknown status");
        }
    });
    {
        std::lock_guard lock(mu_);
        // Only results of tasks it still holds: once it is lost, its tasks were failed already.
        std::erase_if(out, [&](const Taken& t) { return p.outstanding.erase(t.h.ordinal) == 0; });
        // The window: about kWindowWorkNs of work per rank, from how long its tasks ran there (not
        // from how fast results come back: with a small window that is the round trip's latency,
        // and the window would stay small).
        for (const Taken& t : out) {
            if (t.h.status != Status::ok && t.h.status != Status::raised) continue;
            const double ran = 1000.0 * double(t.h.run_us) + kTaskOverheadNs;
            p.service_ns = p.service_ns ? 0.9 * p.service_ns + 0.1 * ran : ran;
        }
        if (!out.empty() && p.service_ns > 0)
            p.window =
                std::clamp<std::size_t>(std::size_t(std::ceil(kWindowWorkNs / p.service_ns)), kMinWindow, kMaxWindow);
        // Posted under mu_, as lose() and the end of the stream are: nothing after the end.
        std::lock_guard results(results_mu_);
        for (Taken& t : out) results_.push_back(std::move(t.record));
        results_count_.fetch_add(out.size(), std::memory_order_relaxed);
    }
    cv_.notify_all();
    results_cv_.notify_all();
}

// The rank is gone: the tasks it held fail (Status::gone, saying why), and it is never used again.
void MpiPoolBackend::lose(Peer& p, const std::string& why) {
    const std::string text = p.link->name() + ": " + why;
    {
        std::lock_guard lock(mu_);
        if (p.lost || p.stopped) return;
        p.lost = true;
        fail_held(p, text);
        // With none left, tasks not sent yet would wait forever: the pool breaks (before the
        // stream ends, so that they fail saying why).
        if (live_.fetch_sub(1) == 1 && owner_->phase() != Phase::terminate)
            owner_->break_pool("every MPI worker rank was lost; the last, " + text);
        if (all_done()) end_result_stream();
    }
    p.link->give_up();  // its feeder, blocked in a send, gets an error
    cv_.notify_all();
}

// Under mu_: the tasks `p` holds will never be answered: each fails (Status::gone, saying why).
void MpiPoolBackend::fail_held(Peer& p, const std::string& why) {
    std::vector<std::uint64_t> held(p.outstanding.begin(), p.outstanding.end());
    p.outstanding.clear();
    std::sort(held.begin(), held.end());
    for (const std::uint64_t ordinal : held)
        post(record_of(ResultHeader{ordinal, Status::gone, p.link->pid, 0, 0}, bytes_of_text(why)));
}

// Under mu_: every rank stopped or was lost, and the result stream has not ended yet (the caller
// ends it, once, as on one machine when the workers are gone).
bool MpiPoolBackend::all_done() {
    if (stream_ended_) return false;
    for (const auto& q : peers_)
        if (!q->stopped && !q->lost) return false;
    stream_ended_ = true;
    return true;
}

void MpiPoolBackend::post(std::vector<std::byte> record) {
    {
        std::lock_guard lock(results_mu_);
        results_.push_back(std::move(record));
        results_count_.fetch_add(1, std::memory_order_relaxed);
    }
    results_cv_.notify_all();
}

std::optional<ResultView> MpiPoolBackend::begin_result(bool block) {
    // Without `block` never wait for the turn: its holder may be waiting for a result that only
    // this caller's own settling would have made unnecessary (a get() collecting for itself).
    if (!block) {
        if (!turn_.try_lock()) return std::nullopt;
    } else {
        turn_.lock();
    }
    std::unique_lock lock(results_mu_);
    if (results_.empty() && !block) {
        lock.unlock();
        turn_.unlock();
        return std::nullopt;
    }
    results_cv_.wait(lock, [&] { return !results_.empty(); });
    const auto& r = results_.front();  // stays put while others are pushed behind it
    ResultView v;
    std::memcpy(&v.header, r.data(), sizeof v.header);
    v.payload = std::span<const std::byte>(r).subspan(sizeof v.header);
    return v;
}

void MpiPoolBackend::end_result() {
    {
        std::lock_guard lock(results_mu_);
        results_.pop_front();
        results_count_.fetch_sub(1, std::memory_order_relaxed);
    }
    turn_.unlock();
}

void MpiPoolBackend::cancel_result() { turn_.unlock(); }

}  // namespace polyproc::detail::mpi
