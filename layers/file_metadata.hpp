#pragma once
// Metadata that an image layer and the filesystem under a rootfs hold differently:
//  - file capabilities: the kernel stores security.capability in its namespaced form (v3, with the host uid
//  of
//    the user namespace's root) when it is set inside a user namespace, while a layer must carry the plain
//    form (v2) that means the same thing in whatever namespace the image later runs;
//  - ownership a single-id user namespace cannot hold: only the caller's uid exists there, so chown to any
//    other id fails. The intended owner is then kept in containers/storage's override xattr
//    (user.containers.override_stat, "uid:gid:mode:type"), which extraction and COPY write and the layer
//    writer reads back, so that layers still carry the image's ownership (../shared/research/sandbox.md §1).

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace kiln {

inline constexpr std::string_view k_file_capability_xattr = "security.capability";
inline constexpr std::string_view k_override_stat_xattr = "user.containers.override_stat";

// The v2 form of a security.capability value: a v3 value loses its rootid; v1, v2 and values that are not
// capabilities at all come back unchanged (the kernel judges those when they are set).
std::string normalize_file_capability(std::string_view value);

// The ownership and mode a file is meant to have, where the filesystem cannot say it.
struct OverrideStat {
    uid_t uid = 0;
    gid_t gid = 0;
    // File type and permission bits (S_IFREG | 04755); a record without a type leaves the type bits 0.
    mode_t mode = 0;
};

// "uid:gid:mode:type" as containers/storage writes it: "1000:1000:4755:file", "0:42:0750:dir".
std::string format_override_stat(const OverrideStat& stat);
// Whether `stat` speaks for a file of type `type` (S_IFDIR, S_IFREG, …): a record with a type must name it.
inline bool override_applies(const OverrideStat& stat, mode_t type) {
    return (stat.mode & S_IFMT) == 0 || (stat.mode & S_IFMT) == (type & S_IFMT);
}

// Reads "uid:gid:mode:type" and the older "uid:gid:mode" (whose octal mode may hold the type bits); nullopt
// for anything else.
std::optional<OverrideStat> parse_override_stat(std::string_view value);

// The override of `fd` itself (`name` null; O_PATH descriptors too) or of `name` in the directory `fd`, never
// following a final symlink. nullopt when there is none, it cannot be read or it does not parse.
std::optional<OverrideStat> read_override_stat(int fd, const char* name);

// Records `stat` as the override of `fd` / `name` (as read_override_stat()). Fails where user xattrs cannot
// be set: on symlinks and special files (the kernel allows them on regular files and directories only), or on
// a filesystem without them.
Status write_override_stat(int fd, const char* name, const OverrideStat& stat);

// Removes a stale override (from ownership that has since been applied for real); absence is not an error.
void remove_override_stat(int fd, const char* name);

// What became of an ownership change.
enum class OwnershipKept { on_disk, in_override, lost };

// chown of `fd` / `name` (as read_override_stat()) to uid:gid. Where the user namespace cannot hold those ids
// (EINVAL for an id it does not map, EPERM without CAP_CHOWN) they are recorded as the override instead, with
// `mode` (type and permission bits, as the caller is about to set them), or lost where no override can be
// written. A directory owned for real loses any older override. Other failures are errors naming `display`.
Result<OwnershipKept> change_owner(int fd, const char* name, uid_t uid, gid_t gid, mode_t mode,
                                   const std::string& display);

}  // namespace kiln
