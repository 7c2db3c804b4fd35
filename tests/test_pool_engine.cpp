// The pool engine (src/pool_core.hpp) on its own, over a backend of this test's: the seam
// (src/pool_backend.hpp) is all the engine needs. ThreadBackend runs tasks on threads of this
// process, the way a worker of any backend runs them (execute_task), and can lose a task on
// purpose, as a backend reports a worker that died with it.
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "pool_backend.hpp"
#include "pool_core.hpp"
#include "pool_records.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
namespace detail = polyproc::detail;

namespace {

class ThreadBackend final : public detail::PoolBackend {
public:
    ThreadBackend(int threads, std::set<std::uint64_t> lose) : threads_(threads), lose_(std::move(lose)) {}
    ~ThreadBackend() override { stop_threads(); }

    // Holds the workers (no task starts) until resume().
    void pause() {
        std::lock_guard lock(mu_);
        paused_ = true;
    }
    void resume() {
        std::lock_guard lock(mu_);
        paused_ = false;
        cv_.notify_all();
    }
    int stops_seen() {
        std::lock_guard lock(mu_);
        return stops_;
    }

    void start(Owner& owner) override {
        owner_ = &owner;
        for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { work(); });
    }
    void put_task(detail::TaskHeader header, std::size_t body_size, detail::BodyWriter write,
                  detail::FunctionRef<void(std::uint64_t)> admit) override {
        std::vector<std::byte> record(sizeof header + body_size);
        write(std::span<std::byte>(record.data() + sizeof header, body_size));
        std::lock_guard lock(mu_);  // the order of puts
        header.ordinal = next_ordinal_;
        admit(header.ordinal);
        ++next_ordinal_;
        std::memcpy(record.data(), &header, sizeof header);
        tasks_.push_back(std::move(record));
        cv_.notify_all();
    }
    void close_workers() override {
        std::lock_guard lock(mu_);
        for (int i = 0; i < threads_; ++i) {
            const detail::TaskHeader stop{next_ordinal_++, 0, 0, detail::TaskKind::stop, 0};
            std::vector<std::byte> record(sizeof stop);
            std::memcpy(record.data(), &stop, sizeof stop);
            tasks_.push_back(std::move(record));
        }
        cv_.notify_all();
    }
    // Callers take turns: `taking_` is held from begin_result to end_result or cancel_result.
    std::optional<detail::ResultView> begin_result(bool block) override {
        std::unique_lock take(taking_, std::defer_lock);
        if (block)
            take.lock();
        else if (!take.try_lock())
            return std::nullopt;  // another thread is taking one
        std::unique_lock lock(mu_);
        if (block) cv_.wait(lock, [&] { return !results_.empty(); });
        if (results_.empty()) return std::nullopt;
        current_ = std::move(results_.front());
        results_.pop_front();
        detail::ResultView v;
        std::memcpy(&v.header, current_.data(), sizeof v.header);
        v.payload = std::span<const std::byte>(current_).subspan(sizeof v.header);
        take.release();  // still locked: the caller's turn lasts until end_result or cancel_result
        return v;
    }
    void end_result() override { taking_.unlock(); }
    void cancel_result() override {
        {
            std::lock_guard lock(mu_);
            results_.push_front(std::move(current_));
        }
        taking_.unlock();
    }
    bool results_waiting() const noexcept override {
        std::lock_guard lock(mu_);
        return !results_.empty();
    }
    std::size_t size() const noexcept override { return std::size_t(threads_); }
    std::vector<pid_t> worker_pids() const override { return {::getpid()}; }
    void wake() noexcept override {
        std::lock_guard lock(mu_);
        cv_.notify_all();
    }
    void join() override {
        std::unique_lock lock(join_mu_);
        if (joined_) return;
        // After close: every worker takes its stop. After terminate: they leave what is queued.
        stop_threads();
        joined_ = true;
        post(detail::ResultHeader{0, detail::Status::shutdown, 0, 0, 0});
    }

private:
    void post(std::vector<std::byte> record) {
        std::lock_guard lock(mu_);
        results_.push_back(std::move(record));
        cv_.notify_all();
    }
    void post(const detail::ResultHeader& h) {
        std::vector<std::byte> record(sizeof h);
        std::memcpy(record.data(), &h, sizeof h);
        post(std::move(record));
    }
    void stop_threads() {
        for (auto& t : workers_)
            if (t.joinable()) t.join();
    }
    void work() {
        std::vector<std::byte> out;
        for (;;) {
            std::vector<std::byte> record;
            {
                std::unique_lock lock(mu_);
                // The engine's phase is asked without this lock held (the engine's lock comes
                // first: it calls put_task's admit with this one held).
                for (;;) {
                    lock.unlock();
                    const bool terminated = owner_->phase() == Phase::terminate;
                    lock.lock();
                    if (terminated) return;
                    if (!paused_ && !tasks_.empty()) break;
                    cv_.wait_for(lock, 5ms);
                }
                record = std::move(tasks_.front());
                tasks_.pop_front();
            }
            detail::TaskHeader h;
            std::memcpy(&h, record.data(), sizeof h);
            if (h.kind == detail::TaskKind::stop) {
                std::lock_guard lock(mu_);
                ++stops_;
                return;
            }
            if (lose_.count(h.ordinal)) {
                post(detail::ResultHeader{h.ordinal, detail::Status::lost, 4242, -9, 0});
                continue;
            }
            detail::execute_task(h, std::span<const std::byte>(record).subspan(sizeof h), ::getpid(), out);
            post(out);  // the result record: its header says ok or raised
        }
    }

    const int threads_;
    const std::set<std::uint64_t> lose_;
    Owner* owner_ = nullptr;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::vector<std::byte>> tasks_, results_;
    std::mutex taking_;
    std::vector<std::byte> current_;  // the result between begin_result and end_result, under taking_
    std::uint64_t next_ordinal_ = 0;
    bool paused_ = false;
    int stops_ = 0;
    std::mutex join_mu_;
    bool joined_ = false;
    std::vector<std::thread> workers_;
};

// A pool whose engine runs over `backend` (kept for the test to steer).
mp::Pool pool_over(ThreadBackend*& backend, int threads, std::set<std::uint64_t> lose = {}) {
    auto owned = std::make_unique<ThreadBackend>(threads, std::move(lose));
    backend = owned.get();
    return mp::Pool(std::make_shared<detail::PoolCore>(mp::PoolOptions{.processes = threads}, std::move(owned)));
}

int square(int x) { return x * x; }

}  // namespace

TEST(PoolEngine, RunsMapApplyAndImapOverAnotherBackend) {
    HangGuard guard(60s, "PoolEngine.RunsMapApplyAndImapOverAnotherBackend");
    ThreadBackend* backend = nullptr;
    mp::Pool pool = pool_over(backend, 3);
    std::vector<int> in(1000);
    for (int i = 0; i < 1000; ++i) in[std::size_t(i)] = i;
    const auto out = pool.map(square, in, 7);
    ASSERT_EQ(out.size(), in.size());
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(out[std::size_t(i)], i * i);
    EXPECT_EQ(pool.apply([](int a, int b) { return a + b; }, 2, 3), 5);
    std::atomic<int> called{0};
    auto r = pool.apply_async(mp::Callbacks{.callback = [&](int v) { called += v; }}, square, 9);
    EXPECT_EQ(r.get(10s), 81);
    EXPECT_EQ(called.load(), 81);  // the callback ran before ready()
    long sum = 0;
    for (int v : pool.imap(square, in, 13)) sum += v;
    EXPECT_EQ(sum, 332833500);
    EXPECT_EQ(pool.size(), 3u);
    pool.close();
    pool.join();
    EXPECT_EQ(backend->stops_seen(), 3);  // close_workers let every worker finish
}

TEST(PoolEngine, ALostTaskFailsAloneWithWorkerLostError) {
    HangGuard guard(60s, "PoolEngine.ALostTaskFailsAloneWithWorkerLostError");
    ThreadBackend* backend = nullptr;
    mp::Pool pool = pool_over(backend, 2, {3});  // the fourth task put is lost
    std::vector<mp::AsyncResult<int>> results;
    for (int i = 0; i < 6; ++i) results.push_back(pool.apply_async(square, i));
    for (int i = 0; i < 6; ++i) {
        if (i == 3) {
            const std::string what = message_of<mp::WorkerLostError>([&] { results[3].get(10s); });
            EXPECT_NE(what.find("4242"), std::string::npos) << what;  // the pid the backend reported
        } else {
            EXPECT_EQ(results[std::size_t(i)].get(10s), i * i);
        }
    }
}

TEST(PoolEngine, TerminateFailsWhatTheBackendNeverRan) {
    HangGuard guard(60s, "PoolEngine.TerminateFailsWhatTheBackendNeverRan");
    ThreadBackend* backend = nullptr;
    mp::Pool pool = pool_over(backend, 2);
    backend->pause();
    auto pending = pool.apply_async(square, 5);
    pending.wait(50ms);
    EXPECT_FALSE(pending.ready());  // the paused backend runs nothing
    pool.terminate();
    EXPECT_EQ(message_of<mp::ProcessError>([&] { pending.get(10s); }), "Pool was terminated before the task finished");
    EXPECT_EQ(message_of<mp::ValueError>([&] { pool.apply(square, 1); }), "Pool not running");
    backend->resume();
}
