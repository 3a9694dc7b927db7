#pragma once
// Resolving USER values ("app", "1000", "app:staff", "1000:50") against the image's own /etc/passwd and
// /etc/group, the way Docker does.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

struct ResolvedUser {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> supplementary_gids;  // groups listing the user as a member, when no group was given
    std::string home;                       // from passwd; "/" when unknown
};

// Resolves `spec` inside `rootfs`. A name must exist in the image's passwd/group files; numeric ids need not.
Result<ResolvedUser> resolve_user(const RootFs& rootfs, std::string_view spec);

// Resolves a COPY --chown value: "user", "user:group", "uid", "uid:gid". Unlike USER, a user without a group
// takes the user's own id as its group when it is numeric, and its primary group when it is a name.
Result<std::pair<uid_t, gid_t>> resolve_chown(const RootFs& rootfs, std::string_view spec);

}  // namespace kiln
