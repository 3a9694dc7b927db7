#include "builder/sandbox/id_map.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "builder/sandbox/cloned_process.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

bool parse_u32(std::string_view text, std::uint32_t& value) {
    std::uint64_t wide = 0;
    if (!parse_uint64(text, wide) || wide > std::numeric_limits<std::uint32_t>::max()) return false;
    value = static_cast<std::uint32_t>(wide);
    return true;
}

Status write_proc_file(pid_t pid, std::string_view name, const std::string& text) {
    std::string path = str_cat("/proc/", pid, "/", name);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", path));
    ssize_t written = ::write(fd.get(), text.data(), text.size());
    if (written < 0) return fail_errno(str_cat("write \"", trim(text), "\" to ", path));
    if (static_cast<size_t>(written) != text.size()) return fail(str_cat("short write to ", path));
    return {};
}

// The namespace holder: it only has to exist until the parent has opened /proc/PID/ns/user.
int hold_namespace(void*) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    while (true) ::pause();
}

std::string explain_user_namespace_errno(int err) {
    switch (err) {
        case ENOSPC:
            return "no user namespace may be created: sysctl user.max_user_namespaces is 0 (or its limit is "
                   "reached)";
        case EPERM:
            return "user namespaces are forbidden here: a seccomp profile (a container runtime's default), "
                   "an LSM "
                   "policy such as AppArmor's kernel.apparmor_restrict_unprivileged_userns, or running in a "
                   "chroot";
        case EINVAL:
            return "the kernel has no user namespace support (CONFIG_USER_NS)";
        case EUSERS:
            return "user namespaces are nested too deeply (the kernel allows 32 levels)";
        default:
            return "user namespaces are unavailable";
    }
}

}  // namespace

std::string format_id_map(const IdMap& map) {
    std::string text;
    for (const IdExtent& extent : map)
        text += str_cat(extent.inside, " ", extent.outside, " ", extent.count, "\n");
    return text;
}

Result<IdMap> parse_id_map(std::string_view text) {
    IdMap map;
    for (const std::string& line : split(text, '\n')) {
        if (trim(line).empty()) continue;
        std::vector<std::string> fields;
        for (const std::string& field : split(line, ' '))
            if (!field.empty()) fields.push_back(field);
        IdExtent extent;
        if (fields.size() != 3 || !parse_u32(fields[0], extent.inside) ||
            !parse_u32(fields[1], extent.outside) || !parse_u32(fields[2], extent.count))
            return fail(str_cat("malformed id map line \"", line, "\""));
        map.push_back(extent);
    }
    return map;
}

Result<IdMap> read_own_id_map(std::string_view which) {
    std::string path = str_cat("/proc/self/", which);
    KILN_ASSIGN(std::string text, read_file(path));
    return with_context(parse_id_map(text), path);
}

bool is_initial_id_map(const IdMap& map) {
    return map.size() == 1 && map[0].inside == 0 && map[0].outside == 0 && map[0].count == 4294967295u;
}

IdMap identity_of(const IdMap& current) {
    // One line per extent, never merged: the kernel needs each line of a nested map to fall within a single
    // line of the parent's map.
    IdMap identity;
    for (const IdExtent& extent : current) identity.push_back({extent.inside, extent.inside, extent.count});
    std::sort(identity.begin(), identity.end(),
              [](const IdExtent& a, const IdExtent& b) { return a.inside < b.inside; });
    return identity;
}

std::uint64_t id_count(const IdMap& map) {
    std::uint64_t total = 0;
    for (const IdExtent& extent : map) total += extent.count;
    return total;
}

Result<std::optional<SubordinateRange>> find_subordinate_range(const std::string& path,
                                                               std::string_view user_name, std::uint32_t id) {
    if (!path_exists(path)) return std::optional<SubordinateRange>();
    KILN_ASSIGN(std::string text, read_file(path));
    std::string id_text = str_cat(id);
    std::optional<SubordinateRange> best;
    for (const std::string& raw_line : split(text, '\n')) {
        std::string_view line = trim(raw_line);
        if (line.empty() || line.front() == '#') continue;
        std::vector<std::string> fields = split(line, ':');
        SubordinateRange range;
        // Malformed lines are skipped, as shadow's own tools do.
        if (fields.size() != 3 || !parse_u32(fields[1], range.start) || !parse_u32(fields[2], range.count))
            continue;
        if (fields[0] != user_name && fields[0] != id_text) continue;
        if (!best || range.count > best->count) best = range;
    }
    return best;
}

Error user_namespace_error(int err) {
    return Error::from_errno(str_cat("cannot create a user namespace (", explain_user_namespace_errno(err),
                                     "): clone(CLONE_NEWUSER)"),
                             err);
}

Status write_id_maps(pid_t pid, const IdMapping& mapping) {
    if (mapping.setgroups == SetGroups::deny) KILN_TRY(write_proc_file(pid, "setgroups", "deny"));
    if (!mapping.uids.empty()) KILN_TRY(write_proc_file(pid, "uid_map", format_id_map(mapping.uids)));
    if (!mapping.gids.empty()) KILN_TRY(write_proc_file(pid, "gid_map", format_id_map(mapping.gids)));
    return {};
}

Result<UniqueFd> create_user_namespace(const IdMapping& mapping) {
    auto holder = ClonedProcess::spawn(CLONE_NEWUSER, hold_namespace, nullptr);
    if (!holder) return fail(user_namespace_error(holder.error().errno_value()));
    KILN_TRY_CONTEXT(write_id_maps(holder->pid(), mapping), "mapping ids of a new user namespace");
    std::string ns_path = str_cat("/proc/", holder->pid(), "/ns/user");
    UniqueFd ns_fd(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns_fd) return fail_errno(str_cat("open ", ns_path));
    holder->kill_and_reap();
    return ns_fd;
}

std::string describe_inside_ids(const IdMap& map) {
    IdMap merged;
    for (const IdExtent& extent : identity_of(map)) {
        if (!merged.empty() && merged.back().inside + merged.back().count == extent.inside)
            merged.back().count += extent.count;
        else
            merged.push_back(extent);
    }
    std::vector<std::string> ranges;
    for (const IdExtent& extent : merged) {
        if (extent.count == 1)
            ranges.push_back(str_cat(extent.inside));
        else
            ranges.push_back(str_cat(extent.inside, "-", std::uint64_t(extent.inside) + extent.count - 1));
    }
    return join(ranges, ", ");
}

}  // namespace kiln
