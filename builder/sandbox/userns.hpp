#pragma once
// kiln as a non-root user re-executes itself inside a user namespace where it is uid 0 over the user's
// subordinate ids, so that layer extraction, chown, snapshots and tar writing all see the image's own ids
// (../shared/research/sandbox.md §1 and §7, the buildah-unshare model).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/sandbox/sandbox_mode.hpp"
#include "common/error.hpp"

namespace kiln {

// Set in the environment of the re-executed kiln, to the outer process's pid.
inline constexpr const char* k_build_userns_marker = "KILN_BUILD_USERNS";
// Set beside it, as "FD:PATH", where root handed the re-executed kiln a file that it opened for it (an inherited
// descriptor): the Docker config, which the unprivileged id may not read.
inline constexpr const char* k_handed_file_variable = "KILN_HANDED_FILE";
// Its value where none of the files root was to hand in exists.
inline constexpr std::string_view k_handed_nothing = "none";

// Call first thing in main(), before any thread starts, with main's argv and the process's environment (the
// CLI's; nothing here reads the environment itself). As uid 0 (real root, or root inside a user namespace,
// such as the one this function made) it returns nullopt: build in this process. Otherwise it re-executes
// /proc/self/exe with the same argv, cwd and environment (plus the marker) in a new user namespace that maps
// 0 → the caller's uid and 1..65535 → its /etc/subuid and /etc/subgid ranges (newuidmap/newgidmap), or only
// 0 → the caller's ids, with a loud warning, where that is impossible. It forwards SIGINT, SIGTERM and
// SIGHUP, and returns the child's exit code (128+signal when killed), which the caller must exit with.
// Root in the host's user namespace does the same, with ids 0..65535 mapped to root's host range, where `mode`
// allows the userns sandbox and root can neither map host uid 0 into a namespace (no CAP_SETFCAP) nor idmap a
// mount (no CAP_SYS_ADMIN): CRI-O's default capabilities. Where that namespace cannot be made, root builds in
// this process. Root opens the first of `hand_in` that exists for the re-executed kiln (k_handed_file_variable).
Result<std::optional<int>> enter_build_user_namespace(char** argv, char** envp,
                                                      SandboxMode mode = SandboxMode::automatic,
                                                      const std::vector<std::string>& hand_in = {});

}  // namespace kiln

namespace kiln {

// Moves kiln into a mount namespace of its own, where every mount propagates nowhere (MS_REC|MS_PRIVATE on
// "/"), so that the overlays kiln mounts vanish with it and never show on the host. Call after
// enter_build_user_namespace() and before any thread starts. The error says why (no CAP_SYS_ADMIN over the
// current user namespace, a seccomp filter, …); kiln then mounts nothing itself.
Status enter_private_mount_namespace();

}  // namespace kiln
