// The chaos soak (tools/soak runs it): polyproc busy with a mixed workload while a killer SIGKILLs
// and SIGSTOP/SIGCONTs random processes of the tree, checking as it goes that the promise holds:
//
//   * no hang: every scenario makes progress; a watchdog ends the run (exit 2; every child is
//     daemonic and goes with it) naming the one that made none for 90 s;
//   * a Pool (map, imap, apply_async): every result is right or is a WorkerLostError, and no more
//     apply_async tasks are lost than workers were killed (a worker dies with one task at most);
//   * a Queue with two producers and two consumers (children of each start method, round after
//     round): no item whose put() returned is duplicated, and no more are lost than consumers were
//     killed (a consumer killed inside get() may take its item with it);
//   * a Lock-guarded counter incremented by three children: exact at the end of every round, after
//     repairing what each OwnerDiedError reports (a journal says what the dead owner was doing);
//   * at the end: no child process left but the forkserver and the resource tracker (they end with
//     the program), no descriptor more than theirs (shared-memory arenas aside).
//
// It prints what it did and what held, and exits 0 when everything held, 1 when an invariant broke.
//
//   soak [--seconds N (120)] [--seed S]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "polyproc/polyproc.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// ---- what the run saw --------------------------------------------------------------------------

struct Tally {
    std::atomic<long> pool_ok{0}, pool_lost{0}, pool_wrong{0}, async_lost{0};
    std::atomic<long> queue_rounds{0}, queue_items{0}, queue_lost{0}, queue_duplicated{0}, queue_consumer_kills{0};
    std::atomic<long> lock_rounds{0}, lock_increments{0}, lock_repairs{0}, lock_wrong{0};
    std::atomic<long> killed{0}, stopped{0}, worker_kills{0};
    std::atomic<bool> broken{false};
};
Tally tally;

void broke(const std::string& what) {
    tally.broken = true;
    std::fprintf(stderr, "soak: INVARIANT BROKEN: %s\n", what.c_str());
}

// ---- the processes the killer may pick, by scenario ----------------------------------------------

// Held as pidfds: a process that has ended (reaped, its pid maybe reused) is never signalled, and
// one that has exited is not counted as killed.
enum class Role { pool_worker, producer, consumer, lock_child };
struct Victim {
    std::shared_ptr<mp::FileDescriptor> pidfd;
    Role role;
};
struct Victims {
    std::mutex mu;
    std::vector<Victim> now;
    void set(Role role, const std::vector<pid_t>& pids) {
        std::vector<Victim> fresh;
        for (pid_t p : pids) {
            const int fd = int(::syscall(SYS_pidfd_open, p, 0));
            if (fd >= 0) fresh.push_back({std::make_shared<mp::FileDescriptor>(fd), role});
        }
        std::lock_guard g(mu);
        std::erase_if(now, [&](const Victim& v) { return v.role == role; });
        now.insert(now.end(), fresh.begin(), fresh.end());
    }
    std::optional<Victim> pick(std::mt19937& rng) {
        std::lock_guard g(mu);
        if (now.empty()) return std::nullopt;
        return now[rng() % now.size()];
    }
};
// Sends `sig` if the process is still running (not exited): whether it did.
bool signal_if_running(const Victim& v, int sig) {
    pollfd p{v.pidfd->get(), POLLIN, 0};
    if (::poll(&p, 1, 0) != 0) return false;  // readable: it has exited
    return ::syscall(SYS_pidfd_send_signal, v.pidfd->get(), sig, nullptr, 0) == 0;
}
Victims victims;

// ---- progress, for the watchdog ------------------------------------------------------------------

struct Heartbeat {
    const char* name;
    std::atomic<std::int64_t> at{0};
    void beat() { at = Clock::now().time_since_epoch().count(); }
};
Heartbeat hb_pool{"pool"}, hb_queue{"queue"}, hb_lock{"lock counter"};

std::atomic<bool> stopping{false};
Clock::time_point end_of_run;
bool running() { return !stopping && Clock::now() < end_of_run; }

// ---- the pool ----------------------------------------------------------------------------------

std::int64_t checksum(std::int64_t x) {
    std::int64_t h = x;
    for (int i = 0; i < 200; ++i) h = h * 6364136223846793005LL + 1442695040888963407LL;
    return h;
}
// The input with its checksum: an imap result says which item it is (a lost chunk is one
// WorkerLostError in place of all its items, as in Python).
std::pair<std::int64_t, std::int64_t> tagged_checksum(std::int64_t x) { return {x, checksum(x)}; }
// Slow enough that kills land mid-task.
std::int64_t slow_checksum(std::int64_t x) {
    std::this_thread::sleep_for(2ms);
    return checksum(x);
}

void pool_scenario(std::uint32_t seed) {
    std::mt19937 rng(seed);
    mp::Pool pool(mp::PoolOptions{.processes = 3});
    std::vector<std::int64_t> xs(300);
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::int64_t(i);
    while (running()) {
        victims.set(Role::pool_worker, pool.worker_pids());
        const int op = int(rng() % 3);
        try {
            if (op == 0) {
                const auto got = pool.map(checksum, xs, 1 + rng() % 20);
                for (std::size_t i = 0; i < xs.size(); ++i)
                    if (got[i] != checksum(xs[i])) ++tally.pool_wrong;
                tally.pool_ok += long(xs.size());
            } else if (op == 1) {
                auto it = pool.imap(tagged_checksum, xs, 1 + rng() % 8);
                std::int64_t last = -1;
                for (;;) {
                    try {
                        const auto r = it.next(60s);
                        if (!r) break;
                        if (r->first <= last || r->second != checksum(r->first)) ++tally.pool_wrong;  // in order
                        last = r->first;
                        ++tally.pool_ok;
                    } catch (const mp::WorkerLostError&) {
                        ++tally.pool_lost;
                    }
                }
            } else {
                std::vector<mp::AsyncResult<std::int64_t>> rs;
                for (int i = 0; i < 100; ++i) rs.push_back(pool.apply_async(slow_checksum, std::int64_t(i)));
                for (int i = 0; i < 100; ++i) {
                    try {
                        if (rs[std::size_t(i)].get(60s) != checksum(i)) ++tally.pool_wrong;
                        ++tally.pool_ok;
                    } catch (const mp::WorkerLostError&) {
                        ++tally.pool_lost;
                        ++tally.async_lost;
                    }
                }
            }
        } catch (const mp::WorkerLostError&) {  // map: the whole call fails for a lost chunk
            ++tally.pool_lost;
        } catch (const mp::TimeoutError& e) {
            broke(std::string("a pool result did not come within 60 s: ") + e.what());
        }
        hb_pool.beat();
    }
    victims.set(Role::pool_worker, {});
    pool.close();
    pool.join();
}

// ---- the queue ---------------------------------------------------------------------------------

constexpr int kProducers = 2, kConsumers = 2, kItemsPerProducer = 20000;
struct Item {
    std::int32_t producer, seq;
};

void produce(mp::Queue<Item>& q, mp::RawArray<std::int64_t>& completed, int id) {
    for (int seq = 0; seq < kItemsPerProducer; ++seq) {
        q.put(Item{id, seq});
        completed[std::size_t(id)] = seq + 1;  // after put() returned: it must not be lost
    }
}

void consume(mp::Queue<Item>& q, mp::RawArray<std::uint8_t>& seen, mp::RawArray<std::int64_t>& duplicates,
             mp::Event& stop) {
    while (!stop.is_set()) {
        try {
            const Item item = q.get(true, 100ms);
            if (item.producer < 0 || item.producer >= kProducers || item.seq < 0 || item.seq >= kItemsPerProducer) {
                duplicates[0] += 1000000;  // a corrupt item: the parent reports it
                continue;
            }
            std::uint8_t& mark = seen[std::size_t(item.producer) * kItemsPerProducer + std::size_t(item.seq)];
            if (mark) ++duplicates[0];
            mark = 1;
        } catch (const mp::Empty&) {
        }
    }
}

const std::vector<std::string> kMethods{"fork", "spawn", "forkserver"};

void queue_scenario() {
    for (long round = 0; running(); ++round) {
        const std::string& method = kMethods[std::size_t(round) % kMethods.size()];
        const auto ctx = mp::get_context(method);
        mp::Queue<Item> q;
        mp::RawArray<std::int64_t> completed(kProducers), duplicates(1);
        mp::RawArray<std::uint8_t> seen(std::size_t(kProducers) * kItemsPerProducer);
        mp::Event stop;
        std::vector<mp::Process> producers, consumers;
        for (int i = 0; i < kProducers; ++i) producers.push_back(ctx.Process(produce, q, completed, i));
        for (int i = 0; i < kConsumers; ++i) consumers.push_back(ctx.Process(consume, q, seen, duplicates, stop));
        for (auto& p : producers) p.set_daemon(true);  // a hung run's exit takes them along
        for (auto& c : consumers) c.set_daemon(true);
        for (auto& p : producers) p.start();
        for (auto& c : consumers) c.start();
        std::vector<pid_t> pp, cp;
        for (auto& p : producers) pp.push_back(p.pid());
        for (auto& c : consumers) cp.push_back(c.pid());
        victims.set(Role::producer, pp);
        victims.set(Role::consumer, cp);
        const long consumer_kills_before = tally.queue_consumer_kills;
        // The producers finish (or are killed); the consumers then drain what is left.
        const auto give_up = Clock::now() + 60s;
        for (auto& p : producers) {
            while (p.is_alive() && Clock::now() < give_up) {
                p.join(100ms);
                hb_queue.beat();
            }
        }
        victims.set(Role::producer, {});
        const auto drained = Clock::now() + 30s;
        while (q.qsize() > 0 && Clock::now() < drained &&
               std::any_of(consumers.begin(), consumers.end(), [](auto& c) { return c.is_alive(); }))
            std::this_thread::sleep_for(10ms);
        victims.set(Role::consumer, {});
        std::this_thread::sleep_for(150ms);  // the last get() marks its item
        stop.set();
        for (auto& c : consumers) {
            c.join(10s);
            if (c.is_alive()) {
                broke("a consumer did not stop within 10 s of its stop event (" + method + ")");
                c.kill();
                c.join();
            }
        }
        for (auto& p : producers)
            if (p.is_alive()) {
                broke("a producer did not finish its puts within 60 s (" + method + ")");
                p.kill();
                p.join();
            }
        // What was put must be there once, save one item per consumer killed (taken as it died).
        while (true) {  // what no consumer took (both killed): count it as seen
            try {
                const Item item = q.get(false);
                if (item.producer >= 0 && item.producer < kProducers && item.seq >= 0 && item.seq < kItemsPerProducer)
                    seen[std::size_t(item.producer) * kItemsPerProducer + std::size_t(item.seq)] = 1;
            } catch (const mp::Empty&) {
                break;
            }
        }
        long lost = 0;
        for (int p = 0; p < kProducers; ++p)
            for (std::int64_t s = 0; s < completed[std::size_t(p)]; ++s)
                if (!seen[std::size_t(p) * kItemsPerProducer + std::size_t(s)]) ++lost;
        const long consumer_kills = tally.queue_consumer_kills - consumer_kills_before;
        if (duplicates[0] != 0)
            broke("queue round " + std::to_string(round) + " (" + method + "): " + std::to_string(duplicates[0]) +
                  " items received twice (or corrupt)");
        if (lost > consumer_kills)
            broke("queue round " + std::to_string(round) + " (" + method + "): " + std::to_string(lost) +
                  " items lost with only " + std::to_string(consumer_kills) + " consumers killed");
        tally.queue_lost += lost;
        tally.queue_duplicated += duplicates[0];
        tally.queue_items += completed[0] + completed[1];
        ++tally.queue_rounds;
        hb_queue.beat();
    }
}

// ---- the lock-guarded counter ----------------------------------------------------------------------

constexpr int kLockChildren = 3;
// [0] counter, [1] journal active, [2] counter before, [3] which child, [4] its count before,
// [5 + i] increments child i made.
enum : std::size_t { kCounter, kActive, kOld, kWho, kDoneBefore, kDone };

// Under the lock: finish or undo what a dead owner was doing, as the journal says.
void repair(mp::RawArray<std::int64_t>& s) {
    if (!s[kActive]) return;
    const std::size_t who = kDone + std::size_t(s[kWho]);
    if (s[who] == s[kDoneBefore] + 1)
        s[kCounter] = s[kOld] + 1;  // it counted itself: the increment happened
    else
        s[kCounter] = s[kOld], s[who] = s[kDoneBefore];
    s[kActive] = 0;
}

void increment_forever(mp::Lock& lock, mp::RawArray<std::int64_t>& s, mp::RawArray<std::int64_t>& repairs, int id,
                       mp::Event& stop) {
    while (!stop.is_set()) {
        try {
            if (!lock.acquire(true, 1s)) continue;
        } catch (const mp::OwnerDiedError&) {
            repair(s);
            ++repairs[0];
        }
        // A SIGKILL may land between any two of these: each store must be made, in this order
        // (x86 keeps the order of stores; the fences keep the compiler from merging or moving them).
        const auto step = [] { std::atomic_signal_fence(std::memory_order_seq_cst); };
        s[kOld] = s[kCounter];
        s[kWho] = id;
        s[kDoneBefore] = s[kDone + std::size_t(id)];
        step();
        s[kActive] = 1;
        step();
        s[kCounter] = s[kOld] + 1;
        step();
        s[kDone + std::size_t(id)] = s[kDoneBefore] + 1;
        step();
        s[kActive] = 0;
        lock.release();
    }
}

void lock_scenario() {
    for (long round = 0; running(); ++round) {
        const auto ctx = mp::get_context(kMethods[std::size_t(round) % kMethods.size()]);
        mp::Lock lock;
        mp::RawArray<std::int64_t> s(kDone + kLockChildren), repairs(1);
        mp::Event stop;
        std::vector<mp::Process> children;
        for (int i = 0; i < kLockChildren; ++i)
            children.push_back(ctx.Process(increment_forever, lock, s, repairs, i, stop));
        for (auto& c : children) c.set_daemon(true);
        for (auto& c : children) c.start();
        std::vector<pid_t> pids;
        for (auto& c : children) pids.push_back(c.pid());
        victims.set(Role::lock_child, pids);
        const auto until = Clock::now() + 3s;
        while (Clock::now() < until && running()) {
            std::this_thread::sleep_for(50ms);
            hb_lock.beat();
        }
        victims.set(Role::lock_child, {});
        stop.set();
        for (auto& c : children) {
            c.join(10s);
            if (c.is_alive()) {
                broke("a lock child did not stop within 10 s");
                c.kill();
                c.join();
            }
        }
        try {
            if (!lock.acquire(true, 10s)) broke("the counter's lock stayed held after every child ended");
        } catch (const mp::OwnerDiedError&) {
            repair(s);
            ++repairs[0];
        }
        std::int64_t sum = 0;
        for (int i = 0; i < kLockChildren; ++i) sum += s[kDone + std::size_t(i)];
        if (s[kCounter] != sum) {
            ++tally.lock_wrong;
            broke("lock round " + std::to_string(round) + ": the counter says " + std::to_string(s[kCounter]) +
                  ", the children counted " + std::to_string(sum));
        }
        lock.release();
        tally.lock_increments += sum;
        tally.lock_repairs += repairs[0];
        ++tally.lock_rounds;
        hb_lock.beat();
    }
}

// ---- the killer and the watchdog --------------------------------------------------------------------

void killer(std::uint32_t seed) {
    std::mt19937 rng(seed);
    while (running()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 180));
        const auto victim = victims.pick(rng);
        if (!victim) continue;
        if (rng() % 10 < 7) {
            if (!signal_if_running(*victim, SIGKILL)) continue;
            ++tally.killed;
            if (victim->role == Role::consumer) ++tally.queue_consumer_kills;
            if (victim->role == Role::pool_worker) ++tally.worker_kills;
        } else {
            if (!signal_if_running(*victim, SIGSTOP)) continue;
            ++tally.stopped;
            std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 290));
            (void)::syscall(SYS_pidfd_send_signal, victim->pidfd->get(), SIGCONT, nullptr, 0);
        }
    }
}

void watchdog() {
    while (!stopping) {
        std::this_thread::sleep_for(1s);
        const auto now = Clock::now().time_since_epoch().count();
        for (Heartbeat* hb : {&hb_pool, &hb_queue, &hb_lock})
            if (now - hb->at.load() > std::chrono::nanoseconds(90s).count()) {
                std::fprintf(stderr, "soak: HANG: the %s scenario made no progress for 90 s\n", hb->name);
                std::fflush(stderr);
                std::_Exit(2);
            }
    }
}

// Open descriptors, not counting shared-memory arenas (the current one stays open by design).
std::size_t open_descriptors() {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec))
        if (!std::filesystem::read_symlink(e.path(), ec).string().starts_with("/memfd:polyproc")) ++n;
    return n;
}

std::set<pid_t> children_now() {
    std::set<pid_t> found;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream in(task.path() / "children");
        for (pid_t p; in >> p;) found.insert(p);
    }
    return found;
}

}  // namespace

int main(int argc, char** argv) {
    mp::init(argc, argv);
    long seconds = 120;
    std::uint32_t seed = std::random_device{}();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atol(argv[i + 1]);
        if (std::strcmp(argv[i], "--seed") == 0) seed = std::uint32_t(std::strtoul(argv[i + 1], nullptr, 10));
    }
    std::printf(
        "soak: %ld s, seed %u: a Pool (map, imap, apply_async), a Queue (2 producers, 2 consumers), a "
        "Lock-guarded counter (3 children), children of fork, spawn and forkserver; a killer SIGKILLs "
        "and SIGSTOPs them at random\n",
        seconds, seed);
    std::fflush(stdout);
    const std::size_t fds_before = open_descriptors();
    end_of_run = Clock::now() + std::chrono::seconds(seconds);
    for (Heartbeat* hb : {&hb_pool, &hb_queue, &hb_lock}) hb->beat();
    std::thread dog(watchdog);
    std::thread pool_thread(pool_scenario, seed), queue_thread(queue_scenario), lock_thread(lock_scenario);
    std::thread killer_thread(killer, seed + 1);
    pool_thread.join();
    queue_thread.join();
    lock_thread.join();
    killer_thread.join();
    stopping = true;
    dog.join();

    // Nothing left behind: children (the forkserver ends with the program, after this check: it
    // is the only one allowed here) and descriptors.
    std::set<pid_t> left;
    for (int i = 0; i < 500; ++i) {
        left = children_now();
        if (left.size() <= 2) break;  // the forkserver and the resource tracker
        std::this_thread::sleep_for(10ms);
    }
    if (left.size() > 2) broke(std::to_string(left.size()) + " child processes left at the end");
    for (const auto& c : mp::active_children()) broke("an active child left: pid " + std::to_string(c.pid()));
    if (tally.pool_wrong > 0)
        broke(std::to_string(tally.pool_wrong.load()) + " pool results were wrong or out of order");
    if (tally.async_lost > tally.worker_kills)
        broke(std::to_string(tally.async_lost.load()) + " apply_async tasks lost with only " +
              std::to_string(tally.worker_kills.load()) + " workers killed");
    const std::size_t fds_after = open_descriptors();
    if (fds_after > fds_before + 2)  // + the forkserver's socket, + the tracker's pipe
        broke("descriptors: " + std::to_string(fds_before) + " at the start, " + std::to_string(fds_after) +
              " at the end");

    std::printf(
        "soak: pool: %ld results right, %ld calls, chunks or tasks lost (WorkerLostError; %ld of them "
        "apply_async tasks) with %ld worker kills, %ld wrong\n",
        tally.pool_ok.load(), tally.pool_lost.load(), tally.async_lost.load(), tally.worker_kills.load(),
        tally.pool_wrong.load());
    std::printf("soak: queue: %ld rounds, %ld items put, %ld lost with %ld consumer kills, %ld duplicated\n",
                tally.queue_rounds.load(), tally.queue_items.load(), tally.queue_lost.load(),
                tally.queue_consumer_kills.load(), tally.queue_duplicated.load());
    std::printf("soak: lock counter: %ld rounds, %ld increments, %ld OwnerDiedError repairs, %ld rounds wrong\n",
                tally.lock_rounds.load(), tally.lock_increments.load(), tally.lock_repairs.load(),
                tally.lock_wrong.load());
    std::printf("soak: killer: %ld SIGKILLs, %ld SIGSTOP/SIGCONTs; no hang; %s\n", tally.killed.load(),
                tally.stopped.load(), tally.broken ? "SOME INVARIANT BROKE (above)" : "every invariant held");
    return tally.broken ? 1 : 0;
}
