#include "builder/run/user_db.hpp"

#include <fcntl.h>

#include <optional>

#include "common/stream.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

struct PasswdEntry {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string home;
};

struct GroupEntry {
    std::string name;
    gid_t gid = 0;
    std::vector<std::string> members;
};

// An image's passwd or group file; a missing file is an empty database, like Docker treats it.
Result<std::vector<std::vector<std::string>>> read_colon_file(const RootFs& rootfs, std::string_view path) {
    std::vector<std::vector<std::string>> rows;
    auto fd = rootfs.open(path, O_RDONLY);
    if (!fd) {
        if (fd.error().errno_value() == ENOENT) return rows;
        return std::unexpected(std::move(fd.error()));
    }
    FdReader reader(fd->get(), rootfs.display(path));
    KILN_ASSIGN(std::string text, with_context(read_all(reader, 16 << 20), rootfs.display(path)));
    for (const std::string& line : split(text, '\n')) {
        std::string_view trimmed = trim(line);
        if (trimmed.empty() || trimmed[0] == '#') continue;
        rows.push_back(split(trimmed, ':'));
    }
    return rows;
}

std::optional<std::uint32_t> parse_id(std::string_view text) {
    std::uint64_t value = 0;
    if (!parse_uint64(text, value) || value > 0xFFFFFFFEu) return std::nullopt;
    return static_cast<std::uint32_t>(value);
}

Result<std::vector<PasswdEntry>> read_passwd(const RootFs& rootfs) {
    KILN_ASSIGN(auto rows, read_colon_file(rootfs, "/etc/passwd"));
    std::vector<PasswdEntry> entries;
    for (const auto& row : rows) {
        if (row.size() < 4) continue;
        auto uid = parse_id(row[2]);
        auto gid = parse_id(row[3]);
        if (!uid || !gid) continue;
        entries.push_back({row[0], *uid, *gid, row.size() > 5 ? row[5] : ""});
    }
    return entries;
}

Result<std::vector<GroupEntry>> read_group(const RootFs& rootfs) {
    KILN_ASSIGN(auto rows, read_colon_file(rootfs, "/etc/group"));
    std::vector<GroupEntry> entries;
    for (const auto& row : rows) {
        if (row.size() < 3) continue;
        auto gid = parse_id(row[2]);
        if (!gid) continue;
        GroupEntry entry{row[0], *gid, {}};
        if (row.size() > 3 && !row[3].empty()) entry.members = split(row[3], ',');
        entries.push_back(std::move(entry));
    }
    return entries;
}

Result<gid_t> resolve_group(const std::vector<GroupEntry>& groups, std::string_view spec) {
    for (const GroupEntry& group : groups)
        if (group.name == spec) return group.gid;
    if (auto gid = parse_id(spec)) return *gid;
    return fail(str_cat("unable to find group ", spec, ": no matching entries in the image's /etc/group"));
}

}  // namespace

Result<ResolvedUser> resolve_user(const RootFs& rootfs, std::string_view spec) {
    std::string_view user_part = spec.substr(0, spec.find(':'));
    std::optional<std::string_view> group_part;
    if (size_t colon = spec.find(':'); colon != std::string_view::npos) group_part = spec.substr(colon + 1);
    if (user_part.empty()) return fail(str_cat("invalid user \"", spec, "\""));

    KILN_ASSIGN(auto passwd, read_passwd(rootfs));
    ResolvedUser resolved{.home = "/"};
    const PasswdEntry* matched = nullptr;
    for (const PasswdEntry& entry : passwd) {
        if (entry.name == user_part) {
            matched = &entry;
            break;
        }
    }
    if (!matched) {
        auto uid = parse_id(user_part);
        if (!uid) return fail(str_cat("unable to find user ", user_part, ": no matching entries in the image's /etc/passwd"));
        for (const PasswdEntry& entry : passwd) {
            if (entry.uid == *uid) {
                matched = &entry;
                break;
            }
        }
        resolved.uid = *uid;
    }
    if (matched) {
        resolved.uid = matched->uid;
        resolved.gid = matched->gid;
        if (!matched->home.empty()) resolved.home = matched->home;
    }

    KILN_ASSIGN(auto groups, read_group(rootfs));
    if (group_part) {
        if (group_part->empty()) return fail(str_cat("invalid user \"", spec, "\": empty group"));
        KILN_ASSIGN(resolved.gid, resolve_group(groups, *group_part));
    } else if (matched) {
        for (const GroupEntry& group : groups) {
            for (const std::string& member : group.members) {
                if (member == matched->name && group.gid != resolved.gid) {
                    resolved.supplementary_gids.push_back(group.gid);
                    break;
                }
            }
        }
    }
    return resolved;
}

Result<std::pair<uid_t, gid_t>> resolve_chown(const RootFs& rootfs, std::string_view spec) {
    std::string_view user_part = spec.substr(0, spec.find(':'));
    std::optional<std::string_view> group_part;
    if (size_t colon = spec.find(':'); colon != std::string_view::npos) group_part = spec.substr(colon + 1);
    if (user_part.empty()) return fail(str_cat("invalid --chown \"", spec, "\""));

    uid_t uid = 0;
    gid_t gid = 0;
    if (auto numeric = parse_id(user_part)) {
        uid = *numeric;
        gid = *numeric;  // Docker: a numeric user without a group means the same number as the group
    } else {
        KILN_ASSIGN(auto passwd, read_passwd(rootfs));
        bool found = false;
        for (const PasswdEntry& entry : passwd) {
            if (entry.name == user_part) {
                uid = entry.uid;
                gid = entry.gid;
                found = true;
                break;
            }
        }
        if (!found)
            return fail(str_cat("--chown ", spec, ": unable to find user ", user_part,
                                ": no matching entries in the image's /etc/passwd"));
    }
    if (group_part) {
        if (group_part->empty()) return fail(str_cat("invalid --chown \"", spec, "\": empty group"));
        if (auto numeric = parse_id(*group_part)) {
            gid = *numeric;
        } else {
            KILN_ASSIGN(auto groups, read_group(rootfs));
            KILN_ASSIGN(gid, with_context(resolve_group(groups, *group_part), str_cat("--chown ", spec)));
        }
    }
    return std::pair{uid, gid};
}

}  // namespace kiln
