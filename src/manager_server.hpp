// A manager's Server (CPython's managers.Server): it holds the shared objects and serves every
// connection in a thread of its own, so that one client's call never waits for another's.
//
// Connections are CPython's (wire.md §4): after the authkey handshake, a first request calls a
// server function (create, incref, decref, dummy, number_of_objects, debug_info, shutdown); the
// function accept_connection turns the connection into a channel of method calls on objects.
//
// polyproc's extension, sessions: a polyproc client process names a session (a key of its own)
// when it opens its channels, and keeps its references on them. When every channel of a session
// has closed (the process exited, or was SIGKILLed), the session's references are dropped, so a
// dead client leaks nothing. Peers without a session (Python) get CPython's refcounting.
//
// Hostile peers: a connection has 10 s to finish the handshake (a silent one is cut off while
// everyone else is served), messages are bounded, a malformed request gets a '#TRACEBACK' and its
// connection is closed, and at most kMaxConnections are served at once.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "manager_mailbox.hpp"
#include "manager_protocol.hpp"
#include "polyproc/connection.hpp"
#include "polyproc/detail/manager_register.hpp"
#include "polyproc/object.hpp"

namespace polyproc::detail::manager {

// Who is calling a method: the session (empty for a peer without one, such as Python) and the
// channel's descriptor, which a blocking method watches so that a client that goes away while
// it waits does not leave a server thread waiting forever.
struct Caller {
    std::string session;
    int fd = -1;
    std::uint64_t channel = 0;  // unique per connection: an RLock's owner
};

struct Referent;

// The user types this server can make (BaseManager::register_), by typeid.
using Registry = std::unordered_map<std::string, const RegisteredType*>;

// The server's synchronization objects and queues (manager_sync.cpp): state that is no
// mp::Object, methods that block. They lock themselves; the server calls them without the
// referent's mutex, so that a release can reach a lock while an acquire waits on it.
class NativeReferent {
public:
    virtual ~NativeReferent() = default;
    virtual Object call(const std::string& method, const Object& args, const Object& kwds, const Caller& caller) = 0;
    virtual std::string repr() const = 0;
    // Every connection of `session` has closed: give back what it held (the next acquirer is
    // told, with OwnerDiedError).
    virtual void session_ended(const std::string& session) { (void)session; }
    // The server stops: end what a connection thread could be waiting on that only this object
    // can end (a Pool's full task queue), before those threads are joined.
    virtual void server_stopping() noexcept {}
    // Python's method_to_typeid: the typeid `method`'s result stays in the server as, or "" when
    // the method returns its value.
    virtual std::string_view result_type_id(const std::string& method) const {
        (void)method;
        return {};
    }
    // Runs such a method: the new object, made as `registry` says its typeid is.
    virtual std::shared_ptr<Referent> call_for_referent(const std::string& method, const Object& args,
                                                        const Object& kwds, const Registry& registry) {
        (void)args, (void)kwds, (void)registry;
        throw std::logic_error(method + " keeps no result in the server");
    }
};

// The client of a blocking method went away while it waited.
struct PeerGone : std::runtime_error {
    PeerGone() : std::runtime_error("the client went away") {}
};

// One object the server holds.
struct Referent {
    std::string type_id;  // "dict", "list", "Namespace", "Lock", "Queue", ...
    std::mutex mu;        // one method at a time (Object referents)
    Object value;
    std::unique_ptr<NativeReferent> native;
    // An Iterator over a dict's keys (Python's dict.__iter__) watches the dict: a step after its
    // size changed is RuntimeError, as in Python.
    std::shared_ptr<Referent> over;
    std::size_t over_size = 0;
};

class Server {
public:
    static constexpr std::size_t kMaxConnections = 1024;
    static constexpr std::size_t kMaxMessage = std::size_t{256} << 20;
    static constexpr std::chrono::seconds kHandshakeTimeout{10};
    // A TCP client whose host vanished is found dead about 20 s after it fell silent (keepalive
    // probes from 5 s, given up at 20 s; os::set_tcp_keepalive), and its connection ends as if it
    // had closed. Not shorter: a client that merely stalls that long would lose its session, and
    // with it the locks it holds.
    static constexpr int kKeepAliveIdle = 5, kKeepAliveInterval = 2, kKeepAliveCount = 8, kUserTimeout = 20;

    Server(Listener listener, std::string authkey, Registry registry = {});
    ~Server();  // stops, closes every connection and joins every thread
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    const Address& address() const { return address_; }

    // Accepts and serves until a client calls shutdown, stop() is called, or `watch_fd` (when
    // given: a pidfd of the process that started the manager) becomes readable. Then closes
    // every connection and joins every thread before returning.
    void serve_forever(int watch_fd = -1);
    void stop() noexcept;  // from any thread

    std::size_t number_of_objects() const;
    std::size_t connections() const;  // open now

    // Python's register(type_id, callable=lambda: obj): every create(type_id) gives a reference to
    // one object of `of_type_id` made with `args` on first use, which the server keeps for as long
    // as it runs. Before serve_forever().
    void share(std::string type_id, std::string of_type_id, Object args);

    // A proxy to one of this server's objects, read inside a request: an instance Object that
    // holds a reference to the object for as long as any copy of it exists (in a container the
    // server holds, or in flight). A proxy to another manager's object, or to one that is gone,
    // reads as a bare instance.
    // `here`: the address the reading connection reached the server at (reached_at), which its
    // proxies may carry instead of the listener's.
    Object hold_proxy(const Object& args, const Object& here);

private:
    struct Session {
        std::unordered_map<std::string, std::int64_t> refs;  // ident -> references it holds
        int channels = 0;
    };
    struct Worker {
        std::thread thread;
        int fd = -1;  // for shutdown(2) when the server stops or the handshake times out
        std::chrono::steady_clock::time_point handshake_deadline;
        bool authenticated = false;
        bool done = false;
        Mailbox* mailbox = nullptr;  // while its channel uses one: interrupted when the server stops
    };

    void handle(Connection conn, Worker* self);
    void set_mailbox(Worker* self, Mailbox* mailbox);
    void serve_channel(Connection& conn, Mailbox* mailbox, const std::string& session, std::uint64_t channel,
                       const Object& here);
    Object reached_at(const Connection& conn) const;
    bool is_own_address(const Object& address, const Object& here) const;
    std::string server_function(const Request& request, Connection& conn, std::string& session, bool& channel);
    Object create(const Object& args, const Object& kwds, const std::string& session);
    Object make(const Object& args, const Object& kwds, const std::string& session);
    std::string add(std::shared_ptr<Referent> referent, const std::string& session);  // its ident
    void incref(const std::string& ident, const std::string& session);
    void decref(const std::string& ident, const std::string& session);
    void drop_session(const std::string& session, std::vector<std::shared_ptr<Referent>>& doomed);
    void release_hold(const std::string& ident) noexcept;  // a held proxy's last copy went
    std::shared_ptr<Referent> find(const std::string& ident) const;
    void reap_workers(bool all);
    std::size_t live_workers() const;  // workers_mu_ held

    Listener listener_;
    Address address_;
    const Object address_object_;  // as a Token and a polyproc.Proxy carry it
    std::unordered_set<std::string> local_hosts_;  // for a server on every interface: this host's names
    std::string authkey_;
    const Registry registry_;
    int wake_read_ = -1, wake_write_ = -1;  // a pipe that stop() writes to
    std::atomic<bool> stopping_{false};

    // What a held proxy reaches its server through; cleared when the server goes, so that the
    // objects it destroys last release nothing into it.
    struct HoldLink {
        std::atomic<Server*> server{nullptr};
    };
    std::shared_ptr<HoldLink> link_ = std::make_shared<HoldLink>();

    // table_mu_ guards objects_, refcounts_, sessions_, next_id_. No Referent is destroyed while
    // it is held: a referent's value may hold proxies, whose release takes it again. Erased
    // referents are moved out ("doomed") and dropped after it is released.
    mutable std::mutex table_mu_;
    std::unordered_map<std::string, std::shared_ptr<Referent>> objects_;
    std::unordered_map<std::string, std::int64_t> refcounts_;
    std::unordered_map<std::string, Session> sessions_;
    std::uint64_t next_id_ = 1;
    struct Shared {
        std::string of_type_id;
        Object args;
        std::string ident;  // once made
    };
    std::mutex shared_mu_;  // made once, by the first create
    std::unordered_map<std::string, Shared> shared_;
    std::atomic<std::uint64_t> next_channel_{1};

    mutable std::mutex workers_mu_;
    std::list<Worker> workers_;
};

// The referents: their constructors (create's typeid) and their methods. Errors are thrown as a
// method would raise them (Raised, or polyproc's exception types); an unknown typeid or method
// is an UnknownName, which the server reports in a '#TRACEBACK' as CPython does.
struct UnknownName : std::runtime_error {
    using std::runtime_error::runtime_error;
};
Object make_referent_value(const std::string& type_id, const Object& args, const Object& kwds);
Object call_referent(Referent& referent, const std::string& method, const Object& args, const Object& kwds);
// iter(d) on a dict referent (its mutex held): an Iterator over its keys that watches it.
std::shared_ptr<Referent> make_dict_iterator(const std::shared_ptr<Referent>& dict);
// A native referent for type_id, or null when the typeid is not one of them.
std::unique_ptr<NativeReferent> make_native_referent(const std::string& type_id, const Object& args,
                                                     const Object& kwds);
// Condition(lock) on a manager's Lock or RLock (`held`: the proxy instance that keeps the server's
// reference to it); mp::TypeError for another referent.
std::unique_ptr<NativeReferent> make_condition_on(std::shared_ptr<Referent> lock, Object held);
// SyncManager's Pool (manager_pool.cpp): Pool(processes=None, initializer=None, initargs=(),
// maxtasksperchild=None), its workers children of the server.
std::unique_ptr<NativeReferent> make_pool_referent(const Object& args, const Object& kwds);
// The referent of a registered type around `object`, made by its factory or returned by a method
// (manager_registered.cpp).
std::unique_ptr<NativeReferent> make_registered_referent(const RegisteredType& type, std::shared_ptr<void> object);
// The typeid's exposed methods, as create() and a '#PROXY' reply name them.
Object exposed_methods(const std::string& type_id, const Registry& registry);

}  // namespace polyproc::detail::manager
