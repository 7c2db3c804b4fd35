// cpu_count and init.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sched.h>
#include <sstream>
#include <string>
#include <vector>

#include "polyproc/polyproc.hpp"

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
        if (controllers.empty()) {  // v2
            for (const std::string& base : {"/sys/fs/cgroup" + path, std::string("/sys/fs/cgroup")}) {
                if (auto max = read_first_line(base + "/cpu.max")) {
                    std::istringstream ss(*max);
                    std::string q, p;
                    ss >> q >> p;
                    consider(quota_from(q, p));
                    break;
                }
            }
        } else {
            std::stringstream cs(controllers);
            std::string c;
            bool has_cpu = false;
            while (std::getline(cs, c, ',')) has_cpu |= c == "cpu";
            if (!has_cpu) continue;
            for (const std::string& mount : {"/sys/fs/cgroup/" + controllers, std::string("/sys/fs/cgroup/cpu")}) {
                for (const std::string& base : {mount + path, mount}) {
                    auto q = read_first_line(base + "/cpu.cfs_quota_us");
                    if (!q) continue;
                    consider(quota_from(q, read_first_line(base + "/cpu.cfs_period_us")));
                    goto next_line;
                }
            }
        next_line:;
        }
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

namespace {
std::vector<std::string>& saved_argv() {
    static auto* v = new std::vector<std::string>();
    return *v;
}
}  // namespace

void init(int argc, char** argv) {
    // Today only recorded; the spawn and forkserver start methods will re-execute the program with
    // these arguments and take over here when the process is one of their children.
    auto& v = saved_argv();
    v.assign(argv, argv + argc);
}

}  // namespace polyproc
