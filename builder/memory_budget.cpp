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

// What the cgroup v2 of this process still allows: memory.max minus memory.current, walking up to the root
// while a level says "max"; nullopt when no level limits it.
std::optional<std::uint64_t> cgroup_headroom(const std::string& cgroup_root, const std::string& self_cgroup) {
    auto text = read_file(self_cgroup, 64 << 10);
    if (!text) return std::nullopt;
    std::string path;
    for (const std::string& line : split(*text, '\n'))
        if (line.starts_with("0::")) path = line.substr(3);
    if (path.empty()) return std::nullopt;
    std::optional<std::uint64_t> least;
    while (true) {
        std::string dir = cgroup_root + (path == "/" ? "" : path);
        auto max = read_number(dir + "/memory.max");
        auto current = read_number(dir + "/memory.current");
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
