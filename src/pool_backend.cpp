// The one place a pool's backend is chosen (pool_backend.hpp says what a backend is).
#include "pool_backend.hpp"

#include <memory>

#include "pool_local.hpp"

namespace polyproc::detail {

std::unique_ptr<PoolBackend> make_pool_backend(const PoolOptions& options, const WorkerCounts& counts) {
    if (options.backend) return options.backend->make(options, counts);
    return std::make_unique<LocalPoolBackend>(options, counts);
}

}  // namespace polyproc::detail
