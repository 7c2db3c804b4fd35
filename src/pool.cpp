// mp::Pool's out-of-line functions, the free functions pool.hpp declares (each forwards to the
// engine, PoolCore: pool_core.hpp says which file holds which part), and the progress bar.
#include "polyproc/pool.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

#include "pool_core.hpp"
#include "polyproc/errors.hpp"

namespace polyproc {
namespace detail {

// ---- the free functions pool.hpp declares ---------------------------------------------------------

std::shared_ptr<PoolCore> pool_create(PoolOptions options) { return std::make_shared<PoolCore>(std::move(options)); }
void pool_submit(PoolCore& core, const std::shared_ptr<JobBase>& job, std::uint32_t chunk, TaskRunner runner,
                 std::size_t body_size, BodyWriter write, bool feeding) {
    core.submit(job, chunk, runner, body_size, write, feeding);
}
void pool_check_running(const PoolCore& core) { core.check_running(); }
std::size_t pool_size(const PoolCore& core) { return core.size(); }
std::size_t pool_imap_window(const PoolCore& core) { return core.imap_window(); }
void pool_add_feeder(PoolCore& core, const std::shared_ptr<Feeder>& feeder) { core.add_feeder(feeder); }
void pool_remove_feeder(PoolCore& core, const Feeder* feeder) noexcept { core.remove_feeder(feeder); }
void pool_close(PoolCore& core) { core.close(); }
void pool_join(PoolCore& core) { core.join(); }
void pool_terminate(PoolCore& core) noexcept { core.terminate(); }
std::string pool_repr(const PoolCore& core) { return core.repr(); }
std::vector<pid_t> pool_worker_pids(const PoolCore& core) { return core.worker_pids(); }

}  // namespace detail

// ---- Pool -----------------------------------------------------------------------------------------

Pool::Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}
Pool::Pool(PoolOptions options) : core_(detail::pool_create(std::move(options))) {}

Pool& Pool::operator=(Pool&& other) noexcept {
    if (this != &other) {
        if (core_) detail::pool_terminate(*core_);
        core_ = std::move(other.core_);
    }
    return *this;
}

Pool::~Pool() {
    if (core_) detail::pool_terminate(*core_);
}

detail::PoolCore& Pool::core() const {
    if (!core_) throw ValueError("Pool not running");
    return *core_;
}

void Pool::close() { detail::pool_close(core()); }
void Pool::join() { detail::pool_join(core()); }
void Pool::terminate() { detail::pool_terminate(core()); }
std::size_t Pool::size() const { return detail::pool_size(core()); }
std::vector<pid_t> Pool::worker_pids() const { return detail::pool_worker_pids(core()); }
std::string Pool::repr() const { return detail::pool_repr(core()); }

// ---- progress -------------------------------------------------------------------------------------

namespace detail {

namespace {
std::string clock_text(double seconds) {
    if (!(seconds >= 0) || seconds > 359999) return "??:??";
    const long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
    return buf;
}
}  // namespace

std::string render_progress(std::size_t count, std::size_t total, std::chrono::duration<double> elapsed,
                            std::size_t width) {
    const double secs = elapsed.count();
    const double rate = secs > 0 ? double(count) / secs : 0.0;
    char rate_text[48];
    std::snprintf(rate_text, sizeof rate_text, "%.2fit/s", rate);
    if (total == 0) return std::to_string(count) + "it [" + clock_text(secs) + ", " + rate_text + "]";
    const double frac = std::min(1.0, double(count) / double(total));
    static const char* const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    const std::size_t cells8 = std::size_t(frac * double(width) * 8);
    std::string bar;
    std::size_t used = cells8 / 8;
    for (std::size_t i = 0; i < used; ++i) bar += "█";
    if (used < width && cells8 % 8) {
        bar += eighths[cells8 % 8];
        ++used;
    }
    bar.append(width - used, ' ');
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", int(frac * 100));
    const double eta = rate > 0 && count <= total ? double(total - count) / rate : -1;
    return std::string(pct) + "|" + bar + "| " + std::to_string(count) + "/" + std::to_string(total) + " [" +
           clock_text(secs) + "<" + (count >= total ? clock_text(0) : clock_text(eta)) + ", " + rate_text + "]";
}

ProgressBar::ProgressBar(std::size_t total)
    : total_(total), active_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_draw_() {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::tick() noexcept {
    ++count_;
    if (!active_ || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    try {
        const std::string line = "\r" + render_progress(count_, total_, now - start_);
        (void)!::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
    }
}

void ProgressBar::finish() noexcept {
    if (!active_ || finished_) return;
    finished_ = true;
    try {
        const std::string line =
            "\r" + render_progress(count_, total_, std::chrono::steady_clock::now() - start_) + "\n";
        (void)!::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
    }
}

}  // namespace detail
}  // namespace polyproc
