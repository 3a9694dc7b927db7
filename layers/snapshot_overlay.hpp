#pragma once
// The overlay snapshotter's half in layers/: after a step ran on an overlay mount, its upper directory holds
// exactly what the step changed, in overlay's on-disk format. This turns that directory into the step's layer
// entries, reading only the upper (and the lower stack where the upper shadows something), never the whole
// rootfs. See ../shared/research/sandbox.md §4 and §6.

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "layers/layer_writer.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// The xattr that marks an opaque directory in kiln's layer directories: kiln mounts every overlay with
// "userxattr", so one on-disk format serves root and rootless builds alike.
inline constexpr const char* k_overlay_opaque_xattr = "user.overlay.opaque";

struct UpperScanOptions {
    // Paths (taken from the root) left out of the layer with everything below them, whiteouts included: the
    // stubs the sandbox bind-mounted over (etc/hosts, etc/resolv.conf where the image has none), ignore paths.
    std::vector<std::string> excluded;
};

struct UpperScanStats {
    size_t entries = 0;             // entries of the upper directory looked at
    size_t whiteouts = 0;           // deletions of lower entries
    size_t opaque_directories = 0;  // directories that hide their lower contents
    size_t unchanged_copy_ups = 0;  // files and directories overlay copied up without a change, left out
};

struct UpperChanges {
    std::vector<LayerEntry> entries;  // in path_less order; `path` entries are read from the upper directory
    UpperScanStats stats;
};

// The layer entries of the step whose upper directory is `upper`, against `lower`: the tree the step started
// from (a read-only view of the lower layers, such as a mount of them). The upper's format becomes the
// layer's: a 0/0 character device is a whiteout, a directory with k_overlay_opaque_xattr = "y" an opaque
// directory. Whiteouts and opaque markers of things the lower tree does not have are dropped, and so are
// entries that overlay copied up unchanged (same type, mode, owner, size, mtime, link target, extended
// attributes and content): a file opened read-write and left alone does not make the layer bigger. A
// directory copied up only because something below it changed is left out too: the layer writer adds every
// ancestor of an entry itself. Files with several links stay (copy-ups break links, so the step made them).
// A 0/0 device in `lower` counts as absent, so a single layer directory can serve as the lower tree.
Result<UpperChanges> scan_overlay_upper(const RootFs& upper, const RootFs& lower,
                                        const UpperScanOptions& options = {});

// True for overlay's whiteout: a character device with device number 0/0.
bool is_overlay_whiteout(mode_t mode, dev_t rdev);

// True when the entry at `path` (a final symlink not followed) carries k_overlay_opaque_xattr = "y".
bool has_overlay_opaque_xattr(const std::string& path);

// `entries` without those at or below one of `excluded` (paths taken from the root).
std::vector<LayerEntry> without_excluded(std::vector<LayerEntry> entries,
                                         const std::vector<std::string>& excluded);

}  // namespace kiln
