#pragma once
// User-namespace id maps: reading and writing /proc/PID/{uid,gid}_map, subordinate id ranges from
// /etc/subuid, and namespaces created only to carry a mapping (the userns fd that an idmapped mount needs).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

// One line of a uid_map: ids [inside, inside+count) in the namespace are [outside, outside+count) in its
// parent.
struct IdExtent {
    std::uint32_t inside = 0;
    std::uint32_t outside = 0;
    std::uint32_t count = 0;
    friend bool operator==(const IdExtent&, const IdExtent&) = default;
};
using IdMap = std::vector<IdExtent>;

// Whether a new namespace may call setgroups(2). "deny" is what lets an unprivileged process map its own gid.
enum class SetGroups { leave, deny };

struct IdMapping {
    IdMap uids;
    IdMap gids;
    SetGroups setgroups = SetGroups::leave;
};

// A block of subordinate ids from an /etc/subuid-style file.
struct SubordinateRange {
    std::uint32_t start = 0;
    std::uint32_t count = 0;
};

// The uid_map text for `map` ("inside outside count\n" per extent).
std::string format_id_map(const IdMap& map);

// Parses /proc/PID/uid_map text; rejects malformed lines.
Result<IdMap> parse_id_map(std::string_view text);

// Reads /proc/self/uid_map (or gid_map when `which` is "gid_map").
Result<IdMap> read_own_id_map(std::string_view which);

// True for the map of the initial user namespace, where every id is itself ("0 0 4294967295").
bool is_initial_id_map(const IdMap& map);

// The ids this namespace has, each mapped to itself: the map of a nested namespace that changes no id.
// Extents stay separate (sorted), as the kernel requires of a nested map.
IdMap identity_of(const IdMap& current);

// Sum of the extents' counts.
std::uint64_t id_count(const IdMap& map);

// The largest range that `path` (/etc/subuid format: "name-or-id:start:count") grants to `user_name` or `id`;
// nullopt when it grants none. A missing file grants none.
Result<std::optional<SubordinateRange>> find_subordinate_range(const std::string& path,
                                                               std::string_view user_name, std::uint32_t id);

// Writes setgroups (if asked) then uid_map and gid_map of process `pid`, each in the single write the kernel
// needs; an empty map is left unwritten.
Status write_id_maps(pid_t pid, const IdMapping& mapping);

// The error for a failed clone(CLONE_NEWUSER): the errno and what it means on this machine (ENOSPC: the
// max_user_namespaces sysctl; EPERM: seccomp or an LSM).
Error user_namespace_error(int err);

// A user namespace carrying `mapping`, with no process left in it: the userns fd for MOUNT_ATTR_IDMAP, and
// the probe that user namespaces can be created at all. Needs privilege over the mapped ids (root, for host
// ranges).
Result<UniqueFd> create_user_namespace(const IdMapping& mapping);

// The ids inside `map` as a readable list of merged ranges: "0-65535", "0, 5-14".
std::string describe_inside_ids(const IdMap& map);

}  // namespace kiln
