#include "common/proc_files.hpp"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln {

std::optional<std::string> status_field(std::string_view status, std::string_view name) {
    for (const std::string& line : split(status, '\n'))
        if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':')
            return std::string(trim(std::string_view(line).substr(name.size() + 1)));
    return std::nullopt;
}

std::optional<pid_t> status_pid(std::string_view status, std::string_view name) {
    std::optional<std::string> field = status_field(status, name);
    std::uint64_t number = 0;
    if (!field || !parse_uint64(*field, number)) return std::nullopt;
    return static_cast<pid_t>(number);
}

std::optional<std::string> own_status_field(std::string_view name) {
    auto status = read_file("/proc/self/status");
    return status ? status_field(*status, name) : std::nullopt;
}

UniqueFd open_proc(pid_t pid) {
    return UniqueFd(::open(str_cat("/proc/", pid).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

std::optional<std::string> read_proc_file(int proc_dir, const char* name) {
    UniqueFd fd(::openat(proc_dir, name, O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    std::string text;
    char buffer[4096];
    while (text.size() < (1 << 20)) {
        ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        text.append(buffer, static_cast<size_t>(got));
    }
    return text;
}

std::optional<std::string> read_proc_link(int proc_dir, const std::string& name) {
    char target[PATH_MAX + 1];
    ssize_t size = ::readlinkat(proc_dir, name.c_str(), target, PATH_MAX);
    if (size < 0) return std::nullopt;
    return std::string(target, static_cast<size_t>(size));
}

std::uint64_t proc_start_time(int proc_dir) {
    std::optional<std::string> stat = read_proc_file(proc_dir, "stat");
    if (!stat) return 0;
    size_t end_of_name = stat->rfind(')');  // the command name may hold spaces and parentheses
    if (end_of_name == std::string::npos || end_of_name + 2 > stat->size()) return 0;
    std::vector<std::string> fields = split(std::string_view(*stat).substr(end_of_name + 2), ' ');
    std::uint64_t start = 0;
    return fields.size() > 19 && parse_uint64(fields[19], start) ? start : 0;
}

std::uint64_t proc_start_time_of(pid_t pid) {
    UniqueFd proc = open_proc(pid);
    return proc ? proc_start_time(proc.get()) : 0;
}

}  // namespace kiln
