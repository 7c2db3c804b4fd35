// cpu_count.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sched.h>
#include <sstream>
#include <string>
#include <vector>

#include "polyproc/process.hpp"

namespace polyproc {

namespace {

std::optional<std::string> read_first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line)) return line;
    return std::nullopt;
}

std::optional<double> quota_from(const std::optional<std::string>& quota, const std::optional<std::string>& period) {
    if (!quota || !period) return std::nullopt;
    try {
        const long long q = std::stoll(*quota), p = std::stoll(*period);
        if (q > 0 && p > 0) return static_cast<double>(q) / static_cast<double>(p);
    } catch (...) {  // "max" or garbage: no quota
    }
    return std::nullopt;
}

std::optional<double> cgroup_v2_quota(const std::string& dir) {
    auto max = read_first_line(dir + "/cpu.max");  // "max 100000" or "200000 100000"
    if (!max) return std::nullopt;
    std::istringstream ss(*max);
    std::string q, p;
    ss >> q >> p;
    return quota_from(q, p);
}

std::optional<double> cgroup_v1_quota(const std::string& dir) {
    return quota_from(read_first_line(dir + "/cpu.cfs_quota_us"), read_first_line(dir + "/cpu.cfs_period_us"));
}

// The smallest quota on the way from our cgroup up to the mount point: a limit set on an ancestor
// (a container's, a systemd slice's) binds us too.
template <class Reader>
std::optional<double> smallest_quota_up_from(const std::string& mount, std::string path, Reader read) {
    std::optional<double> best;
    for (;;) {
        if (auto q = read(mount + path); q && (!best || *q < *best)) best = q;
        if (path.empty() || path == "/") break;
        path = path.substr(0, path.rfind('/'));
    }
    return best;
}

// The CPU quota of our cgroup (v2 cpu.max, or v1 cpu.cfs_quota_us / cfs_period_us), in CPUs.
std::optional<double> cgroup_cpu_quota() {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    std::optional<double> best;
    auto consider = [&](std::optional<double> q) {
        if (q && (!best || *q < *best)) best = q;
    };
    while (std::getline(in, line)) {
        // "hierarchy-id:controllers:path"
        const auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (controllers.empty()) {
            consider(smallest_quota_up_from("/sys/fs/cgroup", path, cgroup_v2_quota));
            continue;
        }
        std::stringstream cs(controllers);
        std::string c;
        bool has_cpu = false;
        while (std::getline(cs, c, ',')) has_cpu |= c == "cpu";
        if (!has_cpu) continue;
        for (const std::string& mount : {"/sys/fs/cgroup/" + controllers, std::string("/sys/fs/cgroup/cpu")})
            consider(smallest_quota_up_from(mount, path, cgroup_v1_quota));
    }
    return best;
}

}  // namespace

int cpu_count() {
    int n = 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) {
        const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? static_cast<int>(online) : 1;
    }
    if (auto quota = cgroup_cpu_quota()) n = std::min(n, std::max(1, static_cast<int>(std::ceil(*quota))));
    return std::max(1, n);
}

}  // namespace polyproc
