// The client side of managers: sessions, channels and references (manager_client.hpp), and the
// BaseProxy members.
#include "manager_client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <optional>
#include <mutex>
#include <new>
#include <ostream>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "fork_safety.hpp"
#include "manager_mailbox.hpp"
#include "manager_protocol.hpp"
#include "manager_server.hpp"
#include "names.hpp"
#include "os.hpp"
#include "polyproc/process.hpp"
#include "remote_exception.hpp"

namespace polyproc::detail::manager {

void raise_pool_failure(const Object& failure) {
    const std::string& kind = failure[0].as_str();
    const auto text = [&](std::size_t i) { return failure[i].as_bytes().str(); };
    const auto number = [&](std::size_t i) { return static_cast<int>(failure[i].as_int()); };
    if (kind == "lost") throw WorkerLostError(number(1), number(2), text(3));
    if (kind == "remote") throw RemoteError(text(1), text(2), number(3));
    // "raised": the worker's own description, made into the type this process knows it as
    const std::string_view bytes = failure[1].as_bytes().view();
    std::rethrow_exception(to_exception_ptr(
        decode_payload<RemoteException>(std::as_bytes(std::span(bytes.data(), bytes.size()))), number(2)));
}

namespace {

// Bumped in every fork child: what this process holds was counted for generation N, and a
// child's references must be taken anew.
std::atomic<std::uint64_t> g_generation{1};

// The descriptors of this process's manager connections (as fd + 1; 0 is a free slot). A fork
// child lets go of them at once by putting /dev/null in their place: a child that held its
// parent's session open would keep the parent's references alive after the parent died. The
// Connection objects keep their numbers, now /dev/null, and close them as usual.
constexpr int kTrackedFds = 256;
std::atomic<int> g_tracked[kTrackedFds];
int g_devnull = -1;

void track(const Connection& conn) {
    for (auto& slot : g_tracked) {
        int free = 0;
        if (slot.compare_exchange_strong(free, conn.fileno() + 1)) return;
    }  // all taken: this one connection is not let go of in fork children (at worst a late release)
}

// Untracked before it is closed: a fork in between leaves the child a descriptor to close at
// exit, never a reused number to overwrite.
void close_tracked(Connection& conn) {
    if (conn.closed()) return;
    const int fd = conn.fileno() + 1;
    for (auto& slot : g_tracked) {
        int expected = fd;
        if (slot.compare_exchange_strong(expected, 0)) break;
    }
    conn.close();
}

// This process's session with one manager: the connection that holds its references, and how
// many ProxyRefs of each object this process has.
struct Session {
    ~Session() { close_tracked(conn); }
    std::mutex mu;
    Connection conn;
    // A server without sessions (Python's): each server function goes on a connection of its
    // own, as CPython's proxies do, and conn stays closed.
    bool plain = false;
    std::unordered_map<std::string, std::int64_t> local;
};

struct Registry {
    std::mutex mu;
    std::uint64_t generation = 0;
    std::string key;  // this process's session key
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions;  // by address
};
Registry* g_registry = nullptr;

// In a fork child, first thing: the lock may have been held by another thread of the parent's.
// (Async-signal-safe: placement-new of a mutex and an atomic increment.)
void after_fork_in_child() noexcept {
    g_generation.fetch_add(1);
    if (g_registry) new (&g_registry->mu) std::mutex;
    for (auto& slot : g_tracked)
        if (const int fd = slot.load(); fd > 0 && g_devnull >= 0) ::dup3(g_devnull, fd - 1, O_CLOEXEC);
}

Registry& registry() {
    static Registry* r = [] {
        g_devnull = os::open("/dev/null", O_RDWR).release();
        keep(Kept::fd, g_devnull);  // for the life of the process (fork_safety.hpp)
        register_after_fork(&after_fork_in_child);
        g_registry = new Registry();  // never destroyed: proxies may be released during exit
        return g_registry;
    }();
    return *r;
}

[[noreturn]] void throw_gone(const Address& address, const std::exception& e) {
    throw ProcessError("the manager at " + describe(address) + " is gone (" + e.what() + ")");
}

std::string_view as_view(const std::vector<std::byte>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// One request and its reply by `transfer`; a connection that fails meanwhile is closed, and the
// manager is "gone".
template <class Transfer>
Reply exchange_by(Connection& conn, const Address& address, Transfer&& transfer) {
    try {
        return transfer();
    } catch (const EOFError& e) {
        close_tracked(conn);
        throw_gone(address, e);
    } catch (const std::system_error& e) {
        close_tracked(conn);
        throw_gone(address, e);
    }
}

Reply exchange(Connection& conn, const Address& address, const std::string& request) {
    return exchange_by(conn, address, [&] {
        conn.send_bytes(request);
        return decode_reply(as_view(conn.recv_bytes()));
    });
}

Object returned(const Reply& reply, const Address& address) {
    if (reply.kind != "#RETURN") raise_reply_error(reply, describe(address));
    return reply.value;
}

// A connection to the manager, authenticated; a manager that is not there is "gone".
Connection connect_to(const Address& address, const std::string& authkey) {
    try {
        Connection conn = Client(address, authkey);
        // A manager whose host vanished is "gone" after a bounded silence, as the server finds its
        // vanished clients (the same settings).
        os::set_tcp_keepalive(conn.fileno(), Server::kKeepAliveIdle, Server::kKeepAliveInterval,
                              Server::kKeepAliveCount, Server::kUserTimeout);
        return conn;
    } catch (const AuthenticationError&) {
        throw;
    } catch (const std::system_error& e) {
        throw_gone(address, e);
    } catch (const EOFError& e) {
        throw_gone(address, e);
    }
}

// The server refused a session: it is not polyproc's (Python's accept_connection takes a name
// only). A ProcessError, should it ever reach a caller (a server at a known address replaced by
// a Python one), that says so.
struct NoSessions : ProcessError {
    NoSessions() : ProcessError("the manager refused a session: it is not polyproc's (restarted as another server?)") {}
};

// A channel on the session `session_key` (none for a plain server); with a mailbox for
// `fast_path` (the server hands it over right after its reply).
Connection open_channel(const Address& address, const std::string& authkey, const std::string& name,
                        const std::string& session_key, std::optional<Mailbox>* fast_path = nullptr) {
    Connection conn = connect_to(address, authkey);
    track(conn);
    try {
        Object kwds = Object::dict();
        if (!session_key.empty()) kwds["session"] = session_key;
        const bool shared_memory = fast_path && !session_key.empty() && std::holds_alternative<std::string>(address);
        if (shared_memory) kwds["mailbox"] = true;
        const Reply reply =
            exchange(conn, address, encode_request(Object(), "accept_connection", Object::tuple({Object(name)}), kwds));
        if (reply.kind == "#TRACEBACK" && !session_key.empty()) throw NoSessions{};
        returned(reply, address);
        if (shared_memory) fast_path->emplace(Mailbox::attach(conn.recv_handle()));
    } catch (const EOFError& e) {
        close_tracked(conn);
        throw_gone(address, e);
    } catch (...) {
        close_tracked(conn);
        throw;
    }
    return conn;
}

// This process's session with the manager at `address`, opened on first use (and anew in a fork
// child).
std::shared_ptr<Session> session_for(const Address& address, const std::string& authkey) {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    const std::uint64_t generation = g_generation.load();
    if (r.generation != generation) {
        r.sessions.clear();  // a fork child: the parent's connections are not ours to use
        r.generation = generation;
        r.key = std::to_string(::getpid()) + "-" + os::random_hex(8);
    }
    auto& session = r.sessions[describe(address)];
    std::unordered_map<std::string, std::int64_t> carried;
    if (session) {
        // Another thread may be closing it, or counting in it, under its own lock.
        std::lock_guard old(session->mu);
        if (session->plain || !session->conn.closed()) return session;
        carried = std::move(session->local);
    }
    auto fresh = std::make_shared<Session>();
    try {
        fresh->conn = open_channel(address, authkey, this_process_name() + "|session", r.key);
    } catch (const NoSessions&) {
        fresh->plain = true;
    }
    fresh->local = std::move(carried);
    session = std::move(fresh);
    return session;
}

// A server function's request on the session (its lock held), or for a plain server on a
// connection of its own.
Reply on_session(Session& session, const Address& address, const std::string& authkey, const std::string& request) {
    if (!session.plain) return exchange(session.conn, address, request);
    Connection conn = connect_to(address, authkey);
    return exchange(conn, address, request);
}

// A thread's channel for method calls, per manager: its calls go through the mailbox (on a plain
// server's channel, through the socket).
struct Channel {
    Channel() = default;
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;
    ~Channel() { close_tracked(conn); }
    Connection conn;
    std::optional<Mailbox> mailbox;
    // polyproc's server (a session): requests in the compact encoding; a plain (Python) one: pickles.
    Encoding encoding = Encoding::pickle;

    Reply exchange(const Address& address, const std::string& request, const ProxyMaker& make_proxy) {
        return exchange_by(conn, address, [&] {
            if (!mailbox) {
                conn.send_bytes(request);
                return decode_reply(as_view(conn.recv_bytes()), make_proxy);
            }
            mailbox->send(Mailbox::Side::client, conn, request);
            const auto bytes = mailbox->recv(Mailbox::Side::client, conn, std::numeric_limits<std::size_t>::max());
            return decode_reply(as_view(bytes), make_proxy);
        });
    }
};
struct Channels {
    std::uint64_t generation = 0;
    std::unordered_map<std::string, Channel> by_address;
};
thread_local Channels t_channels;
// Calls of this thread under way: a proxy released meanwhile must not take their channel away.
thread_local int t_calls_under_way = 0;

// `where` is describe(address), which the caller has at hand (made once per ProxyRef, not per call).
Channel& channel_for(const Address& address, const std::string& where, const std::string& authkey) {
    const std::uint64_t generation = g_generation.load();
    if (t_channels.generation != generation) {
        t_channels.by_address.clear();
        t_channels.generation = generation;
    }
    Channel& channel = t_channels.by_address[where];
    if (channel.conn.closed()) {
        std::string key;
        {
            Registry& r = registry();
            // The session first: it makes the key of this generation (a plain server takes none).
            const bool plain = session_for(address, authkey)->plain;
            std::lock_guard lock(r.mu);
            if (!plain) key = r.key;
        }
        std::ostringstream name;
        name << this_process_name() << "|Thread-" << std::this_thread::get_id();
        channel.mailbox.reset();
        channel.conn = open_channel(address, authkey, name.str(), key, &channel.mailbox);
        channel.encoding = key.empty() ? Encoding::pickle : Encoding::compact;
    }
    return channel;
}

}  // namespace

std::string describe(const Address& address) { return to_string(address); }

void release_connections(const Address& address, bool server_gone) noexcept {
    try {
        const std::string where = describe(address);
        if (g_registry) {
            std::shared_ptr<Session> session;
            {
                std::lock_guard lock(g_registry->mu);
                if (g_registry->generation == g_generation.load())
                    if (auto it = g_registry->sessions.find(where); it != g_registry->sessions.end())
                        session = it->second;
            }
            if (session) {
                std::lock_guard lock(session->mu);
                if (!server_gone && !session->local.empty()) return;  // still in use here
                close_tracked(session->conn);  // its counts stay, for a session opened anew
            }
        }
        if (t_calls_under_way == 0 && t_channels.generation == g_generation.load()) t_channels.by_address.erase(where);
    } catch (...) {  // bad_alloc naming it: the connections stay until exit
    }
}

ProxyRef::ProxyRef(Address where, std::string key, std::string id, std::string type)
    : address(std::move(where)),
      address_text(describe(address)),
      authkey(std::move(key)),
      ident(std::move(id)),
      type_id(std::move(type)) {}

void ProxyRef::ensure_counted() const {
    const std::uint64_t generation = g_generation.load();
    if (std::atomic_ref(generation_).load() == generation) return;
    const auto session = session_for(address, authkey);
    std::lock_guard lock(session->mu);
    if (std::atomic_ref(generation_).load() == generation) return;
    if (session->local[ident]++ == 0) {
        try {
            returned(on_session(*session, address, authkey,
                                encode_request(Object(), "incref", Object::tuple({Object(ident)}))),
                     address);
        } catch (...) {
            if (--session->local[ident] == 0) session->local.erase(ident);
            throw;
        }
    }
    std::atomic_ref(generation_).store(generation);
}

ProxyRef::~ProxyRef() {
    if (std::atomic_ref(generation_).load() != g_generation.load()) return;  // never counted in this process
    try {
        const auto session = session_for(address, authkey);
        std::lock_guard lock(session->mu);
        const auto it = session->local.find(ident);
        if (it == session->local.end() || --it->second > 0) return;
        session->local.erase(it);
        on_session(*session, address, authkey, encode_request(Object(), "decref", Object::tuple({Object(ident)})));
    } catch (...) {
        // The manager is gone or shutting down: there is nothing left to release.
    }
}

std::shared_ptr<ProxyRef> adopt_created(const Address& address, const std::string& authkey, const std::string& ident,
                                        const std::string& type_id) {
    auto ref = std::make_shared<ProxyRef>(address, authkey, ident, type_id);
    const auto session = session_for(address, authkey);
    std::lock_guard lock(session->mu);
    if (session->local[ident]++ > 0) {
        // Already held here: the new server reference is one too many.
        on_session(*session, address, authkey, encode_request(Object(), "decref", Object::tuple({Object(ident)})));
    }
    std::atomic_ref(ref->generation_).store(g_generation.load());
    return ref;
}

std::shared_ptr<ProxyRef> adopt(const Address& address, const std::string& authkey, const std::string& ident,
                                const std::string& type_id) {
    auto ref = std::make_shared<ProxyRef>(address, authkey, ident, type_id);
    ref->ensure_counted();
    return ref;
}

Object call_server_function(const Address& address, const std::string& authkey, const std::string& function,
                            const Object& args, const Object& kwds) {
    const auto session = session_for(address, authkey);
    std::lock_guard lock(session->mu);
    return returned(on_session(*session, address, authkey, encode_request(Object(), function, args, kwds)), address);
}

Object one_shot(const Address& address, const std::string& authkey, const std::string& function) {
    Connection conn = connect_to(address, authkey);
    return returned(exchange(conn, address, encode_request(Object(), function)), address);
}

namespace {

// What a proxy Object carries in this process: the reference of the proxy it was made from, or,
// read from a reply, the key of the manager that sent it (a proxy made from it connects with it).
struct ProxyHold : ObjectAttachment {
    explicit ProxyHold(std::shared_ptr<ProxyRef> r) : ref(std::move(r)) {}
    std::shared_ptr<ProxyRef> ref;
};
struct ProxyKey : ObjectAttachment {
    explicit ProxyKey(std::string key) : authkey(std::move(key)) {}
    std::string authkey;
};

Reply call(const ProxyRef& ref, const std::string& method, const Object& args, const Object& kwds) {
    ref.ensure_counted();
    struct UnderWay {
        UnderWay() { ++t_calls_under_way; }
        ~UnderWay() { --t_calls_under_way; }
    } under_way;
    Channel& channel = channel_for(ref.address, ref.address_text, ref.authkey);
    return channel.exchange(
        ref.address, encode_request(Object(ref.ident), method, args, kwds, channel.encoding),
        [&ref](const Object& proxy_args) { return proxy_object(proxy_args, std::make_shared<ProxyKey>(ref.authkey)); });
}
// The object a '#PROXY' reply names, counted on this process's session (the channel's).
std::shared_ptr<ProxyRef> adopt_token(const ProxyRef& ref, const Reply& reply) {
    return adopt_created(ref.address, ref.authkey, reply.token->ident, reply.token->type_id);
}
}  // namespace

Object call_method(const ProxyRef& ref, const std::string& method, const Object& args, const Object& kwds) {
    const Reply reply = call(ref, method, args, kwds);
    if (reply.kind == "#PROXY") {
        adopt_token(ref, reply);  // and let go of it at once
        throw TypeError("the manager's " + ref.type_id + "." + method +
                        "() returns a proxy (its result stays in the server): call it with _callmethod_for_proxy");
    }
    return returned(reply, ref.address);
}

std::shared_ptr<ProxyRef> call_method_for_proxy(const ProxyRef& ref, const std::string& method, const Object& args,
                                                const Object& kwds) {
    const Reply reply = call(ref, method, args, kwds);
    if (reply.kind == "#PROXY") return adopt_token(ref, reply);
    returned(reply, ref.address);  // an error raises here
    throw TypeError("the manager's " + ref.type_id + "." + method + "() returned a value, not a proxy");
}

std::optional<Object> call_next(const ProxyRef& ref) {
    const Reply reply = call(ref, "__next__", Object::tuple(), Object::dict());
    if (reply.error && reply.error->module == "builtins" && reply.error->name == "StopIteration") return std::nullopt;
    return returned(reply, ref.address);
}

Object proxy_to_object(const BaseProxy& proxy) {
    if (!proxy.ref_) throw ValueError("this proxy refers to nothing (default-constructed or moved from)");
    const ProxyRef& ref = *proxy.ref_;
    return proxy_object(Object::tuple({Object(ref.type_id), address_object(ref.address), Object(ref.ident)}),
                        std::make_shared<ProxyHold>(proxy.ref_));
}

BaseProxy proxy_from_object(const Object& object) {
    if (!is_proxy_object(object)) detail::throw_object_type_error(object, "a manager proxy");
    if (const auto* hold = dynamic_cast<const ProxyHold*>(object.instance_attachment().get()))
        return BaseProxy(hold->ref);
    const Object& a = object.instance_args();
    const bool well_formed = a.size() == 3 && a[0].type() == Object::Type::str && a[2].type() == Object::Type::str &&
                             (a[1].type() == Object::Type::str ||
                              (a[1].type() == Object::Type::tuple && a[1].size() == 2 &&
                               a[1][0].type() == Object::Type::str && a[1][1].type() == Object::Type::integer));
    if (!well_formed) throw TypeError("a manager proxy must be (typeid, address, id), not " + repr(a).substr(0, 80));
    const Address address = a[1].type() == Object::Type::str
                                ? Address(a[1].as_str())
                                : Address(InetAddress{a[1][0].as_str(), static_cast<std::uint16_t>(a[1][1].as_int())});
    const auto* key = dynamic_cast<const ProxyKey*>(object.instance_attachment().get());
    return BaseProxy(adopt(address, key ? key->authkey : current_process().authkey(), a[2].as_str(), a[0].as_str()));
}

const std::string& ref_ident(const ProxyRef& ref) { return ref.ident; }
const std::string& ref_type_id(const ProxyRef& ref) { return ref.type_id; }
const Address& ref_address(const ProxyRef& ref) { return ref.address; }
const std::string& ref_authkey(const ProxyRef& ref) { return ref.authkey; }

}  // namespace polyproc::detail::manager

namespace polyproc {

namespace {
const detail::manager::ProxyRef& checked(const std::shared_ptr<detail::manager::ProxyRef>& ref) {
    if (!ref) throw ValueError("this proxy refers to nothing (default-constructed or moved from)");
    return *ref;
}
}  // namespace

const std::string& BaseProxy::ident() const { return checked(ref_).ident; }
const std::string& BaseProxy::type_id() const { return checked(ref_).type_id; }
const Address& BaseProxy::address() const { return checked(ref_).address; }

Object BaseProxy::_callmethod(const std::string& method, const Object& args, const Object& kwds) const {
    return detail::manager::call_method(checked(ref_), method, args, kwds);
}

BaseProxy BaseProxy::_callmethod_for_proxy(const std::string& method, const Object& args, const Object& kwds) const {
    return BaseProxy(detail::manager::call_method_for_proxy(checked(ref_), method, args, kwds));
}

std::ostream& operator<<(std::ostream& out, const BaseProxy& proxy) {
    return out << proxy._callmethod("__str__").as_str();
}

std::tuple<int, std::string, std::uint16_t> BaseProxy::address_parts() const {
    const Address& a = address();
    if (const auto* path = std::get_if<std::string>(&a)) return {0, *path, 0};
    const auto& inet = std::get<InetAddress>(a);
    return {1, inet.host, inet.port};
}

std::string BaseProxy::authkey_to_send() const {
    const std::string& key = checked(ref_).authkey;
    return key == current_process().authkey() ? std::string() : key;
}

void BaseProxy::adopt_from(int kind, const std::string& where, std::uint16_t port, const std::string& ident,
                           const std::string& type_id, const std::string& authkey) {
    Address address = kind == 0 ? Address(where) : Address(InetAddress{where, port});
    ref_ = detail::manager::adopt(address, authkey.empty() ? current_process().authkey() : authkey, ident, type_id);
}

}  // namespace polyproc
