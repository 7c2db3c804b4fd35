// managers.hpp's PoolProxy: a Pool in a manager's server, used by several processes; its
// AsyncResult and IMapIterator proxies; failures as their own types (a task's exception, a worker
// killed mid-task, a timeout); and no worker, object or thread left once the proxies are gone.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "support.hpp"

namespace {

using mp::Object;

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
std::string shout(const std::string& s) { return s + "!"; }
int fail_on_three(int x) {
    if (x == 3) throw std::out_of_range("three is out of range");
    return x;
}
int die_on_three(int x) {
    if (x == 3) ::raise(SIGKILL);
    return x;
}
int sleep_then(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(x));
    return x;
}

// Registered by the client only (after its manager started): the client makes it, as a local
// pool's get() would.
struct KnownToTheClient : std::runtime_error {
    using std::runtime_error::runtime_error;
};
int throw_known(int) { throw KnownToTheClient("the client knows this one"); }

struct NotRegistered : std::runtime_error {
    using std::runtime_error::runtime_error;
};
int throw_unregistered(int) { throw NotRegistered("a type the client cannot make"); }

// A child that uses the pool it was given.
void use_pool(mp::PoolProxy pool, mp::Connection out) { out.send(pool.apply(square, 12)); }

// A client of its own: connects to the manager at `path`, makes a pool, uses it, and waits to be
// killed.
void make_pool_and_wait(std::string path, mp::Connection out) {
    mp::SyncManager manager{mp::Address(path)};
    manager.connect();
    auto pool = manager.Pool(2);
    out.send(pool.apply(square, 2));
    ::pause();
}

// The server process's children that are spawned workers (its pool's; not its resource tracker),
// from /proc.
std::size_t children_of(pid_t pid) {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream in(task.path() / "children");
        std::string child;
        while (in >> child) {
            std::ifstream cmdline("/proc/" + child + "/cmdline");
            const std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
            n += args.find("--polyproc-child") != std::string::npos;
        }
    }
    return n;
}

class ManagerPool : public ProcessTest {};

}  // namespace

TEST_F(ManagerPool, RunsTasksForEveryProcessAsALocalPoolDoes) {
    HangGuard guard(std::chrono::seconds(120), "a manager's pool");
    auto manager = mp::Manager();
    auto pool = manager.Pool(2);
    EXPECT_EQ(pool.processes(), 2u);
    EXPECT_EQ(pool.apply(square, 7), 49);
    EXPECT_EQ(pool.apply(add, 2, 3), 5);
    EXPECT_EQ(pool.apply(shout, "hi"), "hi!");
    const int offset = 100;
    EXPECT_EQ(pool.apply([offset](int x) { return x + offset; }, 1), 101);  // captured values travel

    std::vector<int> items(100);
    std::iota(items.begin(), items.end(), 0);
    std::vector<int> squares;
    for (int x : items) squares.push_back(x * x);
    EXPECT_EQ(pool.map(square, items), squares);
    EXPECT_EQ(pool.map(square, items, 7), squares);
    EXPECT_EQ(pool.map(square, std::vector<int>{}), std::vector<int>{});
    EXPECT_EQ(pool.starmap(add, std::vector<std::pair<int, int>>{{1, 2}, {3, 4}}), (std::vector<int>{3, 7}));

    auto async = pool.map_async(square, items);
    EXPECT_EQ(async.get(std::chrono::seconds(60)), squares);
    EXPECT_TRUE(async.ready());
    EXPECT_TRUE(async.successful());

    std::vector<int> ordered;
    for (int r : pool.imap(square, items, 3)) ordered.push_back(r);
    EXPECT_EQ(ordered, squares);
    std::vector<int> unordered;
    auto it = pool.imap_unordered(square, items);
    while (auto r = it.next(std::chrono::seconds(60))) unordered.push_back(*r);
    std::sort(unordered.begin(), unordered.end());
    EXPECT_EQ(unordered, squares);

    // Another process uses the same pool through its own copy of the proxy.
    auto [here, there] = mp::Pipe();
    mp::Process child(use_pool, pool, std::move(there));
    child.start();
    EXPECT_EQ(here.recv<int>(), 144);
    child.join();
    EXPECT_EQ(child.exitcode(), 0);

    EXPECT_THROW(pool.join(), mp::ValueError) << "join before close";
    pool.close();
    EXPECT_THROW(pool.apply(square, 1), mp::ValueError) << "Pool not running";
    pool.join();
}

TEST_F(ManagerPool, FailuresComeBackAsTheirOwnTypesAndThePoolGoesOn) {
    HangGuard guard(std::chrono::seconds(120), "failures in a manager's pool");
    auto manager = mp::Manager();
    auto pool = manager.Pool(2);
    EXPECT_THROW(pool.apply(fail_on_three, 3), std::out_of_range);
    try {
        pool.map(fail_on_three, std::vector<int>{1, 2, 3, 4}, 1);
        ADD_FAILURE() << "map did not throw";
    } catch (const std::out_of_range& e) {
        EXPECT_STREQ(e.what(), "three is out of range");
    }
    try {
        pool.apply(throw_unregistered, 0);
        ADD_FAILURE() << "no error";
    } catch (const mp::RemoteError& e) {
        EXPECT_NE(e.type_name().find("NotRegistered"), std::string::npos) << e.type_name();
        EXPECT_EQ(e.remote_message(), "a type the client cannot make");
        EXPECT_GT(e.pid(), 0) << "the worker that raised it";
    }

    mp::register_exception<KnownToTheClient>();
    EXPECT_THROW(pool.apply(throw_known, 0), KnownToTheClient);

    // A worker killed mid-task fails that task only; the others complete.
    auto lost = pool.map_async(die_on_three, std::vector<int>{1, 2, 3, 4, 5}, 1);
    EXPECT_THROW(lost.get(std::chrono::seconds(60)), mp::WorkerLostError);
    EXPECT_FALSE(lost.successful());
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9})) << "the worker was replaced";

    // imap throws at the failed item's place and goes on.
    auto it = pool.imap(fail_on_three, std::vector<int>{1, 2, 3, 4});
    EXPECT_EQ(it.next(), 1);
    EXPECT_EQ(it.next(), 2);
    EXPECT_THROW(it.next(), std::out_of_range);
    EXPECT_EQ(it.next(), 4);
    EXPECT_EQ(it.next(), std::nullopt);

    // Timeouts: the result is kept in the server and can be waited for again.
    auto slow = pool.apply_async(sleep_then, 1500);
    EXPECT_THROW(slow.get(std::chrono::milliseconds(50)), mp::TimeoutError);
    EXPECT_FALSE(slow.ready());
    EXPECT_THROW(slow.successful(), mp::ValueError) << "not ready";
    EXPECT_EQ(slow.get(std::chrono::seconds(60)), 1500);
}

TEST_F(ManagerPool, TwoClientsSharingOneIteratorEachGetItsShareAndTheEnd) {
    HangGuard guard(std::chrono::seconds(120), "one iterator, two readers");
    auto manager = mp::Manager();
    auto pool = manager.Pool(2);
    // The last item is slow, so that both readers wait for it when it comes: one takes it, and
    // the other must see the end, not wait on (or read past) a chunk that is gone.
    std::vector<int> items(60, 0);
    items.back() = 500;
    for (bool ordered : {true, false}) {
        auto it = ordered ? pool.imap(sleep_then, items) : pool.imap_unordered(sleep_then, items);
        // Two proxies to the one iterator, read by two threads (two channels, two server threads).
        mp::IMapIteratorProxy<int> other{mp::BaseProxy(it)};
        std::vector<int> got[2];
        std::string reader_error;
        std::thread reader([&] {
            try {
                while (auto r = other.next(std::chrono::seconds(20))) got[1].push_back(*r);
            } catch (const std::exception& e) {
                reader_error = e.what();
            }
        });
        while (auto r = it.next(std::chrono::seconds(20))) got[0].push_back(*r);
        reader.join();
        EXPECT_EQ(reader_error, "") << "the second reader did not see the end";
        std::vector<int> all = got[0];
        all.insert(all.end(), got[1].begin(), got[1].end());
        std::sort(all.begin(), all.end());
        EXPECT_EQ(all, items) << (ordered ? "imap" : "imap_unordered");
        EXPECT_EQ(it.next(std::chrono::seconds(5)), std::nullopt) << "the end stays the end";
    }
}

TEST_F(ManagerPool, ATaskFromAnotherProgramOrAForeignClientIsRefused) {
    HangGuard guard(std::chrono::seconds(60), "foreign tasks");
    auto manager = mp::Manager();
    auto pool = manager.Pool(1);
    const Object body = Object::tuple({Object(mp::Bytes(std::string(8, '\0')))});
    // A client whose files differ (another build): its code references mean other code here.
    try {
        pool._callmethod_for_proxy("apply_async", Object::tuple({0, body, Object::tuple(), 12345}));
        ADD_FAILURE() << "a foreign program's task was taken";
    } catch (const mp::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("another program, or another build"), std::string::npos) << e.what();
    }
    // What a Python client's call looks like after its function: not a polyproc task.
    EXPECT_THROW(pool._callmethod_for_proxy("apply_async", Object::tuple({"f", Object::tuple()})), mp::TypeError);
    EXPECT_THROW(pool._callmethod("apply", Object::tuple({1})), mp::TypeError);
    EXPECT_EQ(pool.apply(square, 3), 9) << "and the pool still serves";
}

TEST_F(ManagerPool, NothingIsLeftOnceTheProxiesAreGone) {
    HangGuard guard(std::chrono::seconds(120), "a manager's pool going away");
    auto manager = mp::Manager();
    const pid_t server = *manager.pid();
    const std::size_t before = 0;  // a fresh manager holds nothing
    {
        auto pool = manager.Pool(3);
        auto r = pool.apply_async(square, 5);
        auto it = pool.imap(square, std::vector<int>{1, 2});
        EXPECT_EQ(r.get(std::chrono::seconds(60)), 25);
        EXPECT_EQ(children_of(server), 3u) << "the pool's workers are the server's children";
        EXPECT_EQ(manager.number_of_objects(), before + 3);
    }
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == before; })) << manager.number_of_objects();
    EXPECT_TRUE(eventually([&] { return children_of(server) == 0; }, std::chrono::seconds(30)))
        << "the workers outlived their pool: " << children_of(server);
    // A pool made by a client that is then SIGKILLed goes with that client's session.
    auto [here, there] = mp::Pipe();
    mp::Process holder(make_pool_and_wait, std::get<std::string>(manager.address()), std::move(there));
    holder.start();
    EXPECT_EQ(here.recv<int>(), 4);
    EXPECT_EQ(children_of(server), 2u);
    holder.kill();
    holder.join();
    EXPECT_TRUE(eventually([&] { return children_of(server) == 0; }, std::chrono::seconds(30)))
        << "a dead client's pool kept its workers: " << children_of(server);
    EXPECT_TRUE(eventually([&] { return manager.number_of_objects() == before; })) << manager.number_of_objects();
}
