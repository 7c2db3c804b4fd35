// synchronize.hpp: Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier across real
// processes, Python's errors, and what happens when a process dies holding or waiting on them.
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

// Runs fn(args...) in a child, waits for it, returns its exit code. fn is a captureless lambda
// (or a function): it gets its state as arguments, so this works under every start method.
template <class F, class... Args>
int run_child(F fn, Args&&... args) {
    mp::Process p(fn, std::forward<Args>(args)...);
    p.start();
    p.join();
    return *p.exitcode();
}

// A child that does `body(args...)` then dies by SIGKILL, while the parent waits for it. `body`
// is a captureless lambda, rebuilt in the child.
template <class Body, class... Args>
pid_t die_in_child(Body, Args&&... args) {
    static_assert(std::is_empty_v<Body> && std::is_default_constructible_v<Body>,
                  "die_in_child: pass a captureless lambda and hand it its state as arguments");
    mp::Process p(
        [](std::decay_t<Args>&... a) {
            Body{}(a...);
            ::raise(SIGKILL);
        },
        std::forward<Args>(args)...);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), -SIGKILL);
    return p.pid();
}

// A child that waits on the barrier and exits 0 only if the wait ends in BrokenBarrierError.
mp::Process expect_broken_barrier_in_child(mp::Barrier& b, mp::Timeout timeout = {}) {
    mp::Process p(
        [](mp::Barrier& barrier, mp::Timeout wait_timeout) {
            try {
                barrier.wait(wait_timeout);
            } catch (const mp::BrokenBarrierError&) {
                std::_Exit(0);
            }
            std::_Exit(1);
        },
        b, timeout);
    return p;
}

// A child that waits on `cond` (for a minute) once it has said so through `waiting`.
mp::Process start_waiting_child(mp::Condition& cond, mp::Event& waiting) {
    mp::Process p(
        [](mp::Condition& shared_cond, mp::Event& is_waiting) {
            std::lock_guard g(shared_cond);
            is_waiting.set();
            shared_cond.wait(60s);
        },
        cond, waiting);
    p.start();
    return p;
}

}  // namespace

class Synchronize : public ProcessTest {};

// ---- Lock --------------------------------------------------------------------------------------

TEST_F(Synchronize, LockBasicsAndPythonsErrors) {
    mp::Lock lock;
    EXPECT_EQ(lock.repr(), "<Lock(owner=None)>");
    EXPECT_TRUE(lock.acquire());
    EXPECT_EQ(lock.repr(), "<Lock(owner=MainProcess)>");
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_FALSE(lock.acquire(true, 50ms));  // held by us: a bounded wait gives up
    EXPECT_THROW_WITH(lock.acquire(), mp::ValueError, "would deadlock");
    lock.release();
    EXPECT_THROW_WITH(lock.release(), mp::ValueError, "semaphore or lock released too many times");
    EXPECT_TRUE(lock.acquire(true, -1s));  // a timeout <= 0 tries once
    lock.release();
}

TEST_F(Synchronize, LockExcludesOtherProcesses) {
    mp::Lock lock;
    mp::Event held, done;
    mp::Process holder(
        [](mp::Lock& shared_lock, mp::Event& acquired, mp::Event& may_release) {
            shared_lock.acquire();
            acquired.set();
            may_release.wait(30s);
            shared_lock.release();
        },
        lock, held, done);
    holder.start();
    ASSERT_TRUE(held.wait(30s));
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_FALSE(lock.acquire(true, 50ms));
    EXPECT_EQ(lock.repr(), "<Lock(owner=SomeOtherProcess)>");
    EXPECT_THROW_WITH(lock.release(), mp::ValueError, "held by another thread or process");
    done.set();
    EXPECT_TRUE(lock.acquire(true, 30s));
    lock.release();
    holder.join();
    EXPECT_EQ(holder.exitcode(), 0);
}

TEST_F(Synchronize, LockGivesMutualExclusionUnderContention) {
    mp::Lock lock;
    mp::RawValue<long> counter(0);
    std::vector<mp::Process> ps;
    for (int i = 0; i < 4; ++i)
        ps.emplace_back(
            [](mp::Lock& shared_lock, mp::RawValue<long>& count) {
                for (int k = 0; k < 20000; ++k) {
                    std::lock_guard guard(shared_lock);
                    count.set_value(count.value() + 1);  // a non-atomic read-modify-write
                }
            },
            lock, counter);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    for (auto& p : ps) EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(counter.value(), 80000);
}

TEST_F(Synchronize, StandardLockingToolsWork) {
    mp::Lock a;
    mp::RLock b;
    {
        std::scoped_lock both(a, b);
        EXPECT_TRUE(a.is_mine());
        EXPECT_TRUE(b.is_mine());
    }
    EXPECT_FALSE(a.is_mine());
    std::unique_lock ul(a, std::defer_lock);
    EXPECT_TRUE(ul.try_lock_for(10ms));
    ul.unlock();
    EXPECT_TRUE(a.try_lock_until(std::chrono::steady_clock::now() + 10ms));
    a.unlock();
    // Every primitive speaks the same names: a Semaphore and a Condition too.
    mp::Semaphore sem(1);
    mp::Condition cond;
    {
        std::scoped_lock both(sem, cond);
        EXPECT_EQ(sem.get_value(), 0);
        EXPECT_FALSE(sem.try_lock_until(std::chrono::steady_clock::now() + 10ms));
    }
    EXPECT_EQ(sem.get_value(), 1);
    std::unique_lock held(cond, std::defer_lock);
    EXPECT_TRUE(held.try_lock_for(10ms));
    EXPECT_TRUE(cond.wait_for([] { return true; }));
}

TEST_F(Synchronize, DeadOwnerIsReportedNotABlockForever) {
    mp::Lock lock;
    const pid_t dead = die_in_child([](mp::Lock& shared_lock) { shared_lock.acquire(); }, lock);
    try {
        lock.acquire(true, 30s);
        FAIL() << "no OwnerDiedError";
    } catch (const mp::OwnerDiedError& e) {
        EXPECT_EQ(e.pid(), dead);
        EXPECT_NE(std::string(e.what()).find(std::to_string(dead)), std::string::npos);
    }
    EXPECT_TRUE(lock.is_mine());  // we hold it now
    EXPECT_EQ(run_child([](mp::Lock& shared_lock) { std::_Exit(shared_lock.acquire(false) ? 1 : 0); }, lock), 0);
    lock.release();
    EXPECT_TRUE(lock.acquire(false));  // and it works normally afterwards
    lock.release();
}

TEST_F(Synchronize, DeadOwnerOfAnRLockToo) {
    mp::RLock lock;
    const pid_t dead = die_in_child(
        [](mp::RLock& shared_lock) {
            shared_lock.acquire();
            shared_lock.acquire();
        },
        lock);
    EXPECT_THROW_WITH(lock.acquire(), mp::OwnerDiedError, std::to_string(dead));
    EXPECT_EQ(lock.repr(), "<RLock(MainProcess, 1)>");
    lock.release();
    EXPECT_EQ(lock.repr(), "<RLock(None, 0)>");
}

// ---- RLock -------------------------------------------------------------------------------------

TEST_F(Synchronize, RLockIsRecursiveForItsOwnerOnly) {
    mp::RLock lock;
    EXPECT_TRUE(lock.acquire());
    EXPECT_TRUE(lock.acquire());
    EXPECT_EQ(lock.repr(), "<RLock(MainProcess, 2)>");
    EXPECT_EQ(
        run_child(
            [](mp::RLock& shared_lock) {
                const bool got = shared_lock.acquire(false);
                try {
                    shared_lock.release();
                } catch (const mp::ValueError& e) {
                    std::_Exit(!got && std::string(e.what()) == "attempt to release recursive lock not owned by thread"
                                   ? 0
                                   : 2);
                }
                std::_Exit(3);
            },
            lock),
        0);
    lock.release();
    lock.release();
    EXPECT_THROW_WITH(lock.release(), mp::ValueError, "attempt to release recursive lock not owned by thread");
}

TEST_F(Synchronize, RLockFromAnotherThreadOfTheSameProcess) {
    mp::RLock lock;
    lock.acquire();
    std::thread t([&] {
        EXPECT_FALSE(lock.acquire(false));
        EXPECT_THROW(lock.release(), mp::ValueError);
    });
    t.join();
    lock.release();
}

// ---- Semaphore ---------------------------------------------------------------------------------

TEST_F(Synchronize, SemaphoreCountsAndTimesOut) {
    mp::Semaphore sem(2);
    EXPECT_EQ(sem.get_value(), 2);
    EXPECT_TRUE(sem.acquire());
    EXPECT_TRUE(sem.acquire(false));
    EXPECT_FALSE(sem.acquire(false));
    EXPECT_FALSE(sem.acquire(false, 1s));
    EXPECT_FALSE(sem.acquire(true, 50ms));
    EXPECT_EQ(sem.repr(), "<Semaphore(value=0)>");
    sem.release();
    sem.release();
    sem.release();  // unbounded: may exceed the initial value
    EXPECT_EQ(sem.get_value(), 3);
    try {
        mp::Semaphore bad(-1);
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
    }
}

TEST_F(Synchronize, BoundedSemaphoreRefusesOverRelease) {
    mp::BoundedSemaphore sem(2);
    EXPECT_EQ(sem.repr(), "<BoundedSemaphore(value=2, maxvalue=2)>");
    EXPECT_THROW_WITH(sem.release(), mp::ValueError, "semaphore or lock released too many times");
    sem.acquire();
    sem.release();
    EXPECT_EQ(sem.get_value(), 2);
}

TEST_F(Synchronize, SemaphoreWakesAWaiterInAnotherProcess) {
    mp::Semaphore sem(0);
    mp::Process waiter([](mp::Semaphore& shared_sem) { std::_Exit(shared_sem.acquire(true, 30s) ? 0 : 1); }, sem);
    waiter.start();
    std::this_thread::sleep_for(50ms);  // let it sleep on the futex (correct either way)
    sem.release();
    waiter.join();
    EXPECT_EQ(waiter.exitcode(), 0);
    EXPECT_EQ(sem.get_value(), 0);
}

TEST_F(Synchronize, SemaphoreBoundsConcurrency) {
    mp::Semaphore sem(3);
    mp::Lock guard;
    mp::RawValue<int> inside(0), most(0);
    std::vector<mp::Process> ps;
    for (int i = 0; i < 8; ++i)
        ps.emplace_back(
            [](mp::Semaphore& units, mp::Lock& mutex, mp::RawValue<int>& now_inside, mp::RawValue<int>& peak) {
                for (int k = 0; k < 50; ++k) {
                    std::lock_guard s(units);
                    {
                        std::lock_guard g(mutex);
                        now_inside.set_value(now_inside.value() + 1);
                        peak.set_value(std::max(peak.value(), now_inside.value()));
                    }
                    std::this_thread::sleep_for(100us);
                    std::lock_guard g(mutex);
                    now_inside.set_value(now_inside.value() - 1);
                }
            },
            sem, guard, inside, most);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    EXPECT_LE(most.value(), 3);
    EXPECT_GE(most.value(), 2);
    EXPECT_EQ(inside.value(), 0);
    EXPECT_EQ(sem.get_value(), 3);
}

TEST_F(Synchronize, UnitsTakenByADeadProcessAreLost) {
    mp::Semaphore sem(2);
    die_in_child([](mp::Semaphore& shared_sem) { shared_sem.acquire(); }, sem);
    EXPECT_EQ(sem.get_value(), 1);  // documented: a semaphore has no owner to recover from
}

// ---- Event -------------------------------------------------------------------------------------

TEST_F(Synchronize, EventWaitReturnsTheFlag) {
    mp::Event ev;
    EXPECT_FALSE(ev.is_set());
    EXPECT_FALSE(ev.wait(0s));
    EXPECT_FALSE(ev.wait(50ms));
    ev.set();
    EXPECT_TRUE(ev.is_set());
    EXPECT_TRUE(ev.wait());
    EXPECT_TRUE(ev.wait(0s));
    ev.clear();
    EXPECT_FALSE(ev.is_set());
}

TEST_F(Synchronize, EventSetInAChildWakesEveryWaiter) {
    mp::Event ev;
    std::vector<mp::Process> waiters;
    for (int i = 0; i < 3; ++i) waiters.emplace_back([](mp::Event& event) { std::_Exit(event.wait(30s) ? 0 : 1); }, ev);
    for (auto& w : waiters) w.start();
    mp::Process setter(
        [](mp::Event& event) {
            std::this_thread::sleep_for(50ms);
            event.set();
        },
        ev);
    setter.start();
    EXPECT_TRUE(ev.wait(30s));
    setter.join();
    for (auto& w : waiters) {
        w.join();
        EXPECT_EQ(w.exitcode(), 0);
    }
}

// ---- Condition ---------------------------------------------------------------------------------

TEST_F(Synchronize, ConditionRequiresItsLock) {
    mp::Condition cond;
    EXPECT_EQ(cond.repr(), "<Condition(<RLock(None, 0)>, 0)>");  // Python's
    EXPECT_THROW_WITH(cond.wait(), mp::ValueError, "must acquire() condition before using wait()");
    EXPECT_THROW_WITH(cond.notify(), mp::ValueError, "lock is not owned");
    std::lock_guard guard(cond);
    EXPECT_FALSE(cond.wait(0s));
    EXPECT_FALSE(cond.wait(30ms));
    cond.notify();  // nobody waits: fine
}

TEST_F(Synchronize, ConditionNotifyWakesAWaitingProcess) {
    mp::Condition cond(mp::Lock{});
    mp::RawValue<int> state(0);
    mp::Process waiter(
        [](mp::Condition& shared_cond, mp::RawValue<int>& shared_state) {
            std::unique_lock lk(shared_cond);
            const bool ok = shared_cond.wait_for([&] { return shared_state.value() == 1; }, 30s);
            shared_state.set_value(2);
            shared_cond.notify();
            lk.unlock();  // _Exit skips destructors: dying with the lock held would be OwnerDiedError
            std::_Exit(ok ? 0 : 1);
        },
        cond, state);
    waiter.start();
    {
        std::lock_guard g(cond);
        state.set_value(1);
        cond.notify();
        EXPECT_TRUE(cond.wait_for([&] { return state.value() == 2; }, 30s));
    }
    waiter.join();
    EXPECT_EQ(waiter.exitcode(), 0);
}

TEST_F(Synchronize, ConditionNotifyAllAndNotifyN) {
    mp::Condition cond;
    mp::RawValue<int> woken(0), ready(0);
    std::vector<mp::Process> ps;
    for (int i = 0; i < 4; ++i)
        ps.emplace_back(
            [](mp::Condition& shared_cond, mp::RawValue<int>& woken_count, mp::RawValue<int>& ready_count) {
                std::lock_guard g(shared_cond);
                ready_count.set_value(ready_count.value() + 1);
                if (shared_cond.wait(30s)) woken_count.set_value(woken_count.value() + 1);
            },
            cond, woken, ready);
    for (auto& p : ps) p.start();
    auto all_ready = [&] {
        std::lock_guard g(cond);
        return ready.value() == 4;
    };
    for (int i = 0; i < 3000 && !all_ready(); ++i) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(all_ready());
    {
        std::lock_guard g(cond);
        cond.notify(2);
    }
    for (int i = 0; i < 3000 && woken.value() < 2; ++i) std::this_thread::sleep_for(1ms);
    {
        std::lock_guard g(cond);
        EXPECT_GE(woken.value(), 2);
        cond.notify_all();
    }
    for (auto& p : ps) p.join();
    EXPECT_EQ(woken.value(), 4);
}

TEST_F(Synchronize, ConditionWaitRestoresTheRLockDepth) {
    mp::Condition cond;  // RLock
    cond.acquire();
    cond.acquire();
    mp::Process notifier(
        [](mp::Condition& shared_cond) {
            std::lock_guard g(shared_cond);  // only possible because wait() released both levels
            shared_cond.notify();
        },
        cond);
    notifier.start();
    EXPECT_TRUE(cond.wait(30s));
    cond.release();
    cond.release();
    EXPECT_THROW(cond.release(), mp::ValueError);
    notifier.join();
}

TEST_F(Synchronize, WorksWithStdConditionVariableAny) {
    mp::Lock lock;
    std::condition_variable_any cv;
    bool flag = false;
    std::thread t([&] {
        std::lock_guard g(lock);
        flag = true;
        cv.notify_one();
    });
    std::unique_lock lk(lock);
    EXPECT_TRUE(cv.wait_for(lk, 30s, [&] { return flag; }));
    lk.unlock();
    t.join();
}

TEST_F(Synchronize, ADeadWaiterDoesNotBlockNotify) {
    mp::Condition cond;
    mp::Event waiting;
    mp::Process doomed = start_waiting_child(cond, waiting);
    ASSERT_TRUE(waiting.wait(30s));
    std::this_thread::sleep_for(20ms);
    doomed.kill();
    doomed.join();
    mp::RawValue<int> woke(0);
    mp::Process live(
        [](mp::Condition& shared_cond, mp::Event& is_waiting, mp::RawValue<int>& has_woken) {
            std::lock_guard g(shared_cond);
            is_waiting.clear();
            has_woken.set_value(1);
            std::_Exit(shared_cond.wait(30s) ? 0 : 1);
        },
        cond, waiting, woke);
    waiting.clear();
    live.start();
    for (int i = 0; i < 3000 && woke.value() == 0; ++i) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard g(cond);
        cond.notify();
    }
    live.join();
    EXPECT_EQ(live.exitcode(), 0);
}

// Three processes wait; notify() comes while the last one (at least) is still in its spin before
// sleeping. Exactly one may return true before notify_all; a single notify sequence that every
// waiter watched woke all three in one run of four.
TEST_F(Synchronize, NotifyWakesExactlyOneWaiterEvenWhileWaitersSpin) {
    for (int round = 0; round < 8; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        mp::Condition cond;
        mp::RawValue<int> ready(0), phase(0), woken_by_notify(0), woken_by_notify_all(0);
        std::vector<mp::Process> waiters;
        for (int i = 0; i < 3; ++i)
            waiters.emplace_back(
                [](mp::Condition& c, mp::RawValue<int>& ready_count, mp::RawValue<int>& current_phase,
                   mp::RawValue<int>& first, mp::RawValue<int>& second) {
                    std::lock_guard g(c);
                    ready_count.set_value(ready_count.value() + 1);
                    if (!c.wait(30s)) return;
                    auto& count = current_phase.value() == 1 ? first : second;
                    count.set_value(count.value() + 1);
                },
                cond, ready, phase, woken_by_notify, woken_by_notify_all);
        for (auto& p : waiters) p.start();
        const auto give_up = std::chrono::steady_clock::now() + 30s;
        // Poll without sleeping on the lock, so as to notify within microseconds of the last
        // waiter's release.
        for (bool notified = false; !notified && std::chrono::steady_clock::now() < give_up;) {
            if (!cond.acquire(false)) continue;
            if (ready.value() == 3) {
                phase.set_value(1);
                cond.notify();
                notified = true;
            }
            cond.release();
        }
        for (int i = 0; i < 30000 && woken_by_notify.value() == 0; ++i) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(20ms);  // time for a wrongly woken waiter to count itself
        {
            std::lock_guard g(cond);
            phase.set_value(2);
            cond.notify_all();
        }
        for (auto& p : waiters) p.join();
        std::lock_guard g(cond);
        EXPECT_EQ(woken_by_notify.value(), 1);
        EXPECT_EQ(woken_by_notify_all.value(), 2);
    }
}

TEST_F(Synchronize, NotifyWakesTheOldestWaiterFirst) {
    mp::Condition cond;
    int waiting = 0;  // these two guarded by cond
    std::vector<int> woke;
    auto until = [&](auto done) {  // polls under the lock, for at most 30 s
        const auto give_up = std::chrono::steady_clock::now() + 30s;
        for (;;) {
            {
                std::lock_guard g(cond);
                if (done() || std::chrono::steady_clock::now() > give_up) return done();
            }
            std::this_thread::yield();
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
        threads.emplace_back([&, i] {
            std::lock_guard g(cond);
            ++waiting;
            if (cond.wait(30s)) woke.push_back(i);
        });
        EXPECT_TRUE(until([&] { return waiting == i + 1; }));  // thread i waits before i + 1 starts
    }
    for (std::size_t k = 1; k <= 3; ++k) {
        {
            std::lock_guard g(cond);
            cond.notify();
        }
        EXPECT_TRUE(until([&] { return woke.size() == k; }));
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(woke, (std::vector<int>{0, 1, 2}));
}

// Waits that time out while notifications arrive, so that timeouts and notifications meet: a
// wait() returns true only for a notification handed to it (never more trues than notify(1)
// calls), and the waiters never hang.
TEST_F(Synchronize, TimeoutsRacingNotifyNeverReturnMoreTruesThanNotifies) {
    mp::Condition cond(mp::Lock{});
    std::atomic<int> trues{0}, finished{0};
    int notifies = 0;
    std::vector<std::thread> waiters;
    for (int t = 0; t < 4; ++t)
        waiters.emplace_back([&, t] {
            for (int i = 0; i < 300; ++i) {
                std::lock_guard g(cond);
                if (cond.wait(std::chrono::microseconds(40 * ((i + t) % 5)))) ++trues;
            }
            ++finished;
        });
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (finished < 4 && std::chrono::steady_clock::now() < give_up) {
        {
            std::lock_guard g(cond);
            cond.notify();
            ++notifies;
        }
        if (notifies % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    for (auto& t : waiters) t.join();
    EXPECT_EQ(finished.load(), 4);
    EXPECT_LE(trues.load(), notifies);
    EXPECT_GT(trues.load(), 0);
}

// A waiter SIGKILLed and not yet reaped (a zombie) is older than the live one: notify() must see
// it dead and wake the live one.
TEST_F(Synchronize, NotifySkipsAWaiterKilledButNotYetReaped) {
    mp::Condition cond;
    mp::Event waiting;
    mp::Process doomed = start_waiting_child(cond, waiting);
    ASSERT_TRUE(waiting.wait(30s));
    {
        std::lock_guard g(cond);  // doomed is inside wait() now
    }
    ::kill(doomed.pid(), SIGKILL);
    // Dead: a zombie of ours, or gone (a forkserver child is reaped by the forkserver at once).
    auto is_dead = [pid = doomed.pid()] { return !running(pid); };
    for (int i = 0; i < 3000 && !is_dead(); ++i) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(is_dead());
    waiting.clear();
    mp::Process live(
        [](mp::Condition& shared_cond, mp::Event& is_waiting) {
            std::lock_guard g(shared_cond);
            is_waiting.set();
            std::_Exit(shared_cond.wait(30s) ? 0 : 1);
        },
        cond, waiting);
    live.start();
    ASSERT_TRUE(waiting.wait(30s));
    {
        std::lock_guard g(cond);  // live is inside wait() now
        cond.notify();
    }
    live.join();
    EXPECT_EQ(live.exitcode(), 0);
    doomed.join();
    EXPECT_EQ(doomed.exitcode(), -SIGKILL);
}

TEST_F(Synchronize, ConditionSaysWhenItHoldsNoMoreWaiters) {
    mp::Condition cond;
    int waiting = 0, woken = 0;  // guarded by cond
    std::vector<std::thread> threads;
    struct ReleaseAll {  // also when an assertion fails
        mp::Condition& cond;
        std::vector<std::thread>& threads;
        ~ReleaseAll() {
            {
                std::lock_guard g(cond);
                cond.notify_all();
            }
            for (auto& t : threads) t.join();
        }
    } release_all{cond, threads};
    for (int i = 0; i < mp::Condition::kMaxWaiters; ++i)
        threads.emplace_back([&] {
            std::lock_guard g(cond);
            ++waiting;
            if (cond.wait(60s)) ++woken;
        });
    for (int i = 0; i < 60000; ++i) {
        std::lock_guard g(cond);
        if (waiting == mp::Condition::kMaxWaiters) break;
        if (i % 100 == 99) std::this_thread::sleep_for(1ms);
    }
    std::lock_guard g(cond);
    ASSERT_EQ(waiting, mp::Condition::kMaxWaiters);
    EXPECT_EQ(cond.repr(), "<Condition(<RLock(MainProcess, 1)>, 340)>");
    EXPECT_THROW_WITH(cond.wait(0s), mp::ValueError, "340 threads are waiting on this Condition already");
    cond.notify(5);
    cond.release();
    for (int i = 0; i < 30000; ++i) {
        {
            std::lock_guard g2(cond);
            if (woken == 5) break;
        }
        std::this_thread::sleep_for(1ms);
    }
    cond.acquire();
    EXPECT_EQ(woken, 5);
}

// ---- Barrier -----------------------------------------------------------------------------------

TEST_F(Synchronize, SinglePartyBarrierDoesNotBlock) {
    mp::Barrier b(1);
    EXPECT_EQ(b.wait(), 0);
    EXPECT_EQ(b.parties(), 1);
}

TEST_F(Synchronize, BarrierGivesDistinctIndicesRunsTheActionOnceAndIsReusable) {
    POLYPROC_FORK_ONLY();  // a Barrier with an action (a std::function) cannot travel to a spawned child
    constexpr int parties = 3, cycles = 100;
    mp::RawValue<int> actions(0);
    mp::Barrier b(
        parties, [&] { actions.set_value(actions.value() + 1); }, 30s);
    mp::RawArray<int> seen(parties * cycles);
    std::vector<mp::Process> ps;
    for (int i = 0; i < parties - 1; ++i)
        ps.emplace_back([&] {
            for (int c = 0; c < cycles; ++c) seen[static_cast<std::size_t>(c * parties + b.wait())] += 1;
        });
    for (auto& p : ps) p.start();
    for (int c = 0; c < cycles; ++c) seen[static_cast<std::size_t>(c * parties + b.wait())] += 1;
    for (auto& p : ps) p.join();
    EXPECT_EQ(actions.value(), cycles);
    for (int v : seen) EXPECT_EQ(v, 1);
    EXPECT_FALSE(b.broken());
    EXPECT_EQ(b.n_waiting(), 0);
}

TEST_F(Synchronize, BarrierTimeoutBreaksItForEveryone) {
    mp::Barrier b(3);
    mp::Process other = expect_broken_barrier_in_child(b, 30s);
    other.start();
    EXPECT_THROW(b.wait(100ms), mp::BrokenBarrierError);  // the third party never comes
    other.join();
    EXPECT_EQ(other.exitcode(), 0);
    EXPECT_TRUE(b.broken());
    EXPECT_THROW(b.wait(), mp::BrokenBarrierError);
    b.reset();
    EXPECT_FALSE(b.broken());
}

TEST_F(Synchronize, BarrierDefaultTimeout) {
    mp::Barrier b(2, {}, 50ms);
    EXPECT_THROW(b.wait(), mp::BrokenBarrierError);
}

TEST_F(Synchronize, BarrierAbortAndReset) {
    mp::Barrier b(2);
    mp::Process waiter = expect_broken_barrier_in_child(b, 30s);
    waiter.start();
    for (int i = 0; i < 3000 && b.n_waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(b.n_waiting(), 1);
    b.abort();
    waiter.join();
    EXPECT_EQ(waiter.exitcode(), 0);
    EXPECT_TRUE(b.broken());
    b.reset();
    mp::Process again([](mp::Barrier& barrier) { std::_Exit(barrier.wait(30s) >= 0 ? 0 : 1); }, b);
    again.start();
    EXPECT_GE(b.wait(30s), 0);
    again.join();
    EXPECT_EQ(again.exitcode(), 0);
}

TEST_F(Synchronize, ActionThatThrowsBreaksTheBarrier) {
    mp::Barrier b(1, [] { throw std::runtime_error("action failed"); });
    EXPECT_THROW_WITH(b.wait(), std::runtime_error, "action failed");
    EXPECT_TRUE(b.broken());
}

TEST_F(Synchronize, APartyKilledWhileWaitingDoesNotWedgeLaterCycles) {
    mp::Barrier b(3, {}, 10s);
    mp::Process doomed([](mp::Barrier& barrier) { barrier.wait(); }, b);
    doomed.start();
    for (int i = 0; i < 3000 && b.n_waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(b.n_waiting(), 1);
    doomed.kill();  // it has arrived, and dies inside wait()
    doomed.join();
    // Its arrival still counts for this cycle...
    mp::Process second([](mp::Barrier& barrier) { std::_Exit(barrier.wait() >= 0 ? 0 : 1); }, b);
    second.start();
    EXPECT_GE(b.wait(), 0);
    second.join();
    EXPECT_EQ(second.exitcode(), 0);
    // ...and the next cycles work as usual (Python's draining barrier would hang here).
    for (int cycle = 0; cycle < 3; ++cycle) {
        std::vector<mp::Process> others;
        for (int i = 0; i < 2; ++i)
            others.emplace_back([](mp::Barrier& barrier) { std::_Exit(barrier.wait() >= 0 ? 0 : 1); }, b);
        for (auto& p : others) p.start();
        EXPECT_GE(b.wait(), 0);
        for (auto& p : others) {
            p.join();
            EXPECT_EQ(p.exitcode(), 0);
        }
    }
    EXPECT_FALSE(b.broken());
}

TEST_F(Synchronize, ResetReleasesWaitersWithBrokenBarrierAndStartsAfresh) {
    mp::Barrier b(3);
    mp::Process waiter = expect_broken_barrier_in_child(b, 30s);
    waiter.start();
    for (int i = 0; i < 3000 && b.n_waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
    b.reset();
    waiter.join();
    EXPECT_EQ(waiter.exitcode(), 0);
    EXPECT_EQ(b.n_waiting(), 0);
    EXPECT_FALSE(b.broken());
}

TEST_F(Synchronize, ADeadPartyBreaksTheBarrierAtTheTimeout) {
    mp::Barrier b(3, {}, 300ms);
    mp::Process waiting = expect_broken_barrier_in_child(b);
    waiting.start();
    die_in_child([] {});  // the third party dies before it arrives
    EXPECT_THROW(b.wait(), mp::BrokenBarrierError);
    waiting.join();
    EXPECT_EQ(waiting.exitcode(), 0);
}
