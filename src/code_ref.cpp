// CodeRef: code addresses as offsets that survive exec (see detail/code_ref.hpp).
//
// Layout of a CodeRef: top two bits = kind.
//   00: offset (two's complement, 62 bits) from code_anchor, in the object that holds polyproc;
//   01: startup library: index (14 bits) << 48 | offset in that library (48 bits);
//   10: registered code: 62-bit hash of the registered name;
//   11: library loaded after startup: a 16-bit hash of its path << 46 | offset (46 bits). A fresh
//       child dlopen()s the parent's late libraries before it runs anything (late_libraries /
//       load_late_libraries); the path, not a position, names the library, so a library the
//       child loaded on its own (an NSS module, say) cannot be mistaken for it.
#include "fork_safety.hpp"
#include "polyproc/detail/code_ref.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <link.h>

#include "polyproc/errors.hpp"

namespace polyproc::detail {

namespace {

[[gnu::noinline]] void code_anchor() noexcept { asm volatile(""); }

constexpr std::uint64_t kKindShift = 62;
constexpr std::uint64_t kPayloadMask = (std::uint64_t(1) << kKindShift) - 1;
constexpr std::uint64_t kOffsetMask = (std::uint64_t(1) << 48) - 1;
constexpr std::uint64_t kLateOffsetMask = (std::uint64_t(1) << 46) - 1;

struct LoadedObject {
    std::string name;
    std::uintptr_t base = 0;                   // dlpi_addr: what offsets are relative to
    std::uintptr_t low = 0, high = 0;          // the object's loaded segments
};

struct CodeTables;
CodeTables* tables_for_atfork = nullptr;

struct CodeTables {
    std::mutex mu;
    bool snapshotted = false;
    std::vector<LoadedObject> startup;         // in load order
    LoadedObject anchor_object;                // the startup object holding code_anchor
    std::uint64_t program = 0;                 // program_fingerprint(), taken with the snapshot
    std::map<std::uint64_t, std::uintptr_t> registered_by_hash;
    std::map<std::uintptr_t, std::uint64_t> registered_by_address;
    std::map<std::uint64_t, std::string> registered_names;
};

CodeTables& tables() {
    static CodeTables* t = [] {
        auto* tables = tables_for_atfork = new CodeTables();  // never destroyed: used until the last exit handler
        // A pool forks workers from its supervisor thread while another thread may be shipping a
        // task here: the child (which resolves its tasks here) starts with the lock free.
        register_after_fork([]() noexcept { new (&tables_for_atfork->mu) std::mutex(); });
        return tables;
    }();
    return *t;
}

std::vector<LoadedObject> list_loaded_objects() {
    std::vector<LoadedObject> out;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
            LoadedObject o;
            o.name = info->dlpi_name ? info->dlpi_name : "";
            o.base = info->dlpi_addr;
            o.low = UINTPTR_MAX;
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const auto& ph = info->dlpi_phdr[i];
                if (ph.p_type != PT_LOAD) continue;
                const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
                o.low = std::min(o.low, lo);
                o.high = std::max(o.high, lo + ph.p_memsz);
            }
            if (o.low != UINTPTR_MAX) static_cast<std::vector<LoadedObject>*>(data)->push_back(std::move(o));
            return 0;
        },
        &out);
    return out;
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// The files whose code is mapped now, as the kernel names them: each executable mapping's device,
// inode and path (/proc/self/maps), sorted. These are the files loaded, even if a path now names
// another (a library replaced on disk since).
std::string mapped_code_files() {
    std::vector<std::string> files;
    if (std::FILE* maps = std::fopen("/proc/self/maps", "re")) {
        char line[4096];
        while (std::fgets(line, sizeof line, maps)) {
            char perms[8] = {}, dev[32] = {};
            unsigned long long inode = 0;
            int path_at = 0;
            if (std::sscanf(line, "%*s %7s %*s %31s %llu %n", perms, dev, &inode, &path_at) < 3) continue;
            if (perms[2] != 'x' || inode == 0) continue;
            std::string path(line + path_at);
            while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
            files.push_back(std::string(dev) + ':' + std::to_string(inode) + ' ' + path);
        }
        std::fclose(maps);
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    std::string all;
    for (const auto& f : files) all += f + '\n';
    return all;
}

void snapshot_locked(CodeTables& t) {
    if (t.snapshotted) return;
    t.startup = list_loaded_objects();
    const auto anchor = reinterpret_cast<std::uintptr_t>(&code_anchor);
    for (const auto& o : t.startup)
        if (anchor >= o.low && anchor < o.high) t.anchor_object = o;
    std::string names;
    for (const auto& o : t.startup) names += o.name + '\n';
    t.program = fnv1a(names + mapped_code_files());
    t.snapshotted = true;
}

std::uint64_t late_name_hash(std::string_view path) { return fnv1a(path) & 0xffff; }

std::string describe(std::uintptr_t address) {
    Dl_info info{};
    std::string s;
    if (::dladdr(reinterpret_cast<void*>(address), &info) != 0) {
        s = info.dli_sname ? info.dli_sname : "an unnamed function";
        s += " in ";
        s += info.dli_fname ? info.dli_fname : "an unnamed library";
    } else {
        s = "an address outside every loaded object";
    }
    return s;
}

}  // namespace

void snapshot_startup_objects() {
    CodeTables& t = tables();
    std::lock_guard lock(t.mu);
    snapshot_locked(t);
}

std::uint64_t startup_objects_fingerprint() {
    CodeTables& t = tables();
    std::lock_guard lock(t.mu);
    snapshot_locked(t);
    std::string all;
    for (const auto& o : t.startup) all += o.name + '\n';
    return fnv1a(all);
}

std::uint64_t program_fingerprint() {
    CodeTables& t = tables();
    std::lock_guard lock(t.mu);
    snapshot_locked(t);
    return t.program;
}

bool register_code(const char* name, std::uintptr_t address) {
    CodeTables& t = tables();
    std::lock_guard lock(t.mu);
    const std::uint64_t hash = fnv1a(name) & kPayloadMask;
    if (auto it = t.registered_names.find(hash);
        it != t.registered_names.end() && t.registered_by_hash[hash] != address)
        throw ValueError(std::string("POLYPROC_REGISTER: two different functions registered as '") + name + "'");
    t.registered_by_hash[hash] = address;
    t.registered_by_address[address] = hash;
    t.registered_names[hash] = name;
    return true;
}

namespace {
// The objects loaded since the startup snapshot, in load order.
std::vector<LoadedObject> late_objects_locked(CodeTables& t) {
    std::vector<LoadedObject> late;
    for (auto& o : list_loaded_objects()) {
        const bool at_startup = std::any_of(t.startup.begin(), t.startup.end(), [&](const LoadedObject& s) {
            return s.base == o.base && s.name == o.name;
        });
        if (!at_startup && !o.name.empty()) late.push_back(std::move(o));
    }
    return late;
}
}  // namespace

std::vector<std::string> late_libraries() {
    CodeTables& t = tables();
    std::lock_guard lock(t.mu);
    snapshot_locked(t);
    std::vector<std::string> names;
    for (const auto& o : late_objects_locked(t)) names.push_back(o.name);
    return names;
}

void load_late_libraries(const std::vector<std::string>& paths) {
    for (const auto& path : paths)
        if (!::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
            const char* why = ::dlerror();
            throw ProcessError("polyproc: the parent had loaded " + path +
                               " (dlopen) but this child cannot: " + (why ? why : "unknown error"));
        }
}

CodeRef code_offset(std::uintptr_t address) {
    CodeTables& t = tables();
    // The common case, code of the program itself, without the lock: the snapshot never changes
    // once taken, and is taken at most once.
    static const LoadedObject anchor_object = [&] {
        std::lock_guard lock(t.mu);
        snapshot_locked(t);
        return t.anchor_object;
    }();
    const auto anchor = reinterpret_cast<std::uintptr_t>(&code_anchor);
    if (address >= anchor_object.low && address < anchor_object.high)
        return static_cast<std::uint64_t>(address - anchor) & kPayloadMask;
    std::lock_guard lock(t.mu);
    if (auto it = t.registered_by_address.find(address); it != t.registered_by_address.end())
        return (std::uint64_t(2) << kKindShift) | it->second;
    for (std::size_t i = 0; i < t.startup.size(); ++i) {
        const auto& o = t.startup[i];
        if (address >= o.low && address < o.high && i < (std::size_t(1) << 14))
            return (std::uint64_t(1) << kKindShift) | (std::uint64_t(i) << 48) | ((address - o.base) & kOffsetMask);
    }
    for (const auto& o : late_objects_locked(t))
        if (address >= o.low && address < o.high && address - o.base <= kLateOffsetMask)
            return (std::uint64_t(3) << kKindShift) | (late_name_hash(o.name) << 46) | (address - o.base);
    throw ValueError("polyproc: " + describe(address) +
                     " is not code of a file the program loaded, so a spawn or forkserver child cannot find it. "
                     "Register it with POLYPROC_REGISTER(function) in code the child loads too, or use the fork "
                     "start method.");
}

std::uintptr_t code_address(CodeRef ref) {
    const std::uint64_t kind = ref >> kKindShift;
    const std::uint64_t payload = ref & kPayloadMask;
    if (kind == 0) {
        // Sign-extend the 62-bit offset.
        const auto offset = static_cast<std::int64_t>(payload << 2) >> 2;
        return reinterpret_cast<std::uintptr_t>(&code_anchor) + static_cast<std::uintptr_t>(offset);
    }
    CodeTables& t = tables();
    std::lock_guard lock(t.mu);
    snapshot_locked(t);
    if (kind == 1) {
        const std::size_t index = static_cast<std::size_t>(payload >> 48);
        if (index < t.startup.size()) return t.startup[index].base + (payload & kOffsetMask);
    } else if (kind == 2) {
        if (auto it = t.registered_by_hash.find(payload); it != t.registered_by_hash.end()) return it->second;
        throw ProcessError(
            "polyproc: a function registered with POLYPROC_REGISTER in the parent is not registered "
            "in this process (is the code that registers it loaded here?)");
    } else {
        const std::uint64_t hash = payload >> 46;
        for (const auto& o : late_objects_locked(t))
            if (late_name_hash(o.name) == hash) return o.base + (payload & kLateOffsetMask);
        throw ProcessError(
            "polyproc: a function of a library the parent loaded with dlopen() after this process "
            "started is not loaded here (a pool's workers load the libraries their pool's process "
            "had loaded when they started)");
    }
    throw ProcessError("polyproc: a code reference names nothing in this process (corrupt message)");
}

}  // namespace polyproc::detail
