// polyproc/detail/progress_bar.hpp — the bar mp::progress draws (pool.hpp): a tqdm-like line on
// stderr, redrawn at most every 100 ms, only when stderr is a terminal. Internal to pool.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace polyproc {

namespace detail {

// Draws "45%|█████▌      | 450/1000 [00:02<00:03, 210.50 it/s]" on stderr at most every 100 ms
// when stderr is a terminal; silent otherwise.
class ProgressBar {
public:
    explicit ProgressBar(std::size_t total);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    void tick() noexcept;
    void finish() noexcept;

private:
    std::size_t total_, count_ = 0;
    bool active_, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

// The bar's line for `count` of `total` after `elapsed` (total 0: unknown), `width` cells wide.
std::string render_progress(std::size_t count, std::size_t total, std::chrono::duration<double> elapsed,
                            std::size_t width = 30);

}  // namespace detail

}  // namespace polyproc
