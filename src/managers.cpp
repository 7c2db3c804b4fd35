// BaseManager and SyncManager (managers.hpp): starting the server process, connecting to a
// server, shutting it down, and creating objects in it.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "manager_client.hpp"
#include "manager_protocol.hpp"
#include "manager_server.hpp"
#include "os.hpp"
#include "polyproc/detail/code_ref.hpp"
#include "polyproc/managers.hpp"
#include "polyproc/process.hpp"

namespace polyproc {

namespace detail::manager {

enum class State { initial, started, connected, shut_down };
using SharedRegistration = std::tuple<std::string, std::string, Object>;

void share_all(Server& server, const std::vector<SharedRegistration>& shared) {
    for (const auto& [type_id, of_type_id, args] : shared) server.share(type_id, of_type_id, args);
}

struct ManagerState {
    std::optional<Address> address;
    std::string authkey;
    State state = State::initial;
    std::optional<Process> server;  // when start() made it
    pid_t owner = ::getpid();       // only this process shuts the server down (not a fork child that exits)
    bool generated_address = false;  // a path the server made: removed here if the server cannot
    // register_()ed types: typeid and the code reference of its registered_type<Reg> (a spawned
    // server finds the function again from it).
    std::vector<std::pair<std::string, std::uint64_t>> registrations;
    // register_shared(): typeid, the typeid of the one object it gives, that object's arguments.
    std::vector<SharedRegistration> shared;
};

namespace {

// The server made its socket in a fresh directory of its own; when it was killed, nobody removed
// them. (What Listener's destructor does in a server that exits normally.)
void remove_generated_socket(const std::string& path) {
    if (::unlink(path.c_str()) == 0 || errno != ENOENT) {
        const auto slash = path.rfind('/');
        if (slash != std::string::npos) ::rmdir(path.substr(0, slash).c_str());
    }
}

}  // namespace

namespace {

std::atomic<int> g_manager_count{0};

// The server this process runs, for SIGTERM: BaseManager::shutdown() stops its server with it
// (no connection and handshake to pay for), and the server ends as after a 'shutdown' request,
// its socket removed. Server::stop() is async-signal-safe (an atomic flag and a write(2)).
Server* g_serving = nullptr;
extern "C" void stop_serving(int) {
    if (g_serving) g_serving->stop();
}

// register_()ed types as the server takes them: code references resolved in this process.
Registry resolve(const std::vector<std::pair<std::string, std::uint64_t>>& registrations) {
    Registry registry;
    for (const auto& [type_id, getter] : registrations)
        registry[type_id] = reinterpret_cast<RegisteredTypeGetter>(code_address(getter))();
    return registry;
}

// What start() and get_server() say, as Python's, when the manager is past its initial state.
void require_initial(State state) {
    if (state == State::started || state == State::connected) throw ProcessError("Already started server");
    if (state == State::shut_down) throw ProcessError("Manager has shut down");
}

// A manager's address as a Process argument and back: (0, path, 0) or (1, host, port); an empty
// path is a fresh one.
using AddressParts = std::tuple<int, std::string, int>;
AddressParts address_parts(const std::optional<Address>& address) {
    if (!address) return {0, std::string(), 0};
    if (const auto* path = std::get_if<std::string>(&*address)) return {0, *path, 0};
    const auto& inet = std::get<InetAddress>(*address);
    return {1, inet.host, inet.port};
}
std::optional<Address> address_from_parts(const AddressParts& parts) {
    const auto& [kind, where, port] = parts;
    if (kind == 1) return Address(InetAddress{where, static_cast<std::uint16_t>(port)});
    if (where.empty()) return std::nullopt;
    return Address(where);
}

// A server that listens on TCP may be reached from other hosts: it must have a key.
void require_authkey_for(const std::optional<Address>& address, const std::string& authkey) {
    if (address && std::holds_alternative<InetAddress>(*address) && authkey.empty())
        throw ValueError("a manager listening on TCP " + to_string(*address) +
                         " needs a non-empty authkey: anyone who can reach the port could run its methods");
}

// The server process's body (CPython's BaseManager._run_server): bind, say where, serve until
// told to stop (a 'shutdown' request or SIGTERM) or until the process that started the manager
// is gone.
void run_server(Connection& writer, const std::string& authkey, const AddressParts& where, int creator_pid,
                const std::vector<std::pair<std::string, std::uint64_t>>& registrations,
                const std::vector<SharedRegistration>& shared) {
    ::signal(SIGINT, SIG_IGN);  // Ctrl-C is for the program; its manager stops when it does
    // Started daemonic (the program's exit terminates it), yet CPython's server is no daemon and
    // may start children: a Pool's workers. It still dies with its starter (the pidfd below).
    current_process().set_daemon(false);
    FileDescriptor creator;
    try {
        creator = os::pidfd_open(creator_pid);
    } catch (const std::system_error&) {
        return;  // already gone: nobody to serve
    }
    std::optional<Server> bound;
    try {
        bound.emplace(Listener(address_from_parts(where), 128), authkey, resolve(registrations));
    } catch (const std::system_error& e) {  // the starter raises it: EADDRINUSE, a host that is not ours...
        writer.send(AddressParts{-1, e.what(), e.code().value()});
        return;
    } catch (const std::exception& e) {
        writer.send(AddressParts{-2, e.what(), 0});
        return;
    }
    Server& server = *bound;
    share_all(server, shared);
    g_serving = &server;
    struct sigaction on_term {};
    on_term.sa_handler = stop_serving;
    ::sigaction(SIGTERM, &on_term, nullptr);
    writer.send(address_parts(server.address()));
    writer.close();
    server.serve_forever(creator.get());
    ::signal(SIGTERM, SIG_IGN);  // a late SIGTERM must not reach a Server that is going away
    g_serving = nullptr;
}

}  // namespace

}  // namespace detail::manager

using detail::manager::State;

BaseManager::BaseManager(std::optional<Address> address, std::optional<std::string> authkey)
    : state_(std::make_unique<detail::manager::ManagerState>()) {
    state_->address = std::move(address);
    state_->authkey = authkey ? std::move(*authkey) : current_process().authkey();
}

BaseManager::BaseManager(BaseManager&&) noexcept = default;
namespace {
// A manager object going away: the server it started stops, and a connected client lets go of its
// connections unless its proxies still use them.
void end_of_manager(BaseManager& manager, detail::manager::ManagerState& state) noexcept {
    manager.shutdown();
    if (state.state == State::connected && state.address) detail::manager::release_connections(*state.address, false);
}
}  // namespace

BaseManager& BaseManager::operator=(BaseManager&& other) noexcept {
    if (this != &other) {
        if (state_) end_of_manager(*this, *state_);
        state_ = std::move(other.state_);
    }
    return *this;
}

BaseManager::~BaseManager() {
    if (state_) end_of_manager(*this, *state_);
}

void BaseManager::start() {
    detail::manager::require_initial(state_->state);
    detail::manager::require_authkey_for(state_->address, state_->authkey);
    auto [reader, writer] = Pipe(false);
    Process server(&detail::manager::run_server, std::move(writer), state_->authkey,
                   detail::manager::address_parts(state_->address), static_cast<int>(::getpid()), state_->registrations,
                   state_->shared);
    server.set_daemon(true);  // never outlives the program, even when it forgets shutdown()
    server.set_name("SyncManager-" + std::to_string(++detail::manager::g_manager_count));
    server.start();
    // The server says where it listens; if it dies first, say so instead of waiting forever.
    try {
        while (!reader.poll(std::chrono::milliseconds(100))) {
            if (!server.is_alive()) {
                server.join();
                throw ProcessError("the manager's server process exited before it started serving (exit code " +
                                   std::to_string(server.exitcode().value_or(0)) + ")");
            }
        }
        const auto parts = reader.recv<detail::manager::AddressParts>();
        if (std::get<0>(parts) == -1)  // it could not listen there
            throw std::system_error(std::get<2>(parts), std::generic_category(), std::get<1>(parts));
        if (std::get<0>(parts) < 0) throw ProcessError("the manager's server could not start: " + std::get<1>(parts));
        state_->generated_address = !state_->address;
        state_->address = detail::manager::address_from_parts(parts);
    } catch (...) {
        if (server.is_alive()) server.kill();
        server.join();
        throw;
    }
    state_->server.emplace(std::move(server));
    state_->state = State::started;
}

Server::Server(std::unique_ptr<detail::manager::Server> server) : server_(std::move(server)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&&) noexcept = default;
Server::~Server() = default;
void Server::serve_forever() {
    if (!server_) throw ValueError("this Server was moved from");
    server_->serve_forever();
}
void Server::stop() noexcept {
    if (server_) server_->stop();
}
const Address& Server::address() const {
    if (!server_) throw ValueError("this Server was moved from");
    return server_->address();
}

Server BaseManager::get_server() {
    detail::manager::require_initial(state_->state);
    detail::manager::require_authkey_for(state_->address, state_->authkey);
    auto server = std::make_unique<detail::manager::Server>(Listener(state_->address, 128), state_->authkey,
                                                            detail::manager::resolve(state_->registrations));
    detail::manager::share_all(*server, state_->shared);
    state_->address = server->address();
    return Server(std::move(server));
}

void BaseManager::register_type(std::string type_id, std::uintptr_t getter) {
    if (state_->state != State::initial)
        throw ProcessError("register_() after start(): the server has its types already");
    const std::uint64_t ref = detail::code_offset(getter);
    for (auto& [id, known] : state_->registrations)
        if (id == type_id) {  // registered again: replaced, as in Python
            known = ref;
            return;
        }
    state_->registrations.emplace_back(std::move(type_id), ref);
}

void BaseManager::register_shared(std::string type_id, std::string of_type_id, Object args) {
    if (state_->state != State::initial)
        throw ProcessError("register_shared() after start(): the server has its types already");
    if (args.type() != Object::Type::tuple) throw TypeError("register_shared(): args must be a tuple");
    std::erase_if(state_->shared, [&](const auto& s) { return std::get<0>(s) == type_id; });  // replaced
    state_->shared.emplace_back(std::move(type_id), std::move(of_type_id), std::move(args));
}

void BaseManager::connect() {
    if (!state_->address) throw ValueError("connect() needs the address of a running manager");
    detail::manager::one_shot(*state_->address, state_->authkey, "dummy");
    state_->state = State::connected;
}

void BaseManager::shutdown() {
    if (!state_ || state_->state != State::started || state_->owner != ::getpid()) return;
    state_->state = State::shut_down;
    // Python sends a 'shutdown' request; the server that this manager started also stops on
    // SIGTERM, the same way, which saves a connection and its handshake. One that does not stop
    // within a second is killed.
    Process& server = *state_->server;
    if (server.is_alive()) {
        server.terminate();
        server.join(std::chrono::seconds(1));
        if (server.is_alive()) {
            server.kill();
            server.join();
        }
    }
    server.join();
    detail::manager::release_connections(*state_->address, true);
    if (state_->generated_address) detail::manager::remove_generated_socket(std::get<std::string>(*state_->address));
}

void BaseManager::join(Timeout timeout) {
    if (!state_->server) throw ValueError("join() on a manager whose server this process did not start");
    state_->server->join(timeout);
}

const Address& BaseManager::address() const {
    if (!state_->address) throw ValueError("the manager has no address until start()");
    return *state_->address;
}

std::optional<int> BaseManager::pid() const {
    if (!state_->server) return std::nullopt;
    return state_->server->pid();
}

BaseProxy BaseManager::create(const std::string& type_id, const Object& args, const Object& kwds) {
    if (state_->state != State::started && state_->state != State::connected)
        throw ValueError(state_->state == State::shut_down ? "Manager has shut down" : "server not yet started");
    std::vector<Object> call{Object(type_id)};
    for (const Object& a : args.items_view()) call.push_back(a);
    const Object created =
        detail::manager::call_server_function(*state_->address, state_->authkey, "create", Object::tuple(call), kwds);
    return BaseProxy(detail::manager::adopt_created(*state_->address, state_->authkey, created[0].as_str(), type_id));
}

std::size_t BaseManager::number_of_objects() const {
    if (state_->state != State::started && state_->state != State::connected)
        throw ValueError("server not yet started");
    return static_cast<std::size_t>(
        detail::manager::one_shot(*state_->address, state_->authkey, "number_of_objects").as_int());
}

SyncManager Manager() {
    SyncManager manager;
    manager.start();
    return manager;
}

}  // namespace polyproc
