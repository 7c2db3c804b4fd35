// BaseManager and SyncManager (managers.hpp): starting the server process, connecting to a
// server, shutting it down, and creating objects in it.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "manager_client.hpp"
#include "manager_protocol.hpp"
#include "manager_server.hpp"
#include "os.hpp"
#include "polyproc/managers.hpp"
#include "polyproc/process.hpp"

namespace polyproc {

namespace detail::manager {

enum class State { initial, started, connected, shut_down };

struct ManagerState {
    std::optional<Address> address;
    std::string authkey;
    State state = State::initial;
    std::optional<Process> server;  // when start() made it
};

namespace {

std::atomic<int> g_manager_count{0};

// The server process's body (CPython's BaseManager._run_server): bind, say where, serve until
// told to stop or until the process that started the manager is gone.
void run_server(Connection& writer, const std::string& authkey, const std::string& path, int creator_pid) {
    ::signal(SIGINT, SIG_IGN);  // Ctrl-C is for the program; its manager stops when it does
    FileDescriptor creator;
    try {
        creator = os::pidfd_open(creator_pid);
    } catch (const std::system_error&) {
        return;  // already gone: nobody to serve
    }
    Server server(Listener(path.empty() ? std::optional<Address>() : Address(path), 128), authkey);
    writer.send(std::get<std::string>(server.address()));
    writer.close();
    server.serve_forever(creator.get());
}

}  // namespace

}  // namespace detail::manager

using detail::manager::State;

BaseManager::BaseManager(std::optional<Address> address, std::optional<std::string> authkey)
    : state_(std::make_unique<detail::manager::ManagerState>()) {
    state_->address = std::move(address);
    state_->authkey = authkey ? std::move(*authkey) : current_process().authkey();
    if (state_->address && std::holds_alternative<InetAddress>(*state_->address))
        throw ValueError("managers over TCP come with remote managers (issue #15); use an AF_UNIX path");
}

BaseManager::BaseManager(BaseManager&&) noexcept = default;
BaseManager& BaseManager::operator=(BaseManager&& other) noexcept {
    if (this != &other) {
        if (state_) shutdown();
        state_ = std::move(other.state_);
    }
    return *this;
}

BaseManager::~BaseManager() {
    if (state_) shutdown();
}

void BaseManager::start() {
    if (state_->state == State::started || state_->state == State::connected)
        throw ProcessError("Already started server");
    if (state_->state == State::shut_down) throw ProcessError("Manager has shut down");
    auto [reader, writer] = Pipe(false);
    const std::string path = state_->address ? std::get<std::string>(*state_->address) : std::string();
    Process server(&detail::manager::run_server, std::move(writer), state_->authkey, path,
                   static_cast<int>(::getpid()));
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
        state_->address = Address(reader.recv<std::string>());
    } catch (...) {
        if (server.is_alive()) server.kill();
        server.join();
        throw;
    }
    state_->server.emplace(std::move(server));
    state_->state = State::started;
}

void BaseManager::connect() {
    if (!state_->address) throw ValueError("connect() needs the address of a running manager");
    detail::manager::one_shot(*state_->address, state_->authkey, "dummy");
    state_->state = State::connected;
}

void BaseManager::shutdown() {
    if (!state_ || state_->state != State::started) return;
    state_->state = State::shut_down;
    Process& server = *state_->server;
    try {
        detail::manager::one_shot(*state_->address, state_->authkey, "shutdown");
    } catch (const std::exception&) {
        // It is gone, or will not answer: terminate it below.
    }
    server.join(std::chrono::seconds(1));
    if (server.is_alive()) {
        server.terminate();
        server.join(std::chrono::milliseconds(500));
        if (server.is_alive()) {
            server.kill();
            server.join();
        }
    }
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
