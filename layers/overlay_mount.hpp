#pragma once
// Overlay mounts of kiln's layer directories: each layer extracted once into its own directory
// (WhiteoutFormat::overlay), stacked as lowerdirs, with a fresh upperdir per RUN step whose contents are the
// step's changes (snapshot_overlay.hpp). Every mount uses "userxattr", so root and rootless builds share one
// on-disk format: whiteouts are 0/0 character devices, opaque directories carry user.overlay.opaque="y"
// (../shared/research/sandbox.md §4).

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/mount_guard.hpp"

namespace kiln {

struct OverlayMountSpec {
    std::vector<std::string> lowers;  // absolute directories, topmost first; at least one
    std::string upper;                // absolute; empty for a read-only mount of the lowers
    std::string work;                 // absolute, same filesystem as upper; empty when upper is empty
};

// Which kernel interface configures the mount. `automatic` uses fsopen/fsconfig("lowerdir+") where the kernel
// has it (6.8+: up to 500 lowers of any length) and mount(2) otherwise; `legacy` always uses mount(2), whose
// option string is limited to a page (long lower paths are then passed as /proc/self/fd names).
enum class OverlayMountApi { automatic, legacy };

// Mounts an overlay at `target` with "userxattr"; the guard unmounts it. Errors name the target and the
// kernel's reason. The kernel refuses an overlay of one lower without an upper: that spec gives a read-only
// bind mount of the lower, the same view except that its own whiteouts show as 0/0 devices
// (scan_overlay_upper reads them as absent).
Result<MountGuard> mount_overlay(const OverlayMountSpec& spec, const std::string& target,
                                 OverlayMountApi api = OverlayMountApi::automatic);

// A detached overlay mount (an fsmount/open_tree fd) for the same spec, for callers that move_mount it
// elsewhere (e.g. inside a sandbox). With `legacy` (or a kernel without "lowerdir+"), the overlay is mounted
// with mount(2) on a temporary directory, cloned detached and unmounted there.
Result<UniqueFd> make_overlay_mount(const OverlayMountSpec& spec,
                                    OverlayMountApi api = OverlayMountApi::automatic);

// Attaches a detached mount (from make_overlay_mount() or open_tree) at `target`; the guard unmounts it.
Result<MountGuard> attach_mount(int mount_fd, const std::string& target);

// Whether overlay mounts work with a store under `store_dir`: mounts a tiny lower/upper/work overlay in a
// scratch directory there, checks that the lower shows through and unmounts it. The error says why not (the
// store is on overlayfs, the kernel refused with EPERM, …).
Status probe_overlay(const std::string& store_dir);

}  // namespace kiln
