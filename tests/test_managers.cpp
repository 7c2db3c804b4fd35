// managers.hpp: a manager's server process, its dict, list and Namespace proxies across
// processes, lifetimes (dead clients, a dead server, a dead starter), and the server against bad
// input and a real Python client.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <filesystem>

#include "manager_protocol.hpp"
#include "manager_server.hpp"
#include "support.hpp"

namespace {

using mp::Object;

// Seed 002's child: d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse()
void seed_two_child(mp::DictProxy<> d, mp::ListProxy<int> l) {
    d[1] = "1";
    d["2"] = 2;
    d[0.25] = mp::None;
    l.reverse();
}

void write_keys(mp::DictProxy<std::string, int> d, int who, int count) {
    for (int i = 0; i < count; ++i) d[std::to_string(who) + "-" + std::to_string(i)] = i;
}

void hold_and_wait(mp::DictProxy<> d, mp::Connection done) {
    d["child"] = true;  // uses it: the child now holds a reference of its own
    done.send(1);
    ::pause();
}

// Uses the dict (its session now holds a reference), then starts a child that lives on without
// touching the manager, reports that child's pid and waits to be killed.
void hold_then_fork_a_survivor(mp::DictProxy<> d, mp::Connection out) {
    d["parent"] = true;
    mp::Process survivor([] { ::pause(); });
    survivor.start();
    out.send(static_cast<int>(survivor.pid()));
    ::pause();
}

// Seed 003 with the manager's own Lock: d['count'] -= 1 under it.
void decrement_under(mp::DictProxy<> d, mp::LockProxy lock) {
    std::lock_guard guard(lock);
    d["count"] = d["count"].value().as_int() - 1;
}

void hold_lock_and_wait(mp::LockProxy lock, mp::Connection done) {
    lock.acquire();
    done.send(1);
    ::pause();
}

void block_in_get(mp::QueueProxy<std::string> q, mp::QueueProxy<std::string> replies) {
    replies.put("waiting");
    replies.put("got " + q.get());
}

void set_event_later(mp::EventProxy e) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    e.set();
}

// Waits under the condition until d["ready"] is set, then answers through d["seen"].
void wait_for_ready(mp::ConditionProxy cond, mp::DictProxy<> d) {
    std::lock_guard guard(cond);
    cond.wait_for([&] { return d.get("ready", false).truthy(); }, std::chrono::seconds(30));
    d["seen"] = d.get("ready", false);
}

void pass_barrier(mp::BarrierProxy barrier, mp::QueueProxy<int> indices) {
    indices.put(barrier.wait(std::chrono::seconds(30)));
}

void wait_on_barrier_expecting_broken(mp::BarrierProxy barrier, mp::QueueProxy<std::string> out) {
    try {
        barrier.wait();
        out.put("passed");
    } catch (const mp::BrokenBarrierError&) {
        out.put("broken");
    }
}

// Sets and reads its own keys of d until `rounds` are done; exits 3 when the manager goes away.
void hammer(mp::DictProxy<std::string, int> d, mp::QueueProxy<int> progress, int who, int rounds) {
    try {
        for (int i = 0; i < rounds; ++i) {
            d[std::to_string(who) + "-" + std::to_string(i % 50)] = i;
            if (d.at(std::to_string(who) + "-" + std::to_string(i % 50)) != i) std::_Exit(2);
            if (i == 100) progress.put(who);
        }
    } catch (const mp::ProcessError&) {
        std::_Exit(3);
    }
}

int threads_of(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

// A child that starts a manager and reports its server's pid, then waits to be killed.
void start_manager_and_wait(mp::Connection out) {
    auto manager = mp::Manager();
    out.send(*manager.pid());
    ::pause();
}

// ---- a user class in a manager (register_) -----------------------------------------------------

// A plain class with no locks of its own: the server runs one method at a time on it.
class Counter {
public:
    explicit Counter(int start) : value_(start) { history_.push_back(start); }
    void add(int n) {
        value_ += n;
        history_.push_back(value_);
    }
    int value() const { return value_; }
    std::string describe(const std::string& prefix, double scale) const {
        return prefix + std::to_string(static_cast<int>(value_ * scale));
    }
    std::vector<int> history() const { return history_; }
    void fail(const std::string& why) { throw mp::ValueError(why); }
    void fail_oddly() { throw 42; }  // not a std::exception
    // A child object that stays in the server (method_to_typeid).
    std::unique_ptr<Counter> spawn_child(int start) const { return std::make_unique<Counter>(start + value_); }
    Counter copy_as_value() const { return *this; }  // exposed as "wrong" typeid in a test
    friend std::ostream& operator<<(std::ostream& out, const Counter& c) {
        return out << "Counter(" << c.value_ << ")";
    }

private:
    int value_;
    std::vector<int> history_;
};

struct Opaque {  // no operator<<, no ObjectConversion
    int x = 0;
    int get() const { return x; }
};

using CounterType = mp::Registration<"Counter", &mp::construct<Counter, int>, mp::Method<"add", &Counter::add>,
                                     mp::Method<"value", &Counter::value>, mp::Method<"describe", &Counter::describe>,
                                     mp::Method<"history", &Counter::history, "Iterator">,
                                     mp::Method<"fail", &Counter::fail>, mp::Method<"fail_oddly", &Counter::fail_oddly>,
                                     mp::Method<"spawn_child", &Counter::spawn_child, "Counter">,
                                     mp::Method<"opaque_child", &Counter::copy_as_value, "Opaque">>;
using OpaqueType = mp::Registration<"Opaque", +[]() { return Opaque{7}; }, mp::Method<"get", &Opaque::get>>;

class CounterManager : public mp::BaseManager {
public:
    CounterManager() {
        register_<CounterType>();
        register_<OpaqueType>();
    }
};

void add_many(mp::AutoProxy<CounterType> counter, int times) {
    for (int i = 0; i < times; ++i) counter.call<&Counter::add>(1);
}

}  // namespace

// Reaches a list and a dict that live inside a managed dict, and changes them.
void change_nested(mp::DictProxy<> d) {
    auto inner = d["inner"].value().as<mp::ListProxy<int>>();
    inner.append(42);
    auto table = d.at("table").as<mp::DictProxy<>>();
    table["seen"] = true;
    auto rows = d.at("rows").as<mp::ListProxy<>>();
    rows.at(0).as<mp::DictProxy<>>()["row"] = 0;
}

// Neither an mp::Object nor convertible to one: a struct the codec carries (cereal).
struct Reading {
    std::string sensor;
    std::vector<double> values;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(sensor, values);
    }
};

void record_readings(mp::DictProxy<std::string, Reading> latest, mp::QueueProxy<Reading> queue) {
    Reading r{"t1", {20.5, 21.0}};
    latest["t1"] = r;
    queue.put(r);
}

// Waits on a Condition built on a manager RLock until d["go"] is set, then reports.
void wait_on_shared_lock(mp::ConditionProxy cond, mp::DictProxy<> d, mp::QueueProxy<std::string> out) {
    std::lock_guard guard(cond);
    out.put("waiting");
    const bool ok = cond.wait_for([&] { return d.get("go", false).truthy(); }, std::chrono::seconds(30));
    out.put(ok ? "went" : "timed out");
}

void store_and_die(mp::DictProxy<> d, mp::ListProxy<> l, mp::Connection done) {
    d["kept"] = l;
    done.send(1);
    ::pause();
}

class Managers : public ProcessTest {};

TEST_F(Managers, SeedTwoDictAndListAreChangedByAChildAndPrintAsInPython) {
    HangGuard guard(std::chrono::seconds(60), "seed 002 with a manager");
    auto manager = mp::Manager();
    auto d = manager.dict();
    auto l = manager.list(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    mp::Process p(&seed_two_child, d, l);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    std::ostringstream out;
    out << d << '\n' << l;
    EXPECT_EQ(out.str(), "{1: '1', '2': 2, 0.25: None}\n[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    EXPECT_EQ(mp::repr(d.copy()), "{1: '1', '2': 2, 0.25: None}");
    EXPECT_EQ(l.values(), (std::vector<int>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
}

TEST_F(Managers, DictProxyHasTheDictsMethodsAndItsErrors) {
    auto manager = mp::Manager();
    auto d = manager.dict();
    d["a"] = 1;
    d.set("b", Object::list({1, 2}));
    EXPECT_EQ(d.at("a").as_int(), 1);
    EXPECT_EQ(d["b"].value().size(), 2u);
    EXPECT_TRUE(d.contains("a"));
    EXPECT_FALSE(d.contains("zz"));
    EXPECT_EQ(d.size(), 2u);
    EXPECT_EQ(d.get("zz", 7).as_int(), 7);
    EXPECT_EQ(d.setdefault("c", 3).as_int(), 3);
    EXPECT_EQ(d.pop("c").as_int(), 3);
    EXPECT_EQ(d.pop("c", "gone").as_str(), "gone");
    d.update(Object::dict({{"u", 1.5}}));
    EXPECT_EQ(mp::repr(Object(d.keys())), "['a', 'b', 'u']");
    EXPECT_EQ(mp::repr(Object(d.values())), "[1, [1, 2], 1.5]");
    const auto [k, v] = d.popitem();
    EXPECT_EQ(k.as_str(), "u");
    std::vector<std::string> seen;
    for (const Object& key : d) seen.push_back(key.as_str());
    EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
    d.erase("a");
    EXPECT_EQ(mp::repr(d.copy()), "{'b': [1, 2]}");
    EXPECT_EQ(mp::repr(d | Object::dict({{"z", 0}})), "{'b': [1, 2], 'z': 0}");  // 3.14's d | other
    EXPECT_EQ(d.size(), 1u);
    d |= Object::dict({{"z", 0}});
    EXPECT_EQ(d.size(), 2u);
    d.erase("z");
    EXPECT_THROW_WITH(d | Object::list(), mp::TypeError, "unsupported operand type(s) for |: 'dict' and 'list'");

    d["copy"] = d["b"];  // an item assigned from another item writes through, as in Python
    EXPECT_EQ(mp::repr(d.at("copy")), "[1, 2]");
    d.erase("copy");
    EXPECT_THROW_WITH(d.at("missing"), mp::KeyError, "'missing'");
    EXPECT_THROW_WITH(d.at(Object::tuple({1, "x"})), mp::KeyError, "(1, 'x')");
    EXPECT_THROW_WITH(d.erase("missing"), mp::KeyError, "'missing'");
    EXPECT_THROW_WITH(d.pop("missing"), mp::KeyError, "'missing'");
    EXPECT_THROW_WITH(d.set(Object::list(), 1), mp::TypeError, "unhashable type: 'list'");
    d.clear();
    EXPECT_THROW_WITH(d.popitem(), mp::KeyError, "popitem(): dictionary is empty");
    EXPECT_EQ(d.size(), 0u);
}

TEST_F(Managers, ListProxyHasTheListsMethodsAndItsErrors) {
    auto manager = mp::Manager();
    auto l = manager.list();
    l.append(3);
    l.extend({1, 2});
    l.insert(0, "first");
    EXPECT_EQ(mp::repr(l.copy()), "['first', 3, 1, 2]");
    EXPECT_EQ(l.pop().as_int(), 2);
    EXPECT_EQ(l.pop(0).as_str(), "first");
    l[0] = 30;
    EXPECT_EQ(l[-1].value().as_int(), 1);
    EXPECT_EQ(l.index(1), 1u);
    EXPECT_EQ(l.count(30), 1u);
    l.sort();
    EXPECT_EQ(mp::repr(l.copy()), "[1, 30]");
    l.sort(true);
    EXPECT_EQ(mp::repr(l.copy()), "[30, 1]");
    std::vector<std::int64_t> walked;
    for (const Object& item : l) walked.push_back(item.as_int());
    EXPECT_EQ(walked, (std::vector<std::int64_t>{30, 1}));
    l.remove(30);
    EXPECT_TRUE(l.contains(1));
    EXPECT_EQ(l.size(), 1u);

    EXPECT_THROW_WITH(l.at(5), mp::IndexError, "list index out of range");
    EXPECT_THROW_WITH(l.set(5, 0), mp::IndexError, "list index out of range");
    EXPECT_THROW_WITH(l.remove(99), mp::ValueError, "list.remove(x): x not in list");
    EXPECT_THROW_WITH(l.index(99), mp::ValueError, "99 is not in list");
    l.append("a");
    EXPECT_THROW_WITH(l.sort(), mp::TypeError, "'<' not supported between instances of 'str' and 'int'");
    l.clear();
    EXPECT_THROW_WITH(l.pop(), mp::IndexError, "pop from empty list");
    EXPECT_THROW_WITH(l._callmethod("no_such_method"), mp::RemoteError, "method 'no_such_method' of <class 'list'>");
}

TEST_F(Managers, TypedProxiesConvertAtTheClient) {
    auto manager = mp::Manager();
    auto d = manager.dict<std::string, int>();
    d["x"] = 1;
    d["y"] = 2;
    const int x = d["x"];
    EXPECT_EQ(x, 1);
    EXPECT_EQ(d.keys(), (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(d.items(), (std::vector<std::pair<std::string, int>>{{"x", 1}, {"y", 2}}));
    mp::DictProxy<> same(d);  // the same server object, seen as Objects
    same["z"] = "text";
    EXPECT_THROW_WITH(d.at("z"), mp::TypeError, "holds a str ('text'), not an int");
    auto l = manager.list(std::vector<double>{0.5});
    l.append(1.5);
    EXPECT_EQ(l.values(), (std::vector<double>{0.5, 1.5}));
}

TEST_F(Managers, NamespaceHasAttributesAndPrintsAsPythons) {
    auto manager = mp::Manager();
    auto ns = manager.Namespace();
    ns.set("name", "Bob");
    ns.set("n", 3);
    ns.set("_hidden", 1);
    EXPECT_EQ(ns.get<std::string>("name"), "Bob");
    std::ostringstream out;
    out << ns;
    EXPECT_EQ(out.str(), "Namespace(name='Bob', n=3)");
    EXPECT_THROW_WITH(ns.get("y"), mp::AttributeError, "'Namespace' object has no attribute 'y'");
    ns.erase("n");
    EXPECT_THROW_WITH(ns.get("n"), mp::AttributeError, "no attribute 'n'");
}

TEST_F(Managers, TwoProcessesWriteOneDict) {
    HangGuard guard(std::chrono::seconds(120), "two writers");
    auto manager = mp::Manager();
    auto d = manager.dict<std::string, int>();
    mp::Process a(&write_keys, d, 1, 300), b(&write_keys, d, 2, 300);
    a.start();
    b.start();
    a.join();
    b.join();
    EXPECT_EQ(a.exitcode(), 0);
    EXPECT_EQ(b.exitcode(), 0);
    EXPECT_EQ(d.size(), 600u);
    EXPECT_EQ(d["2-299"].value(), 299);
}

TEST_F(Managers, ObjectsLiveWhileAnyProxyRefersToThemAndNoLonger) {
    auto manager = mp::Manager();
    {
        auto d = manager.dict();
        auto copy = d;
        auto l = manager.list();
        EXPECT_EQ(manager.number_of_objects(), 2u);
        { auto d2 = std::move(d); }
        EXPECT_EQ(manager.number_of_objects(), 2u);  // `copy` still refers to the dict
    }
    EXPECT_EQ(manager.number_of_objects(), 0u);
}

TEST_F(Managers, AKilledClientDropsItsReferences) {
    HangGuard guard(std::chrono::seconds(60), "a killed client");
    auto manager = mp::Manager();
    auto [r, w] = mp::Pipe(false);
    mp::Process child;
    {
        auto d = manager.dict();
        child = mp::Process(&hold_and_wait, d, std::move(w));
        child.start();
        ASSERT_EQ(r.recv<int>(), 1);
    }  // the parent's proxy is gone; the child's reference keeps the dict
    EXPECT_EQ(manager.number_of_objects(), 1u);
    child.kill();
    child.join();
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 0; })) << "the dead child's reference leaked";
}

TEST_F(Managers, AForkChildDoesNotKeepItsDeadParentsReferences) {
    POLYPROC_FORK_ONLY();  // only a fork child inherits its parent's connections
    HangGuard guard(std::chrono::seconds(60), "a surviving fork child");
    auto manager = mp::Manager();
    auto [r, w] = mp::Pipe(false);
    mp::Process parent;
    int survivor = 0;
    {
        auto d = manager.dict();
        parent = mp::Process(&hold_then_fork_a_survivor, d, std::move(w));
        parent.start();
        survivor = r.recv<int>();  // `parent` holds its own reference now; ours may go
    }
    struct KillSurvivor {
        int pid;
        ~KillSurvivor() { ::kill(pid, SIGKILL); }
    } kill_survivor{survivor};
    EXPECT_EQ(manager.number_of_objects(), 1u);  // held by `parent` alone
    parent.kill();
    parent.join();
    ASSERT_TRUE(running(survivor));
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 0; }))
        << "a fork child kept its dead parent's session open";
}

TEST_F(Managers, AClientKilledMidBurstLeavesTheOthersServedAndNothingBehind) {
    HangGuard guard(std::chrono::seconds(120), "a client killed mid-burst");
    auto manager = mp::Manager();
    auto progress = manager.Queue<int>();
    std::vector<mp::Process> clients;
    {
        auto d = manager.dict<std::string, int>();
        for (int who = 0; who < 3; ++who) {
            clients.emplace_back(&hammer, d, progress, who, who == 0 ? 1'000'000 : 2000);
            clients.back().start();
        }
        for (int i = 0; i < 3; ++i) progress.get();  // all three are in the middle of their bursts
        clients[0].kill();
        clients[0].join();
        clients[1].join();
        clients[2].join();
        EXPECT_EQ(clients[1].exitcode(), 0);
        EXPECT_EQ(clients[2].exitcode(), 0);
        EXPECT_EQ(d.at("2-49"), 1999);
        EXPECT_EQ(d.size(), 150u);
    }
    // The dict went with the last proxy; the dead client's reference went with its connections.
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 1; })) << manager.number_of_objects();
}

TEST_F(Managers, AServerKilledMidBurstFailsEveryClientQuickly) {
    HangGuard guard(std::chrono::seconds(120), "a server killed mid-burst");
    auto manager = mp::Manager();
    auto progress = manager.Queue<int>();
    auto d = manager.dict<std::string, int>();
    std::vector<mp::Process> clients;
    for (int who = 0; who < 2; ++who) {
        clients.emplace_back(&hammer, d, progress, who, 1'000'000);
        clients.back().start();
    }
    for (int i = 0; i < 2; ++i) progress.get();
    ASSERT_EQ(::kill(*manager.pid(), SIGKILL), 0);
    for (auto& c : clients) {
        c.join(std::chrono::seconds(30));
        EXPECT_EQ(c.exitcode(), 3) << "a client did not see its manager go";
    }
}

TEST_F(Managers, AProxyWhoseServerIsGoneRaisesAtOnceNamingTheManager) {
    HangGuard guard(std::chrono::seconds(60), "a dead server");
    auto manager = mp::Manager();
    auto d = manager.dict();
    d["a"] = 1;
    const std::string where = mp::to_string(manager.address());
    ASSERT_EQ(::kill(*manager.pid(), SIGKILL), 0);
    EXPECT_THROW_WITH(d["a"].value(), mp::ProcessError, where);
    EXPECT_THROW_WITH(d["a"].value(), mp::ProcessError, "is gone");  // and again, reconnecting
    manager.shutdown();  // reaps it; no error
}

TEST_F(Managers, TheServerDiesWithTheProcessThatStartedIt) {
    HangGuard guard(std::chrono::seconds(60), "an orphaned server");
    auto [r, w] = mp::Pipe(false);
    mp::Process starter(&start_manager_and_wait, std::move(w));
    starter.start();
    const int server = r.recv<int>();
    ASSERT_TRUE(running(server));
    starter.kill();
    starter.join();
    EXPECT_TRUE(eventually([&] { return !running(server); })) << "the manager's server outlived its starter";
}

TEST_F(Managers, StartAndShutdownFollowPython) {
    auto manager = mp::Manager();
    EXPECT_THROW_WITH(manager.start(), mp::ProcessError, "Already started server");
    const int server = *manager.pid();
    manager.shutdown();
    manager.shutdown();  // idempotent
    EXPECT_FALSE(running(server));
    EXPECT_THROW_WITH(manager.start(), mp::ProcessError, "Manager has shut down");
    EXPECT_THROW_WITH(manager.dict(), mp::ValueError, "Manager has shut down");
    mp::SyncManager unstarted;
    EXPECT_THROW_WITH(unstarted.dict(), mp::ValueError, "server not yet started");
}

TEST_F(Managers, ConnectReachesARunningServerAndAWrongKeyIsRefused) {
    auto manager = mp::Manager();
    auto d = manager.dict();
    d["k"] = "v";
    mp::SyncManager second(manager.address(), mp::current_process().authkey());
    second.connect();
    auto l = second.list(Object::list({1}));
    EXPECT_EQ(manager.number_of_objects(), 2u);
    mp::SyncManager wrong(manager.address(), std::string("not the key"));
    EXPECT_THROW(wrong.connect(), mp::AuthenticationError);
}

// ---- synchronization types and queues ------------------------------------------------------------

TEST_F(Managers, AManagerLockSerializesProcesses) {
    HangGuard guard(std::chrono::seconds(120), "processes under a manager Lock");
    auto manager = mp::Manager();
    auto lock = manager.Lock();
    auto d = manager.dict(Object::dict({{"count", 20}}));
    std::vector<mp::Process> ps;
    for (int i = 0; i < 20; ++i) {
        ps.emplace_back(&decrement_under, d, lock);
        ps.back().start();
    }
    for (auto& p : ps) p.join();
    for (auto& p : ps) EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(mp::repr(d.copy()), "{'count': 0}");
}

TEST_F(Managers, LocksAndSemaphoresRaiseWhatPythonsThreadingRaises) {
    auto manager = mp::Manager();
    auto lock = manager.Lock();
    EXPECT_THROW_WITH(lock.release(), mp::RuntimeError, "release unlocked lock");
    EXPECT_TRUE(lock.acquire());
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_FALSE(lock.acquire(true, std::chrono::milliseconds(30)));
    std::ostringstream shown;
    shown << lock;
    EXPECT_EQ(shown.str(), "<locked _thread.lock object>");
    lock.release();
    { std::lock_guard guard(lock); }
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();

    auto rlock = manager.RLock();
    EXPECT_THROW_WITH(rlock.release(), mp::RuntimeError, "cannot release un-acquired lock");
    EXPECT_TRUE(rlock.acquire());
    EXPECT_TRUE(rlock.acquire());  // reentrant for this thread
    std::thread other([&] { EXPECT_FALSE(rlock.acquire(false)); });  // another thread: another channel
    other.join();
    rlock.release();
    rlock.release();
    EXPECT_THROW(rlock.release(), mp::RuntimeError);

    auto three = mp::AcquirerProxy(manager.create("Semaphore", Object::tuple(), Object::dict({{"value", 3}})));
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(three.acquire(false));  // Semaphore(value=3), as Python may call it
    EXPECT_FALSE(three.acquire(false));
    auto bounded = manager.BoundedSemaphore(2);
    EXPECT_THROW_WITH(bounded.release(), mp::ValueError, "Semaphore released too many times");
    auto sem = manager.Semaphore(0);
    EXPECT_FALSE(sem.acquire(false));
    sem.release();
    EXPECT_TRUE(sem.acquire(false));
    EXPECT_THROW_WITH(manager.Semaphore(-1), mp::ValueError, "semaphore initial value must be >= 0");
}

TEST_F(Managers, ALockHeldByAKilledClientPassesToTheNextAcquirerWhoIsTold) {
    HangGuard guard(std::chrono::seconds(60), "a lock whose holder was killed");
    auto manager = mp::Manager();
    auto lock = manager.Lock();
    auto [r, w] = mp::Pipe(false);
    mp::Process holder(&hold_lock_and_wait, lock, std::move(w));
    holder.start();
    ASSERT_EQ(r.recv<int>(), 1);
    EXPECT_FALSE(lock.acquire(false));
    const pid_t pid = holder.pid();
    holder.kill();
    holder.join();
    try {
        lock.acquire();
        FAIL() << "the next acquirer was not told";
    } catch (const mp::OwnerDiedError& e) {
        EXPECT_EQ(e.pid(), pid);
    }
    EXPECT_FALSE(lock.acquire(false));  // it holds the lock now
    lock.release();
    EXPECT_TRUE(lock.acquire(false));  // and the news was told once
    lock.release();
}

TEST_F(Managers, ConditionWaitsAndNotifiesAcrossProcesses) {
    HangGuard hang_guard(std::chrono::seconds(60), "a Condition");
    auto manager = mp::Manager();
    auto cond = manager.Condition();
    auto d = manager.dict();
    EXPECT_THROW_WITH(cond.wait(), mp::RuntimeError, "cannot wait on un-acquired lock");
    EXPECT_THROW_WITH(cond.notify(), mp::RuntimeError, "cannot notify on un-acquired lock");
    EXPECT_THROW_WITH(cond.release(), mp::RuntimeError, "cannot release un-acquired lock");
    {
        std::lock_guard guard(cond);
        EXPECT_FALSE(cond.wait(std::chrono::milliseconds(20)));  // timed out, and holds the lock again
        EXPECT_TRUE(cond.acquire());                             // reentrant
        cond.release();
    }
    mp::Process waiter(&wait_for_ready, cond, d);
    waiter.start();
    EXPECT_TRUE(eventually([&] { return cond._callmethod("__repr__").as_str().find(", 1)>") != std::string::npos; }))
        << "the child never waited";
    {
        std::lock_guard guard(cond);
        d["ready"] = true;
        cond.notify_all();
    }
    waiter.join();
    EXPECT_EQ(waiter.exitcode(), 0);
    EXPECT_EQ(mp::repr(d.get("seen")), "True");
}

TEST_F(Managers, BarrierLetsThePartiesThroughTogetherAndBreaksAsPythons) {
    HangGuard guard(std::chrono::seconds(60), "a Barrier");
    auto manager = mp::Manager();
    auto barrier = manager.Barrier(3);
    auto indices = manager.Queue<int>();
    EXPECT_EQ(barrier.parties(), 3);
    mp::Process a(&pass_barrier, barrier, indices), b(&pass_barrier, barrier, indices);
    a.start();
    b.start();
    std::set<int> seen{barrier.wait(std::chrono::seconds(30))};
    seen.insert(indices.get());
    seen.insert(indices.get());
    a.join();
    b.join();
    EXPECT_EQ(seen, (std::set<int>{0, 1, 2}));
    EXPECT_EQ(barrier.n_waiting(), 0);

    EXPECT_THROW(barrier.wait(std::chrono::milliseconds(20)), mp::BrokenBarrierError);  // timed out: broken
    EXPECT_TRUE(barrier.broken());
    EXPECT_THROW(barrier.wait(), mp::BrokenBarrierError);
    barrier.reset();
    EXPECT_FALSE(barrier.broken());

    auto out = manager.Queue<std::string>();
    mp::Process waiter(&wait_on_barrier_expecting_broken, barrier, out);
    waiter.start();
    EXPECT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
    barrier.abort();
    EXPECT_EQ(out.get(), "broken");
    waiter.join();
    EXPECT_THROW_WITH(manager.Barrier(0), mp::ValueError, "parties must be > 0");
}

TEST_F(Managers, EventWaitsAcrossProcesses) {
    HangGuard guard(std::chrono::seconds(60), "an Event");
    auto manager = mp::Manager();
    auto e = manager.Event();
    EXPECT_FALSE(e.is_set());
    EXPECT_FALSE(e.wait(std::chrono::milliseconds(20)));
    mp::Process setter(&set_event_later, e);
    setter.start();
    EXPECT_TRUE(e.wait());
    EXPECT_TRUE(e.is_set());
    setter.join();
    e.clear();
    EXPECT_FALSE(e.is_set());
}

TEST_F(Managers, QueueBlocksPerClientAndRaisesEmptyAndFull) {
    HangGuard guard(std::chrono::seconds(60), "a manager Queue");
    auto manager = mp::Manager();
    auto q = manager.Queue<std::string>();
    auto replies = manager.Queue<std::string>();
    auto d = manager.dict();
    mp::Process getter(&block_in_get, q, replies);
    getter.start();
    EXPECT_EQ(replies.get(), "waiting");
    d["meanwhile"] = 1;  // the getter's blocked call holds only its own server thread
    EXPECT_EQ(d.size(), 1u);
    q.put("hello");
    EXPECT_EQ(replies.get(true, std::chrono::seconds(30)), "got hello");
    getter.join();

    EXPECT_THROW(q.get(false), mp::Empty);
    EXPECT_THROW(q.get_nowait(), mp::Empty);
    EXPECT_THROW(q.get(true, std::chrono::milliseconds(20)), mp::Empty);
    auto small = manager.Queue<int>(1);
    small.put(1);
    EXPECT_TRUE(small.full());
    EXPECT_THROW(small.put_nowait(2), mp::Full);
    EXPECT_THROW(small.put(2, true, std::chrono::milliseconds(20)), mp::Full);
    EXPECT_EQ(small.qsize(), 1u);
    EXPECT_EQ(small.get(), 1);
    EXPECT_TRUE(small.empty());

    auto jq = manager.JoinableQueue<int>();
    jq.put(1);
    EXPECT_EQ(jq.get(), 1);
    jq.task_done();
    jq.join();
    EXPECT_THROW_WITH(jq.task_done(), mp::ValueError, "task_done() called too many times");
}

TEST_F(Managers, AClientKilledWhileBlockedFreesItsServerThread) {
    HangGuard guard(std::chrono::seconds(60), "a client killed in get()");
    auto manager = mp::Manager();
    auto q = manager.Queue<std::string>();
    auto replies = manager.Queue<std::string>();
    const pid_t server = *manager.pid();
    EXPECT_EQ(q.qsize(), 0u);  // this thread's channel is open: the baseline counts it
    const int before = threads_of(server);
    mp::Process getter(&block_in_get, q, replies);
    getter.start();
    EXPECT_EQ(replies.get(), "waiting");
    EXPECT_GT(threads_of(server), before);  // its session and its channel
    getter.kill();
    getter.join();
    EXPECT_TRUE(eventually([&] { return threads_of(server) == before; })) << threads_of(server) << " vs " << before;
    q.put("nobody");  // and the item is not taken by the dead client
    EXPECT_EQ(q.get(), "nobody");
}

TEST_F(Managers, ValueArrayAndSetProxies) {
    auto manager = mp::Manager();
    auto v = manager.Value(3.5);
    EXPECT_EQ(v.get(), 3.5);
    v.set(-1.0);
    EXPECT_EQ(v.value(), -1.0);
    std::ostringstream shown;
    shown << v;
    EXPECT_EQ(shown.str(), "Value('d', -1.0)");

    auto a = manager.Array(std::vector<int>{1, 2, 3});
    a[0] = 10;
    EXPECT_EQ(a.size(), 3u);
    EXPECT_EQ(static_cast<int>(a[-1]), 3);
    EXPECT_EQ(a.values(), (std::vector<int>{10, 2, 3}));
    EXPECT_THROW_WITH(a.at(3), mp::IndexError, "array index out of range");
    EXPECT_THROW_WITH(a.set(-4, 0), mp::IndexError, "array assignment index out of range");
    mp::ArrayProxy<Object> loose(a);  // the server enforces the typecode, as array.array does
    EXPECT_THROW_WITH(loose.set(0, "x"), mp::TypeError, "an integer is required");
    auto bytes = manager.Array(std::vector<std::uint8_t>{1});
    mp::ArrayProxy<int> wide(bytes);
    EXPECT_THROW_WITH(wide.set(0, 1000), mp::OverflowError, "unsigned byte integer is out of range");
    auto text = manager.Value("text");
    EXPECT_EQ(text.get(), "text");
    std::ostringstream array_shown;
    array_shown << a;
    EXPECT_EQ(array_shown.str(), "array('i', [10, 2, 3])");

    auto s = manager.set(std::vector<int>{3, 1});
    s.add(2);
    s.discard(7);
    EXPECT_TRUE(s.contains(2));
    EXPECT_EQ(s.size(), 3u);
    EXPECT_EQ(s.values(), (std::vector<int>{1, 2, 3}));  // CPython's order for small ints
    EXPECT_THROW_WITH(s.remove(7), mp::KeyError, "7");
    s.clear();
    EXPECT_THROW_WITH(s.pop(), mp::KeyError, "pop from an empty set");
}

TEST_F(Managers, ARegisteredClassIsMadeAndCalledInTheServerWithTypedMethods) {
    HangGuard guard(std::chrono::seconds(60), "a registered class");
    CounterManager manager;
    manager.start();
    auto counter = manager.create<CounterType>(10);
    EXPECT_EQ(counter.type_id(), "Counter");
    counter.call<&Counter::add>(5);
    EXPECT_EQ(counter.call<&Counter::value>(), 15);
    EXPECT_EQ(counter.call<&Counter::describe>("x", 2.0), "x30");
    std::ostringstream shown;
    shown << counter;
    EXPECT_EQ(shown.str(), "Counter(15)");

    // Children under this start method share the one object; the server serializes the calls.
    std::vector<mp::Process> children;
    for (int i = 0; i < 4; ++i) children.emplace_back(&add_many, counter, 50);
    for (auto& c : children) c.start();
    for (auto& c : children) c.join();
    for (auto& c : children) EXPECT_EQ(c.exitcode(), 0);
    EXPECT_EQ(counter.call<&Counter::value>(), 215);

    // An "Iterator" result walks the method's range from the server, item by item.
    std::vector<int> seen;
    auto history = counter.call<&Counter::history>();
    EXPECT_EQ(history.type_id(), "Iterator");
    for (int v : history) seen.push_back(v);
    ASSERT_EQ(seen.size(), 202u);
    EXPECT_EQ(seen.front(), 10);
    EXPECT_EQ(seen[1], 15);
    EXPECT_EQ(seen.back(), 215);
    EXPECT_FALSE(history.next().has_value());  // exhausted stays exhausted

    // method_to_typeid: the result stays in the server, and comes back as a proxy to it.
    mp::AutoProxy<CounterType> child(counter.call<&Counter::spawn_child>(1));
    EXPECT_EQ(child.call<&Counter::value>(), 216);
    child.call<&Counter::add>(4);
    EXPECT_EQ(child.call<&Counter::value>(), 220);
    EXPECT_EQ(counter.call<&Counter::value>(), 215);
    EXPECT_EQ(manager.number_of_objects(), 3u);  // counter, history, child
}

TEST_F(Managers, ARegisteredClassesErrorsComeBackAndNothingLeaks) {
    HangGuard guard(std::chrono::seconds(60), "a registered class's errors");
    CounterManager manager;
    manager.start();
    {
        auto counter = manager.create<CounterType>(1);
        EXPECT_THROW_WITH(counter.call<&Counter::fail>("bad input"), mp::ValueError, "bad input");
        EXPECT_THROW_WITH(counter.call<&Counter::fail_oddly>(), mp::RuntimeError, "no std::exception");
        // What only a dynamic caller can get wrong: a wrong type, a wrong count, an unexposed name.
        EXPECT_THROW_WITH(counter._callmethod("add", Object::tuple({"one"})), mp::TypeError, "str");
        EXPECT_THROW_WITH(counter._callmethod("add", Object::tuple()), mp::TypeError,
                          "add() takes exactly 1 argument (0 given)");
        EXPECT_THROW_WITH(counter._callmethod("add", Object::tuple({1}), Object::dict({{"n", 1}})), mp::TypeError,
                          "add() takes no keyword arguments");
        EXPECT_THROW_WITH(counter._callmethod("secret"), mp::RemoteError, "is not in exposed=('add', 'value'");
        EXPECT_THROW_WITH(counter._callmethod("spawn_child", Object::tuple({1})), mp::TypeError, "returns a proxy");
        // A method_to_typeid result of another type than that typeid holds is refused.
        EXPECT_THROW_WITH(counter.call<&Counter::copy_as_value>(), mp::RemoteError, "not the");
        EXPECT_THROW_WITH(manager.create("Counter", Object::tuple({"x"})), mp::TypeError, "str");
        EXPECT_THROW_WITH(manager.create("Nope"), mp::RemoteError, "no such typeid");
        EXPECT_EQ(counter.call<&Counter::value>(), 1);  // still served

        auto opaque = manager.create<OpaqueType>();
        EXPECT_EQ(opaque.call<&Opaque::get>(), 7);
        std::ostringstream shown;
        shown << opaque;
        EXPECT_NE(shown.str().find("Opaque object at 0x"), std::string::npos) << shown.str();
        EXPECT_EQ(opaque._getvalue().as<Opaque>().x, 7) << "trivially copyable: Serializable, so it travels";
        EXPECT_THROW_WITH(counter._getvalue(), mp::TypeError, "Counter' object (it has no mp::ObjectConversion)");
    }
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 0; }));
    EXPECT_THROW_WITH(manager.register_<CounterType>(), mp::ProcessError, "after start()");
}

TEST_F(Managers, ATypeTheServerWasNotToldAboutIsAClearError) {
    auto manager = mp::Manager();
    EXPECT_THROW_WITH(manager.create<CounterType>(1), mp::RemoteError, "no such typeid");
}

TEST_F(Managers, AProxyInsideAManagedContainerStaysLiveForEveryProcess) {
    HangGuard guard(std::chrono::seconds(60), "proxies inside managed containers");
    auto manager = mp::Manager();
    auto d = manager.dict();
    {
        auto l = manager.list(std::vector<int>{1});
        d["inner"] = l;
        d["table"] = manager.dict();  // a temporary: from here on only d holds it
        auto rows = manager.list();
        rows.append(manager.dict());  // a dict inside a list inside the dict
        d["rows"] = rows;
    }
    EXPECT_EQ(manager.number_of_objects(), 5u) << "the nested objects live while d holds them";

    mp::Process p(&change_nested, d);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    {
        auto inner = d["inner"].value().as<mp::ListProxy<int>>();
        EXPECT_EQ(inner.values(), (std::vector<int>{1, 42})) << "the child's append reached the list itself";
        EXPECT_EQ(d.at("table").as<mp::DictProxy<>>().copy(), Object::dict({{"seen", true}}));
        auto rows = d.at("rows").as<mp::ListProxy<>>();
        EXPECT_EQ(rows.at(0).as<mp::DictProxy<>>().copy(), Object::dict({{"row", 0}}));
        EXPECT_NE(mp::repr(d.copy()).find("'inner': <polyproc.Proxy('list', "), std::string::npos)
            << mp::repr(d.copy());
        EXPECT_THROW_WITH(d.at("inner").as<mp::ListProxy<>>().at(5), mp::IndexError, "list index out of range");
        EXPECT_THROW_WITH(d.at("nothing").as<mp::ListProxy<>>(), mp::KeyError, "nothing");
    }
    // Taken out of the dict, and no proxy left: gone.
    d.erase("inner");
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 4; })) << manager.number_of_objects();
    d.clear();
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 1; })) << manager.number_of_objects();
    d["x"] = 1;
    EXPECT_THROW_WITH(d.at("x").as<mp::ListProxy<>>(), mp::TypeError, "not a manager proxy");
}

TEST_F(Managers, AProxyStoredByAClientThatDiesStaysLiveWhileItsContainerHoldsIt) {
    HangGuard guard(std::chrono::seconds(60), "a nested proxy outliving the process that stored it");
    auto manager = mp::Manager();
    auto d = manager.dict();
    {
        auto l = manager.list();
        l.append("x");
        auto [r, w] = mp::Pipe(false);
        mp::Process p(&store_and_die, d, l, std::move(w));
        p.start();
        EXPECT_EQ(r.recv<int>(), 1);
        p.kill();
        p.join();
    }  // nobody but the dict refers to the list now
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 2; })) << manager.number_of_objects();
    EXPECT_EQ(d.at("kept").as<mp::ListProxy<std::string>>().values(), (std::vector<std::string>{"x"}));
    EXPECT_EQ(manager.number_of_objects(), 2u);
}

TEST_F(Managers, TypedContainersHoldAnySerializableType) {
    HangGuard guard(std::chrono::seconds(60), "typed containers of a Serializable struct");
    auto manager = mp::Manager();
    auto latest = manager.dict<std::string, Reading>();
    auto queue = manager.Queue<Reading>();
    mp::Process p(&record_readings, latest, queue);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    const Reading r = latest["t1"];
    EXPECT_EQ(r.sensor, "t1");
    EXPECT_EQ(r.values, (std::vector<double>{20.5, 21.0}));
    EXPECT_EQ(queue.get().values.size(), 2u);
    auto history = manager.list<Reading>();
    history.append(r);
    history.append(Reading{"t2", {}});
    EXPECT_EQ(history.at(-1).sensor, "t2");
    EXPECT_EQ(history.values().size(), 2u);
    // The server holds them opaquely; an untyped proxy sees the instance, and reading it as
    // another type says so.
    mp::DictProxy<> untyped(latest);
    EXPECT_EQ(untyped.at("t1").instance_name(), "Native");
    mp::DictProxy<std::string, int> wrong(latest);
    EXPECT_THROW(wrong.at("t1"), mp::TypeError);
}

TEST_F(Managers, GetServerServesFromThisProcess) {
    HangGuard guard(std::chrono::seconds(60), "get_server().serve_forever()");
    CounterManager manager;
    auto server = manager.get_server();
    std::thread serving([&] { server.serve_forever(); });
    {
        mp::SyncManager client(server.address());
        client.connect();
        auto d = client.dict();
        d["a"] = 1;
        EXPECT_EQ(d.copy(), Object::dict({{"a", 1}}));
        auto counter = client.create<CounterType>(3);  // the server knows the manager's registrations
        counter.call<&Counter::add>(2);
        EXPECT_EQ(counter.call<&Counter::value>(), 5);
        EXPECT_EQ(client.number_of_objects(), 2u);
    }
    server.stop();
    serving.join();
    auto started = mp::Manager();
    EXPECT_THROW_WITH(started.get_server(), mp::ProcessError, "Already started server");
}

TEST_F(Managers, AConditionOnAManagerLockSharesThatLock) {
    HangGuard guard(std::chrono::seconds(60), "Condition(lock)");
    auto manager = mp::Manager();
    auto lock = manager.RLock();
    auto cond = manager.Condition(lock);
    auto d = manager.dict();
    auto out = manager.Queue<std::string>();
    mp::Process p(&wait_on_shared_lock, cond, d, out);
    p.start();
    EXPECT_EQ(out.get(true, std::chrono::seconds(30)), "waiting");
    {
        std::lock_guard held(lock);  // the lock itself, not the condition: they are one
        d["go"] = true;
        cond.notify();
    }
    EXPECT_EQ(out.get(true, std::chrono::seconds(30)), "went");
    p.join();
    EXPECT_EQ(p.exitcode(), 0);

    EXPECT_THROW_WITH(cond.wait(std::chrono::milliseconds(1)), mp::RuntimeError, "cannot wait on un-acquired lock");
    EXPECT_THROW_WITH(cond.notify(), mp::RuntimeError, "cannot notify on un-acquired lock");
    {  // wait() gives the RLock back however deep it is held, and restores the depth
        std::lock_guard outer(lock);
        std::lock_guard inner(cond);
        EXPECT_FALSE(cond.wait(std::chrono::milliseconds(20)));
    }
    bool free_elsewhere = false;  // another thread is another owner: only a free RLock lets it in
    std::thread([&] {
        free_elsewhere = lock.acquire(false);
        if (free_elsewhere) lock.release();
    }).join();
    EXPECT_TRUE(free_elsewhere) << "released as many times as it was taken";
    auto plain = manager.Lock();
    auto on_plain = manager.Condition(plain);
    {
        std::lock_guard held(on_plain);
        EXPECT_FALSE(on_plain.wait(std::chrono::milliseconds(10)));
        EXPECT_FALSE(plain.acquire(false)) << "held again after the wait";
    }
    EXPECT_THROW_WITH(manager.Condition(manager.Semaphore(2)), mp::TypeError, "wants a Lock or RLock");
    auto other = mp::Manager();
    EXPECT_THROW_WITH(manager.Condition(other.Lock()), mp::TypeError, "another manager's");
}

TEST_F(Managers, ALongChainOfNestedContainersIsFreedWithoutRecursion) {
    HangGuard guard(std::chrono::seconds(120), "a chain of nested containers");
    auto manager = mp::Manager();
    {
        auto head = manager.list();
        for (int i = 0; i < 20000; ++i) {  // each list holds the one before: freeing is a chain
            auto next = manager.list();
            next.append(head);
            head = next;
        }
        EXPECT_EQ(manager.number_of_objects(), 20001u);
    }
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == 0; }, std::chrono::seconds(60)))
        << manager.number_of_objects();
    auto d = manager.dict();  // and the server is still there
    d["alive"] = true;
    EXPECT_EQ(d.size(), 1u);
}

// ---- the server itself, in this process, against bad input -------------------------------------

namespace {

namespace wire = mp::detail::manager;

class InProcessServer {
public:
    explicit InProcessServer(std::string key = "secret", wire::Registry registry = {})
        : server_(mp::Listener(std::nullopt, 16), std::move(key), std::move(registry)),
          thread_([this] { server_.serve_forever(); }) {}
    ~InProcessServer() {
        server_.stop();
        thread_.join();
    }
    wire::Server& server() { return server_; }
    const mp::Address& address() { return server_.address(); }

private:
    wire::Server server_;
    std::thread thread_;
};

std::string view(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

wire::Reply ask(mp::Connection& c, const std::string& request) {
    c.send_bytes(request);
    return wire::decode_reply(view(c.recv_bytes()));
}

}  // namespace

// A raw connection to an AF_UNIX path that never takes part in the handshake; -1 on failure.
int connect_without_speaking(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    ::close(fd);
    return -1;
}

int open_fds() {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) n += entry.exists() ? 1 : 0;
    return n;
}

// The lines a Python client script prints, run with the server's address as sys.argv[1].
std::vector<std::string> run_python_client(const std::string& python, const char* script, const mp::Address& address) {
    char dir[] = "/tmp/polyproc-mgr-XXXXXX";
    if (!::mkdtemp(dir)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    const std::string path = std::string(dir) + "/client.py";
    std::ofstream(path) << script;
    const auto lines = python_output(
        python, "import runpy, sys; sys.argv = ['client.py', " + mp::repr(Object(std::get<std::string>(address))) +
                    "]; runpy.run_path(" + mp::repr(Object(path)) + ", run_name='__main__')\n");
    std::remove(path.c_str());
    ::rmdir(dir);
    return lines;
}

TEST(ManagerServer, MalformedRequestsGetATraceback) {
    InProcessServer s;
    const int fds_before = open_fds();
    {
        auto c = mp::Client(s.address(), std::string("secret"));
        const auto reply = ask(c, mp::pickle_dumps(Object::tuple({mp::None, "dummy"})));
        EXPECT_EQ(reply.kind, "#TRACEBACK");
        EXPECT_NE(reply.value.as_str().find("not enough values to unpack (expected 4, got 2)"), std::string::npos);
        EXPECT_THROW(c.recv_bytes(), mp::EOFError);  // closed after it
    }
    {
        auto c = mp::Client(s.address(), std::string("secret"));
        const auto reply = ask(c, wire::encode_request(mp::None, "nope"));
        EXPECT_EQ(reply.kind, "#TRACEBACK");
        EXPECT_EQ(reply.value.as_str(), "AssertionError: 'nope' unrecognized");
    }
    {
        auto c = mp::Client(s.address(), std::string("secret"));
        const auto reply = ask(c, "\x80\x04garbage");
        EXPECT_EQ(reply.kind, "#TRACEBACK");
        EXPECT_NE(reply.value.as_str().find("UnpicklingError"), std::string::npos);
    }
    {
        auto c = mp::Client(s.address(), std::string("secret"));
        const auto reply = ask(c, wire::encode_request(mp::None, "create", Object::tuple({"no_such_type"})));
        EXPECT_EQ(reply.kind, "#TRACEBACK");
        EXPECT_NE(reply.value.as_str().find("no such typeid"), std::string::npos);
    }
    {  // a channel that sends garbage is answered, and served further
        auto c = mp::Client(s.address(), std::string("secret"));
        EXPECT_EQ(ask(c, wire::encode_request(mp::None, "accept_connection", Object::tuple({"t"}))).kind, "#RETURN");
        const auto created = ask(c, wire::encode_request(mp::None, "create", Object::tuple({"dict"})));
        ASSERT_EQ(created.kind, "#RETURN");
        const Object ident = created.value[0];
        const auto missing = ask(c, wire::encode_request(ident, "__getitem__", Object::tuple({"k"})));
        ASSERT_EQ(missing.kind, "#ERROR");  // KeyError('k'), as CPython sends it
        EXPECT_EQ(missing.error->name, "KeyError");
        EXPECT_EQ(mp::repr(missing.error->args), "('k',)");
        EXPECT_EQ(ask(c, wire::encode_request("ffff", "__len__")).kind, "#TRACEBACK");  // no such object
        EXPECT_EQ(ask(c, std::string(100, 'x')).kind, "#TRACEBACK");
        // As CPython's: a whole message it cannot read is answered, and the channel goes on.
        EXPECT_EQ(ask(c, wire::encode_request(ident, "__len__")).kind, "#RETURN");
    }
    EXPECT_EQ(s.server().number_of_objects(), 1u);  // a session-less create is CPython's: refcount 1
    EXPECT_TRUE(eventually([&] { return s.server().connections() == 0; })) << "a connection thread lingers";
    EXPECT_TRUE(eventually([&] { return open_fds() == fds_before; })) << "descriptors leaked: " << open_fds();
}

TEST(ManagerServer, APeerThatNeverAuthenticatesIsCutOff) {
    HangGuard guard(std::chrono::seconds(60), "a silent peer");
    InProcessServer s;
    const int silent = connect_without_speaking(std::get<std::string>(s.address()));
    ASSERT_GE(silent, 0);
    // It reads the challenge, says nothing, and is disconnected after the handshake's 10 s.
    char buf[256];
    const auto start = std::chrono::steady_clock::now();
    ssize_t n;
    while ((n = ::read(silent, buf, sizeof buf)) > 0) {
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    ::close(silent);
    EXPECT_EQ(n, 0);
    EXPECT_GE(waited, std::chrono::seconds(9));
    EXPECT_TRUE(eventually([&] { return s.server().connections() == 0; }));
}

TEST(ManagerServer, AWrongKeyOrASilentPeerNeverStallsTheOthers) {
    HangGuard guard(std::chrono::seconds(60), "a silent peer");
    InProcessServer s;
    EXPECT_THROW(mp::Client(s.address(), std::string("wrong")), mp::AuthenticationError);
    // A peer that connects and says nothing holds only its own thread.
    const int silent = connect_without_speaking(std::get<std::string>(s.address()));
    ASSERT_GE(silent, 0);
    for (int i = 0; i < 5; ++i) {
        auto c = mp::Client(s.address(), std::string("secret"));
        EXPECT_EQ(ask(c, wire::encode_request(mp::None, "dummy")).kind, "#RETURN");
    }
    ::close(silent);
    EXPECT_TRUE(eventually([&] { return s.server().connections() == 0; }));
}

TEST(ManagerServer, ShutdownAnswersTwiceAsCPythonDoes) {
    InProcessServer s;
    auto c = mp::Client(s.address(), std::string("secret"));
    EXPECT_EQ(ask(c, wire::encode_request(mp::None, "shutdown")).kind, "#RETURN");
    EXPECT_EQ(wire::decode_reply(view(c.recv_bytes())).kind, "#RETURN");
}

TEST(ManagerServer, APythonClientUsesOurServer) {
    HangGuard guard(std::chrono::seconds(120), "a Python client");
    InProcessServer s;
    const char* script = R"(
import sys
from multiprocessing.managers import BaseManager, DictProxy, ListProxy
class M(BaseManager):
    pass
M.register('dict', dict, DictProxy)
M.register('list', list, ListProxy)
m = M(address=sys.argv[1], authkey=b'secret')
m.connect()
d = m.dict()
d['a'] = 1
d[2] = [1.5, None]
print(d)
try:
    d['missing']
except KeyError as e:
    print('KeyError', e)
l = m.list(range(3))
l.reverse()
print(l, len(l))
import queue
from multiprocessing.managers import AcquirerProxy
M.register('Queue', queue.Queue)
M.register('Lock', None, AcquirerProxy)
q = m.Queue()
q.put((1, 'x'))
print(q.get(), q.qsize())
try:
    q.get_nowait()
except queue.Empty:
    print('Empty')
lock = m.Lock()
with lock:
    print(lock.acquire(False))
try:
    lock.release()
except RuntimeError as e:
    print('RuntimeError', e)
)";
    for (const auto& python : python_interpreters()) {
        const auto lines = run_python_client(python, script, s.address());
        EXPECT_EQ(lines,
                  (std::vector<std::string>{"{'a': 1, 2: [1.5, None]}", "KeyError 'missing'", "[2, 1, 0] 3",
                                            "(1, 'x') 0", "Empty", "False", "RuntimeError release unlocked lock"}))
            << python;
    }
    EXPECT_TRUE(eventually([&] { return s.server().number_of_objects() == 0; }))
        << "the Python client's objects leaked";
}

TEST(ManagerServer, APythonClientUsesARegisteredClassAndItsProxyResults) {
    HangGuard guard(std::chrono::seconds(120), "a Python client of a registered class");
    InProcessServer s("secret", {{"Counter", wire::registered_type<CounterType>()}});
    const char* script = R"(
import sys
from multiprocessing.managers import BaseManager, IteratorProxy
class M(BaseManager):
    pass
M.register('Counter')
M.register('Iterator', proxytype=IteratorProxy, create_method=False)
m = M(address=sys.argv[1], authkey=b'secret')
m.connect()
c = m.Counter(3)
c.add(4)
print(c.value(), c.describe('v', 0.5), str(c))
print(list(c.history()))
child = c.spawn_child(10)
print(type(child).__name__, child.value())
try:
    c.add('x')
except TypeError as e:
    print('TypeError')
try:
    c.fail('no')
except ValueError as e:
    print('ValueError', e)
del child, c
)";
    for (const auto& python : python_interpreters()) {
        const auto lines = run_python_client(python, script, s.address());
        EXPECT_EQ(lines, (std::vector<std::string>{"7 v3 Counter(7)", "[3, 7]", "AutoProxy[Counter] 17", "TypeError",
                                                   "ValueError no"}))
            << python;
    }
    EXPECT_TRUE(eventually([&] { return s.server().number_of_objects() == 0; }))
        << "the Python client's objects leaked";
}

TEST(ManagerProtocol, AProxyReplyIsCPythonsBytes) {
    const std::string ours = wire::encode_proxy_reply(Object::tuple({"a", "b"}), "Tree", Object("/tmp/x"), "7f");
    const auto python = python_output(python_interpreters().front(),
                                      "import pickle, sys\n"
                                      "from multiprocessing.managers import Token\n"
                                      "sys.stdout.write(pickle.dumps(('#PROXY', (('a', 'b'), Token('Tree', '/tmp/x', "
                                      "'7f'))), 4).hex() + '\\n')\n");
    std::string hex;
    for (unsigned char c : ours) {
        static const char* digits = "0123456789abcdef";
        hex += digits[c >> 4];
        hex += digits[c & 15];
    }
    ASSERT_EQ(python.size(), 1u);
    EXPECT_EQ(hex, python[0]);
    const auto reply = wire::decode_reply(ours);
    EXPECT_EQ(reply.kind, "#PROXY");
    ASSERT_TRUE(reply.token.has_value());
    EXPECT_EQ(reply.token->type_id, "Tree");
    EXPECT_EQ(reply.token->ident, "7f");
    // An instance of anything else in a reply is refused, not guessed at.
    const auto other = python_output(python_interpreters().front(),
                                     "import pickle, sys, fractions\n"
                                     "sys.stdout.write(pickle.dumps(('#RETURN', fractions.Fraction(1, 3)), 4).hex() + "
                                     "'\\n')\n");
    ASSERT_EQ(other.size(), 1u);
    std::string bytes;
    for (std::size_t i = 0; i + 1 < other[0].size(); i += 2)
        bytes += static_cast<char>(std::stoi(other[0].substr(i, 2), nullptr, 16));
    EXPECT_THROW(wire::decode_reply(bytes), std::exception);
}

TEST_F(Managers, AMessageTooBigForTheMailboxTakesTheSocket) {
    HangGuard guard(std::chrono::seconds(60), "big values through a channel");
    auto manager = mp::Manager();
    auto d = manager.dict<std::string, std::string>();
    const std::string big((std::size_t{4} << 20) + 17, 'x');  // far beyond the socket's buffer too
    d["big"] = big;  // a request larger than the mailbox
    EXPECT_EQ(d.at("big"), big);  // and a reply
    d["small"] = "s";  // and the mailbox again after
    EXPECT_EQ(d.at("small"), "s");
    EXPECT_EQ(d.size(), 2u);
}

TEST(ManagerServer, AClientThatScribblesOnItsMailboxLosesOnlyItsChannel) {
    HangGuard guard(std::chrono::seconds(60), "a hostile mailbox");
    InProcessServer s;
    const int fds_before = open_fds();
    {
        auto c = mp::Client(s.address(), std::string("secret"));
        EXPECT_EQ(ask(c, wire::encode_request(mp::None, "accept_connection", Object::tuple({"x"}),
                                              Object::dict({{"mailbox", true}})))
                      .kind,
                  "#RETURN");
        auto fd = c.recv_handle();
        EXPECT_NE(::ftruncate(fd.get(), 0), 0) << "sealed: a client cannot shrink the server's mapping";
        EXPECT_NE(::ftruncate(fd.get(), 1 << 20), 0) << "nor grow it";
        auto mailbox = wire::Mailbox::attach(std::move(fd));
        // A length beyond the buffer, then the word that says a request is there.
        auto& layout = mailbox.layout();
        std::atomic_ref(layout.to[1].length).store(std::uint32_t{1} << 30);
        std::atomic_ref(layout.to[1].sent).fetch_add(1);
        EXPECT_TRUE(eventually([&] { return c.poll(std::chrono::milliseconds(10)); }));
        EXPECT_THROW(c.recv_bytes(), mp::EOFError) << "the server closed this channel";
    }
    {  // everyone else is still served, through a mailbox of their own
        auto c = mp::Client(s.address(), std::string("secret"));
        EXPECT_EQ(ask(c, wire::encode_request(mp::None, "accept_connection", Object::tuple({"y"}),
                                              Object::dict({{"mailbox", true}})))
                      .kind,
                  "#RETURN");
        auto mailbox = wire::Mailbox::attach(c.recv_handle());
        mailbox.send(wire::Mailbox::Side::client, c, wire::encode_request(mp::None, "create", Object::tuple({"dict"})));
        const auto reply = wire::decode_reply(view(mailbox.recv(wire::Mailbox::Side::client, c, 1 << 20)));
        EXPECT_EQ(reply.kind, "#RETURN");
        // A compact request is answered in kind: what polyproc's own clients send on a mailbox.
        mailbox.send(
            wire::Mailbox::Side::client, c,
            wire::encode_request(reply.value[0], "__len__", Object::tuple(), Object::dict(), wire::Encoding::compact));
        const auto compact = view(mailbox.recv(wire::Mailbox::Side::client, c, 1 << 20));
        EXPECT_EQ(compact.substr(0, 2), "Rr");
        EXPECT_EQ(wire::decode_reply(compact).value, Object(0));
        mailbox.send(wire::Mailbox::Side::client, c, "garbage");
        EXPECT_EQ(wire::decode_reply(view(mailbox.recv(wire::Mailbox::Side::client, c, 1 << 20))).kind, "#TRACEBACK");
        EXPECT_THROW(mailbox.recv(wire::Mailbox::Side::client, c, 1 << 20), mp::EOFError)
            << "closed after garbage, and a sleeper on a mailbox notices";
    }
    {  // the compact encoding is for polyproc's channels (a session or a mailbox): a socket-only peer (Python's) never meets it
        auto c = mp::Client(s.address(), std::string("secret"));
        const auto reply = ask(c, wire::encode_request(mp::None, "accept_connection", Object::tuple({"z"}),
                                                       Object::dict(), wire::Encoding::compact));
        EXPECT_EQ(reply.kind, "#TRACEBACK");
        EXPECT_NE(reply.value.as_str().find("polyproc's channels only"), std::string::npos);
        EXPECT_THROW(c.recv_bytes(), mp::EOFError);
    }
    EXPECT_TRUE(eventually([&] { return s.server().connections() == 0; }));
    EXPECT_TRUE(eventually([&] { return open_fds() == fds_before; })) << "the mailboxes' memfds are closed";
}
