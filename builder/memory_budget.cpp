#include "builder/memory_budget.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

std::optional<std::uint64_t> read_number(const std::string& path) {
    auto text = read_file(path, 4096);
    if (!text) return std::nullopt;
    std::uint64_t value = 0;
    if (!parse_uint64(trim(*text), value)) return std::nullopt;
    return value;
}

// Where a memory cgroup's limit and use are: cgroup v2's unified hierarchy, or v1's memory controller (whose
// "no limit" is a number near 2^63, more than any headroom that MemAvailable then caps).
struct CgroupFiles {
    std::string hierarchy;  // below the cgroup root
    const char* limit;
    const char* usage;
};

// What the memory cgroup of this process still allows: the limit minus the use, at every level up to the root
// (a pod's limit is on a level above the container's); nullopt when no level can be read.
std::optional<std::uint64_t> cgroup_headroom(const std::string& cgroup_root, const std::string& self_cgroup) {
    auto text = read_file(self_cgroup, 64 << 10);
    if (!text) return std::nullopt;
    std::string path;
    CgroupFiles files{"", "memory.max", "memory.current"};
    for (const std::string& line : split(*text, '\n')) {
        std::vector<std::string> fields = split(line, ':');
        if (fields.size() < 3) continue;
        std::string rest = line.substr(fields[0].size() + fields[1].size() + 2);
        if (fields[0] == "0" && fields[1].empty() && path.empty()) {
            path = rest;
        } else {
            for (const std::string& controller : split(fields[1], ','))
                if (controller == "memory") {
                    path = rest;
                    files = CgroupFiles{"/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"};
                }
        }
    }
    if (path.empty()) return std::nullopt;
    std::optional<std::uint64_t> least;
    while (true) {
        std::string dir = cgroup_root + files.hierarchy + (path == "/" ? "" : path);
        auto max = read_number(dir + "/" + files.limit);
        auto current = read_number(dir + "/" + files.usage);
        if (max && current) {
            std::uint64_t headroom = *max > *current ? *max - *current : 0;
            least = least ? std::min(*least, headroom) : headroom;
        }
        if (path == "/" || path.empty()) break;
        size_t slash = path.rfind('/');
        path = slash == 0 ? "/" : path.substr(0, slash);
    }
    return least;
}

std::optional<std::uint64_t> mem_available(const std::string& meminfo) {
    auto text = read_file(meminfo, 64 << 10);
    if (!text) return std::nullopt;
    for (const std::string& line : split(*text, '\n')) {
        if (!line.starts_with("MemAvailable:")) continue;
        std::string_view number = trim(std::string_view(line).substr(13));
        if (number.ends_with("kB")) number = trim(number.substr(0, number.size() - 2));
        std::uint64_t kilobytes = 0;
        if (parse_uint64(number, kilobytes)) return kilobytes * 1024;
    }
    return std::nullopt;
}

}  // namespace

Result<std::optional<std::uint64_t>> parse_memory_budget(std::string_view text) {
    if (text == "auto") return std::nullopt;
    std::optional<std::uint64_t> size = parse_byte_size(text);
    if (!size)
        return fail(str_cat("--memory-budget: expected auto, 0 or a size such as 2Gi or 512M, got \"", text, "\""));
    return std::optional<std::uint64_t>(*size);
}

std::uint64_t automatic_memory_budget(const std::string& cgroup_root, const std::string& self_cgroup,
                                      const std::string& meminfo) {
    std::optional<std::uint64_t> room = cgroup_headroom(cgroup_root, self_cgroup);
    std::optional<std::uint64_t> available = mem_available(meminfo);
    if (room && available) room = std::min(*room, *available);
    if (!room) room = available;
    return room ? *room / 2 : 0;
}

}  // namespace kiln
