// A manager's Server: connections, server functions, refcounts and sessions (manager_server.hpp).
// The referents' methods are in manager_referents.cpp.
#include "manager_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fork_safety.hpp"
#include "os.hpp"

namespace polyproc::detail::manager {

namespace {

std::string_view as_view(const std::vector<std::byte>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

const Object& arg(const Request& r, std::size_t i, const char* function) {
    if (r.args.size() <= i)
        throw ProtocolError(std::string("TypeError: ") + function + "() takes more arguments than the " +
                            std::to_string(r.args.size()) + " given");
    return r.args[i];
}

std::string ident_arg(const Request& r, const char* function) {
    const Object& ident = arg(r, 0, function);
    if (ident.type() != Object::Type::str)
        throw ProtocolError(std::string("TypeError: ") + function + "() wants an object id (a str)");
    return ident.as_str();
}

}  // namespace

// What create() answers as a typeid's exposed methods: a Python client's AutoProxy (a Queue's, a
// registered type's) gets its methods from it; the fixed proxy types (DictProxy,
// AcquirerProxy...) ignore it.
Object exposed_methods(const std::string& type_id, const Registry& registry) {
    if (const auto it = registry.find(type_id); it != registry.end()) {
        std::vector<Object> names;
        for (const std::string& name : it->second->exposed()) names.emplace_back(name);
        return Object::tuple(std::move(names));
    }
    return native_exposed(type_id);
}

Server::Server(Listener listener, std::string authkey, Registry registry)
    : listener_(std::move(listener)),
      address_(listener_.address()),
      address_object_(address_object(address_)),
      authkey_(std::move(authkey)),
      registry_(std::move(registry)) {
    link_->server.store(this);
    if (const auto* inet = std::get_if<InetAddress>(&address_); inet && inet->host == "0.0.0.0") {
        // The names a client of a server on every interface may know it by.
        local_hosts_ = {"", "0.0.0.0", "localhost"};
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) == 0) local_hosts_.insert(name);
        for (auto& host : os::ipv4_addresses()) local_hosts_.insert(std::move(host));
    }
    auto [r, w] = os::pipe();
    wake_read_ = r.release();
    wake_write_ = w.release();
}

Server::~Server() {
    stop();
    reap_workers(true);
    link_->server.store(nullptr);  // no thread is left; the objects go now and release nothing
    objects_.clear();
    ::close(wake_read_);
    ::close(wake_write_);
}

void Server::stop() noexcept {
    if (stopping_.exchange(true)) return;
    const char byte = 1;
    [[maybe_unused]] const auto n = ::write(wake_write_, &byte, 1);
}

std::size_t Server::number_of_objects() const {
    std::lock_guard lock(table_mu_);
    return objects_.size();
}

std::size_t Server::connections() const {
    std::lock_guard lock(workers_mu_);
    return live_workers();
}

std::size_t Server::live_workers() const {
    std::size_t n = 0;
    for (const Worker& w : workers_) n += !w.done;
    return n;
}

void Server::serve_forever(int watch_fd) {
    while (!stopping_.load()) {
        pollfd fds[3] = {{listener_.fileno(), POLLIN, 0}, {wake_read_, POLLIN, 0}, {watch_fd, POLLIN, 0}};
        os::poll_until(std::span(fds, watch_fd >= 0 ? 3 : 2), Deadline(std::chrono::milliseconds(500)));
        if (fds[1].revents || (watch_fd >= 0 && fds[2].revents)) break;
        reap_workers(false);
        if (!(fds[0].revents & POLLIN)) continue;
        Connection conn;
        try {
            conn = listener_.accept();  // no authkey on the listener: the handshake runs in the connection's thread
            os::set_tcp_keepalive(conn.fileno(), kKeepAliveIdle, kKeepAliveInterval, kKeepAliveCount, kUserTimeout);
        } catch (const std::system_error&) {
            continue;  // the peer gave up (ECONNABORTED), or descriptors ran out: keep serving the others
        }
        std::lock_guard lock(workers_mu_);
        if (live_workers() >= kMaxConnections) continue;  // conn closes: too many at once
        Worker& w = workers_.emplace_back();
        w.fd = conn.fileno();
        w.handshake_deadline = std::chrono::steady_clock::now() + kHandshakeTimeout;
        try {
            w.thread = helper_thread([this, c = std::move(conn), self = &w]() mutable { handle(std::move(c), self); });
        } catch (const std::system_error&) {
            workers_.pop_back();  // no thread to be had: this one connection is refused
        }
    }
    stopping_.store(true);
    {
        std::vector<std::shared_ptr<Referent>> natives;  // released outside the table's lock
        {
            std::lock_guard lock(table_mu_);
            for (const auto& [ident, referent] : objects_)
                if (referent->native) natives.push_back(referent);
        }
        for (const auto& referent : natives) referent->native->server_stopping();
    }
    reap_workers(true);
}

// Joins the threads that are done. With `all`, first cuts every connection (shutdown(2) wakes a
// thread blocked on it) and waits for every thread. Also cuts the connections whose handshake is
// overdue.
void Server::reap_workers(bool all) {
    std::list<Worker> finished;
    {
        std::lock_guard lock(workers_mu_);
        const auto now = std::chrono::steady_clock::now();
        for (Worker& w : workers_) {
            if (w.fd >= 0 && (all || (!w.authenticated && now >= w.handshake_deadline))) ::shutdown(w.fd, SHUT_RDWR);
            if (all && w.mailbox) w.mailbox->interrupt();  // a thread asleep on it wakes now
        }
        for (auto it = workers_.begin(); it != workers_.end();) {
            if (all || it->done)
                finished.splice(finished.end(), workers_, it++);
            else
                ++it;
        }
    }
    for (Worker& w : finished)
        if (w.thread.joinable()) w.thread.join();
}

// The address a client reached this server at, as its tokens should carry it: for a server on
// every interface ('' or 0.0.0.0), the interface this connection came in on, which the client
// can reach again (CPython sends 0.0.0.0, which only works on the server's own host).
Object Server::reached_at(const Connection& conn) const {
    if (!std::holds_alternative<InetAddress>(address_)) return address_object_;
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (::getsockname(conn.fileno(), reinterpret_cast<sockaddr*>(&local), &len) != 0 || local.sin_family != AF_INET)
        return address_object_;
    char host[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &local.sin_addr, host, sizeof host);
    return Object::tuple({Object(std::string(host)), Object(static_cast<std::int64_t>(ntohs(local.sin_port)))});
}

void Server::handle(Connection conn, Worker* self) {
    const Object here = reached_at(conn);
    // The proxies this thread pickles carry their methods, registered types' included.
    set_exposed_lookup([this](const std::string& type_id) { return exposed_methods(type_id, registry_); });
    const auto hold = [this, &here](const Object& a) { return hold_proxy(a, here); };
    std::string session;
    bool channel = false, wants_mailbox = false;
    try {
        deliver_challenge(conn, authkey_);
        answer_challenge(conn, authkey_);
        {
            std::lock_guard lock(workers_mu_);
            self->authenticated = true;
        }
        const auto bytes = conn.recv_bytes(kMaxMessage);
        std::string reply;
        try {
            const Request request = decode_request(as_view(bytes), hold);
            if (request.encoding == Encoding::compact)  // there is no session yet
                throw ProtocolError("ProtocolError: the compact encoding is for polyproc's channels only");
            reply = server_function(request, conn, session, channel);
            // Shared memory needs a peer on this host, and a socket that can pass its descriptor.
            wants_mailbox =
                channel && request.kwds.get("mailbox").truthy() && std::holds_alternative<std::string>(address_);
        } catch (const ProtocolError& e) {
            reply = encode_traceback(e.what());
        } catch (const UnpicklingError& e) {
            reply = encode_traceback(std::string("UnpicklingError: ") + e.what());
        }
        if (!reply.empty()) conn.send_bytes(reply);
        if (channel) {
            // A polyproc client's channel takes its calls through shared memory (manager_mailbox.hpp).
            std::optional<Mailbox> mailbox;
            if (wants_mailbox) {
                auto [made, fd] = Mailbox::create();
                mailbox.emplace(std::move(made));
                conn.send_handle(fd.get());  // and closed: the mapping is all this end keeps
                set_mailbox(self, &*mailbox);
            }
            struct Unset {  // before the mailbox goes, however serve_channel ends
                Server* server;
                Worker* self;
                ~Unset() { server->set_mailbox(self, nullptr); }
            } unset{this, self};
            serve_channel(conn, mailbox ? &*mailbox : nullptr, session, next_channel_.fetch_add(1), here);
        }
    } catch (const std::exception&) {
        // A failed handshake, a peer gone, a cut connection: this connection ends, nothing else.
    }
    if (channel && !session.empty()) {
        std::vector<std::shared_ptr<Referent>> doomed;
        std::lock_guard lock(table_mu_);
        if (--sessions_[session].channels == 0) drop_session(session, doomed);
    }
    std::lock_guard lock(workers_mu_);
    self->fd = -1;  // before the descriptor closes, so that reap_workers never cuts a reused number
    conn.close();
    self->done = true;
}

void Server::set_mailbox(Worker* self, Mailbox* mailbox) {
    std::lock_guard lock(workers_mu_);
    self->mailbox = mailbox;
    if (mailbox && stopping_.load()) mailbox->interrupt();  // stop() came first
}

void Server::serve_channel(Connection& conn, Mailbox* mailbox, const std::string& session, std::uint64_t channel,
                           const Object& here) {
    const Caller caller{session, conn.fileno(), channel};
    const auto hold = [this, &here](const Object& a) { return hold_proxy(a, here); };
    const auto send = [&](const std::string& reply) {
        mailbox ? mailbox->send(Mailbox::Side::server, conn, reply) : conn.send_bytes(reply);
    };
    for (;;) {
        // EOFError when the client is done
        const auto bytes =
            mailbox ? mailbox->recv(Mailbox::Side::server, conn, kMaxMessage) : conn.recv_bytes(kMaxMessage);
        Request request;
        try {
            request = decode_request(as_view(bytes), hold);
        } catch (const ProtocolError& e) {
            // A whole message that says nothing sensible: CPython answers and goes on serving, and
            // so does a socket channel (its framing is intact); a mailbox's peer that wrote garbage
            // into shared memory is not served further.
            send(encode_traceback(e.what()));
            if (mailbox) return;
            continue;
        } catch (const UnpicklingError& e) {
            send(encode_traceback(std::string("UnpicklingError: ") + e.what()));
            if (mailbox) return;
            continue;
        }
        const Encoding encoding = request.encoding;  // the reply's
        // Only a polyproc client writes it (one with a session or a mailbox), so a Python peer,
        // which asked for neither, never gets a reply it cannot read.
        if (encoding == Encoding::compact && session.empty() && !mailbox) {
            send(encode_traceback("ProtocolError: the compact encoding is for polyproc's channels only"));
            return;
        }
        std::string reply;
        if (request.ident.is_none()) {
            if (request.method == "accept_connection") {
                send(encode_traceback("RuntimeError: accept_connection on a channel that is one already", encoding));
                return;
            }
            std::string own = session;
            bool again = false;
            try {
                reply = server_function(request, conn, own, again);
            } catch (const ProtocolError& e) {
                reply = encode_traceback(e.what(), encoding);
            }
            if (reply.empty()) return;  // shutdown answered it
        } else {
            const std::string& ident = request.ident.as_str();
            const auto referent = find(ident);
            if (!referent) {
                reply = encode_traceback("KeyError: " + repr(request.ident) + " (no such object in this manager)",
                                         encoding);
            } else {
                try {
                    if (referent->native) {
                        if (request.method == "__repr__" || request.method == "__str__") {
                            reply = encode_return(Object(referent->native->repr()), encoding);
                        } else if (const auto kept = referent->native->result_type_id(request.method); !kept.empty()) {
                            auto made = referent->native->call_for_referent(request.method, request.args, request.kwds,
                                                                            registry_);
                            const std::string type_id = made->type_id;
                            const std::string made_ident = add(std::move(made), session);
                            reply = encode_proxy_reply(exposed_methods(type_id, registry_), type_id, here, made_ident,
                                                       encoding);
                        } else
                            reply = encode_return(
                                referent->native->call(request.method, request.args, request.kwds, caller), encoding);
                    } else if (referent->type_id == "dict" && request.method == "__iter__") {
                        // Python's DictProxy method_to_typeid {'__iter__': 'Iterator'}
                        std::shared_ptr<Referent> made;
                        {
                            std::lock_guard lock(referent->mu);
                            made = make_dict_iterator(referent);
                        }
                        const std::string made_ident = add(std::move(made), session);
                        reply = encode_proxy_reply(exposed_methods("Iterator", registry_), "Iterator", here, made_ident,
                                                   encoding);
                    } else {
                        std::lock_guard lock(referent->mu);
                        reply = encode_return(call_referent(*referent, request.method, request.args, request.kwds),
                                              encoding);
                    }
                } catch (const PeerGone&) {
                    return;  // nobody to answer
                } catch (const UnknownName& e) {
                    reply = encode_traceback(e.what(), encoding);
                } catch (...) {
                    reply = encode_error(current_exception_as_raised(), encoding);
                }
            }
        }
        send(reply);
    }
}

// One server function; the reply to send, or "" when it was sent already.
std::string Server::server_function(const Request& r, Connection& conn, std::string& session, bool& channel) {
    const std::string& f = r.method;
    const Encoding e = r.encoding;
    if (f == "dummy") return encode_return(Object(), e);
    if (f == "accept_connection") {
        // polyproc's clients name their session; Python's do not, and get CPython's refcounting.
        const Object key = r.kwds.get("session");
        if (key.type() == Object::Type::str && !key.as_str().empty()) {
            session = key.as_str();
            std::lock_guard lock(table_mu_);
            ++sessions_[session].channels;
        }
        channel = true;
        return encode_return(Object(), e);
    }
    if (f == "create") {
        try {
            return encode_return(create(r.args, r.kwds, session), e);
        } catch (const UnknownName& error) {
            return encode_traceback(error.what(), e);
        } catch (...) {  // Raised, polyproc's errors, a user factory's: the constructor raised them
            const RaisedError raised = current_exception_as_raised();
            // CPython's server reports any error of a server function as '#TRACEBACK' (a Python
            // client raises RemoteError); polyproc's clients (a session) get the error itself.
            if (session.empty())
                return encode_traceback(
                    raised.name + (raised.args.size()
                                       ? ": " + str(raised.args.size() == 1 ? raised.args[0] : raised.args)
                                       : std::string()),
                    e);
            return encode_error(raised, e);
        }
    }
    if (f == "incref" || f == "decref") {
        const std::string ident = ident_arg(r, f.c_str());
        try {
            f == "incref" ? incref(ident, session) : decref(ident, session);
        } catch (const std::exception& error) {
            return encode_traceback(error.what(), e);
        }
        return encode_return(Object(), e);
    }
    if (f == "get_methods") {  // Python's AutoProxy asks for them when a pickled proxy did not say
        const auto state = r.args.size() == 1 ? token_state(r.args[0]) : std::nullopt;
        if (!state) return encode_traceback("TypeError: get_methods() wants a Token", e);
        const auto referent = find((*state)[2].as_str());
        if (!referent)
            return encode_traceback("KeyError: " + repr((*state)[2]) + " (no such object in this manager)", e);
        return encode_return(exposed_methods(referent->type_id, registry_), e);
    }
    if (f == "number_of_objects") return encode_return(static_cast<std::int64_t>(number_of_objects()), e);
    if (f == "debug_info") {
        std::lock_guard lock(table_mu_);
        std::string text;
        for (const auto& [ident, count] : refcounts_)
            text += "  " + ident + ": refcount=" + std::to_string(count) + "\n";
        return encode_return(Object(text), e);
    }
    if (f == "shutdown") {
        // CPython answers twice: once itself, once from the generic handler (wire.md §4.3). Both
        // go before the stop, which cuts every connection, this one included.
        conn.send_bytes(encode_return(Object()));
        conn.send_bytes(encode_return(Object()));
        stop();
        return {};
    }
    return encode_traceback("AssertionError: " + repr(Object(f)) + " unrecognized", e);
}

void Server::share(std::string type_id, std::string of_type_id, Object args) {
    std::lock_guard lock(shared_mu_);
    shared_[std::move(type_id)] = Shared{std::move(of_type_id), std::move(args), {}};
}

Object Server::create(const Object& args, const Object& kwds, const std::string& session) {
    if (args.size() == 0 || args[0].type() != Object::Type::str)
        throw ProtocolError("TypeError: create() wants a typeid (a str) first");
    const std::string type_id = args[0].as_str();
    if (std::unique_lock lock(shared_mu_); shared_.contains(type_id)) {
        if (args.size() != 1 || kwds.size() != 0)
            throw TypeError(type_id + "() takes no arguments: it gives the manager's one " +
                            shared_[type_id].of_type_id + " object");
        Shared& shared = shared_[type_id];
        if (shared.ident.empty() || !find(shared.ident)) {  // (a peer may have decref'd the server's own reference)
            std::vector<Object> made{Object(shared.of_type_id)};
            for (const Object& a : shared.args.items_view()) made.push_back(a);
            // Its first reference is the server's own, never released.
            shared.ident = make(Object::tuple(std::move(made)), Object::dict(), "")[0].as_str();
        }
        incref(shared.ident, session);
        return Object::tuple({Object(shared.ident), exposed_methods(shared.of_type_id, registry_)});
    }
    return make(args, kwds, session);
}

// create() of a typeid that is not shared.
Object Server::make(const Object& args, const Object& kwds, const std::string& session) {
    const std::string type_id = args[0].as_str();
    std::vector<Object> ctor_args(args.items_view().begin() + 1, args.items_view().end());
    auto referent = std::make_shared<Referent>();
    referent->type_id = type_id;
    const Object ctor = Object::tuple(std::move(ctor_args));
    if (const auto it = registry_.find(type_id); it != registry_.end()) {
        referent->native = make_registered_referent(*it->second, it->second->create(ctor, kwds));
    } else if (type_id == "Condition" && ctor.size() == 1 && is_proxy_object(ctor[0]) &&
               ctor[0].instance_args().size() == 3) {
        // Condition(lock): the lock must be an object of this server, which hold_proxy() holds (a
        // proxy to another manager's object reads as a bare instance, without an attachment).
        const Object& lock_ident = ctor[0].instance_args()[2];
        const bool ours = ctor[0].instance_attachment() != nullptr && lock_ident.type() == Object::Type::str;
        referent->native = make_condition_on(ours ? find(lock_ident.as_str()) : nullptr, ctor[0]);
    } else {
        referent->native = make_native_referent(type_id, ctor, kwds);
    }
    if (!referent->native) referent->value = make_referent_value(type_id, ctor, kwds);
    const std::string ident = add(std::move(referent), session);
    return Object::tuple({Object(ident), exposed_methods(type_id, registry_)});
}

// A new object in the table, with one reference (the session's, when there is one).
std::string Server::add(std::shared_ptr<Referent> referent, const std::string& session) {
    std::lock_guard lock(table_mu_);
    char ident[32];
    std::snprintf(ident, sizeof ident, "%llx", static_cast<unsigned long long>(next_id_++));
    objects_[ident] = std::move(referent);
    refcounts_[ident] = 1;
    if (!session.empty()) sessions_[session].refs[ident] += 1;
    return ident;
}

void Server::incref(const std::string& ident, const std::string& session) {
    std::lock_guard lock(table_mu_);
    if (!objects_.contains(ident)) throw KeyError(repr(Object(ident)));
    ++refcounts_[ident];
    if (!session.empty()) sessions_[session].refs[ident] += 1;
}

void Server::decref(const std::string& ident, const std::string& session) {
    std::shared_ptr<Referent> doomed;  // destroyed after the lock is released
    std::lock_guard lock(table_mu_);
    const auto it = refcounts_.find(ident);
    if (it == refcounts_.end() || it->second <= 0)
        throw ValueError("AssertionError: decref of " + ident + ", which has no references");
    if (!session.empty()) {
        auto& s = sessions_[session];
        if (auto held = s.refs.find(ident); held != s.refs.end() && --held->second == 0) s.refs.erase(held);
    }
    if (--it->second == 0) {
        refcounts_.erase(it);
        if (const auto object = objects_.find(ident); object != objects_.end()) {
            doomed = std::move(object->second);
            objects_.erase(object);
        }
    }
}

// The session's last channel closed: its process is gone (or done with this manager). Its
// locks and semaphore units go back first (table_mu_ held: session_ended never blocks on it).
void Server::drop_session(const std::string& session, std::vector<std::shared_ptr<Referent>>& doomed) {
    for (const auto& [ident, referent] : objects_)
        if (referent->native) referent->native->session_ended(session);
    const auto s = sessions_.find(session);
    if (s == sessions_.end()) return;
    for (const auto& [ident, count] : s->second.refs) {
        const auto it = refcounts_.find(ident);
        if (it == refcounts_.end()) continue;
        if ((it->second -= count) <= 0) {
            refcounts_.erase(it);
            if (const auto object = objects_.find(ident); object != objects_.end()) {
                doomed.push_back(std::move(object->second));
                objects_.erase(object);
            }
        }
    }
    sessions_.erase(s);
}

namespace {
// A reference the server holds for a proxy inside a value; the value's last copy releases it.
class HeldProxy : public ObjectAttachment {
public:
    explicit HeldProxy(std::function<void()> release) : release_(std::move(release)) {}
    ~HeldProxy() override { release_(); }

private:
    std::function<void()> release_;
};
}  // namespace

// Whether a proxy's address names this server: as its listener or the connection says it, or, for
// a server on every interface, this port on any name of this host (a client that connected to
// "localhost" stores proxies that say so, CPython's as well as polyproc's).
bool Server::is_own_address(const Object& address, const Object& here) const {
    if (address == address_object_ || address == here) return true;
    if (local_hosts_.empty() || address.type() != Object::Type::tuple || address.size() != 2 ||
        address[0].type() != Object::Type::str || address[1].type() != Object::Type::integer)
        return false;
    return address[1].as_int() == std::get<InetAddress>(address_).port && local_hosts_.contains(address[0].as_str());
}

Object Server::hold_proxy(const Object& args, const Object& here) {
    if (args.size() != 3 || args[0].type() != Object::Type::str || args[2].type() != Object::Type::str ||
        !is_own_address(args[1], here))
        return proxy_object(args);
    const std::string ident = args[2].as_str();
    try {
        incref(ident, "");
    } catch (const KeyError&) {
        return proxy_object(args);  // gone already: a proxy that fails when it is used
    }
    auto release = [link = link_, ident] {
        if (Server* server = link->server.load()) server->release_hold(ident);
    };
    return proxy_object(args, std::make_shared<HeldProxy>(std::move(release)));
}

// Releasing one reference may free a referent whose value holds more proxies, and so on down a
// chain of containers: those releases are queued and done here in a loop, not nested (a chain of
// 100 000 lists would overflow the thread's stack).
void Server::release_hold(const std::string& ident) noexcept {
    thread_local std::vector<std::string> queued;
    thread_local bool releasing = false;
    try {
        queued.push_back(ident);
        if (releasing) return;  // the loop below, further up this thread's stack, takes it
        releasing = true;
        while (!queued.empty()) {
            const std::string next = std::move(queued.back());
            queued.pop_back();
            try {
                decref(next, "");
            } catch (...) {  // nothing to release: the books already say so
            }
        }
        releasing = false;
    } catch (...) {  // out of memory queueing: that one reference stays (a leak, never a crash)
        releasing = false;
    }
}

std::shared_ptr<Referent> Server::find(const std::string& ident) const {
    std::lock_guard lock(table_mu_);
    const auto it = objects_.find(ident);
    return it == objects_.end() ? nullptr : it->second;
}

}  // namespace polyproc::detail::manager
