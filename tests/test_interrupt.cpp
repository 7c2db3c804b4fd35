// Ctrl-C, pressed as a user presses it: tests/interrupt_program.cpp runs on a pseudo-terminal (its
// foreground process group) with a Pool, a Queue between two children, a SharedMemory segment and
// a manager all busy, and the test types ^C. The program gets it (its pool workers ignore it, as
// the program decides what Ctrl-C means); nothing prints a word about it but the resource
// tracker's one line when the program was killed holding a segment (Python's warning); every
// process of its session ends; the segment is unlinked; the terminal's modes are as they were.
#include <pty.h>
#include <termios.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

// The processes of session `sid` now (from /proc/*/stat: the session is field 6).
std::set<pid_t> processes_of_session(pid_t sid) {
    std::set<pid_t> found;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = std::stoi(name);
        if (const auto st = proc_stat(pid); st && st->session == sid && st->state != 'Z') found.insert(pid);
    }
    return found;
}

// The program on a terminal of its own, as its session leader; everything of its session is
// killed when this goes, however the test ends.
class OnTerminal {
public:
    explicit OnTerminal(const char* mode) {
        pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
        if (pid_ == 0) {  // async-signal-safe until exec
            ::execl(POLYPROC_INTERRUPT_PROGRAM, POLYPROC_INTERRUPT_PROGRAM, mode, static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    OnTerminal(const OnTerminal&) = delete;
    OnTerminal& operator=(const OnTerminal&) = delete;
    ~OnTerminal() {
        if (pid_ > 0) {
            for (pid_t p : processes_of_session(pid_)) ::kill(p, SIGKILL);
            if (!status_) ::waitpid(pid_, nullptr, 0);
        }
        if (master_ >= 0) ::close(master_);
    }
    bool started() const { return pid_ > 0 && master_ >= 0; }
    pid_t pid() const { return pid_; }
    int master() const { return master_; }

    // Reads what it prints until `text` shows (true) or `limit` passes or its terminal closes.
    bool read_until(const std::string& text, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (output_.find(text) == std::string::npos) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{master_, POLLIN, 0};
            if (::poll(&p, 1, int(left.count())) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::read(master_, buf, sizeof buf);
            if (n <= 0) return output_.find(text) != std::string::npos;  // EIO: no one has it open
            output_.append(buf, std::size_t(n));
        }
        return true;
    }
    // Its exit status once it has ended, within `limit`.
    std::optional<int> wait(std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!status_ && std::chrono::steady_clock::now() < deadline) {
            read_until("\x01never\x01", 50ms);  // keep its output flowing
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
        }
        return status_;
    }
    const std::string& output() const { return output_; }

private:
    pid_t pid_ = -1;
    int master_ = -1;
    std::string output_;
    std::optional<int> status_;
};

// What it printed after "ready ...", without the terminal's echo of ^C and line ends.
std::string said_after_ready(const std::string& output) {
    std::string rest = output.substr(std::min(output.size(), output.find('\n', output.find("ready ")) + 1));
    std::string clean;
    for (std::size_t i = 0; i < rest.size(); ++i) {
        if (rest.compare(i, 2, "^C") == 0) {
            ++i;
            continue;
        }
        if (rest[i] != '\r' && rest[i] != '\n') clean += rest[i];
    }
    return clean;
}

std::string segment_of(const std::string& output) {
    const auto at = output.find("ready ");
    if (at == std::string::npos) return "";
    const auto end = output.find_first_of("\r\n", at);
    std::string name = output.substr(at + 6, end - at - 6);
    return name.starts_with('/') ? name.substr(1) : name;
}

bool exists_in_dev_shm(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

class Interrupt : public ProcessTest {};

}  // namespace

TEST_F(Interrupt, CtrlCEndsABusyProgramQuietlyAndLeavesNothing) {
    OnTerminal program("default");
    ASSERT_TRUE(program.started());
    termios before{};
    ASSERT_EQ(::tcgetattr(program.master(), &before), 0);
    ASSERT_TRUE(program.read_until("ready ", 60s)) << program.output();
    ASSERT_TRUE(program.read_until("\n", 10s)) << program.output();
    const std::string segment = segment_of(program.output());
    ASSERT_TRUE(exists_in_dev_shm(segment)) << segment;
    const std::set<pid_t> session = processes_of_session(program.pid());
    EXPECT_GE(session.size(), 6u) << "the program, 2 workers, 2 children, a manager";

    ASSERT_EQ(::write(program.master(), "\x03", 1), 1);  // Ctrl-C
    const auto status = program.wait(30s);
    ASSERT_TRUE(status) << "Ctrl-C did not end it:\n" << program.output();
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGINT) << *status;
    // The one line: the resource tracker unlinking what the killed program left (Python's warning).
    EXPECT_EQ(said_after_ready(program.output()),
              "polyproc resource_tracker: There appear to be 1 leaked shared_memory objects to clean up at "
              "shutdown: ['" +
                  segment + "']")
        << program.output();
    EXPECT_TRUE(eventually([&] { return processes_of_session(program.pid()).empty(); }, 30s))
        << processes_of_session(program.pid()).size() << " processes of its session are left";
    EXPECT_TRUE(eventually([&] { return !exists_in_dev_shm(segment); }, 30s)) << segment << " was left in /dev/shm";
    termios after{};
    ASSERT_EQ(::tcgetattr(program.master(), &after), 0);
    EXPECT_EQ(after.c_lflag, before.c_lflag);
    EXPECT_EQ(after.c_iflag, before.c_iflag);
    EXPECT_EQ(after.c_oflag, before.c_oflag);
}

TEST_F(Interrupt, AProgramThatCatchesCtrlCKeepsItsPoolWorkers) {
    OnTerminal program("handler");
    ASSERT_TRUE(program.started());
    ASSERT_TRUE(program.read_until("ready ", 60s)) << program.output();
    ASSERT_TRUE(program.read_until("\n", 10s)) << program.output();
    const std::string segment = segment_of(program.output());

    ASSERT_EQ(::write(program.master(), "\x03", 1), 1);
    ASSERT_TRUE(program.read_until("lost", 60s)) << program.output();
    const auto status = program.wait(30s);
    ASSERT_TRUE(status) << program.output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << "\n" << program.output();
    // Ten results after Ctrl-C, and not one of them lost: the workers did not die of it.
    EXPECT_NE(program.output().find(" results, 0 lost"), std::string::npos) << program.output();
    const std::string said = said_after_ready(program.output());
    EXPECT_TRUE(said.starts_with("interrupted: ") && said.find(" lost") == said.size() - 5) << said;
    EXPECT_TRUE(eventually([&] { return processes_of_session(program.pid()).empty(); }, 30s));
    EXPECT_TRUE(eventually([&] { return !exists_in_dev_shm(segment); }, 30s)) << segment;
}
