#pragma once
// Applies a layer (an uncompressed tar stream) to a rootfs the way Docker and containerd do: entries replace
// what lower layers left, ".wh." whiteouts delete, opaque markers hide a directory's lower contents. Layers
// are hostile input: nothing is ever created, changed or read outside the rootfs.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// What to do when a uid/gid from the layer cannot be applied: EPERM without CAP_CHOWN, EINVAL for ids that
// the user namespace does not map. warn_once keeps the intended ownership in the override xattr
// (file_metadata.hpp), which the layer writer honours, and warns once per layer about entries that cannot hold
// it (symlinks and special files, or a filesystem without user xattrs).
enum class OwnershipFailure { error, warn_once };

// What the tar is: an image layer, or an archive that ADD unpacks the way Docker's untar does. An archive's
// ".wh." names are refused (not applied: a layer could not store them either) and directories that already
// exist keep their owner, mode and times. In both, a relative symlink may not climb above the root.
enum class ExtractMode { layer, archive };

// The owner that replaces every entry's own (ADD --chown).
struct ExtractOwner {
    uid_t uid = 0;
    gid_t gid = 0;
};

// How a layer's deletions are written. `apply` carries them out on the rootfs below, as Docker does. `overlay`
// is for extracting a layer into its own empty directory that will serve as an overlay lowerdir (mounted with
// "userxattr"): nothing is deleted, a ".wh.NAME" entry becomes a 0/0 character device NAME and an opaque marker
// sets user.overlay.opaque="y" on its directory (../shared/research/sandbox.md §4).
enum class WhiteoutFormat { apply, overlay };

struct ExtractOptions {
    // Names the layer in errors and warnings: its digest, or a file name.
    std::string layer_name;
    OwnershipFailure ownership_failure = OwnershipFailure::error;
    ExtractMode mode = ExtractMode::layer;
    // Archive mode: the owner of every entry and of the parent directories the archive implies (else root).
    std::optional<ExtractOwner> owner;
    // When set, receives the path of every entry written, relative to the root with symlinks resolved, so that
    // a caller can make a layer of exactly what the extraction wrote.
    std::vector<std::string>* written = nullptr;
    WhiteoutFormat whiteout_format = WhiteoutFormat::apply;
};

// WhiteoutFormat::overlay: a hardlink whose target an earlier layer holds. Overlay cannot link across layer
// directories, so the link is completed by copy_from_lower_layers() (lower_stack.hpp) once the layers below are
// in place. Both paths are cleaned and relative to the root.
struct LowerLayerLink {
    std::string path;
    std::string target;
};

// WhiteoutFormat::overlay: what a layer directory takes for granted about the layers that will be stacked
// below it. Applied to a rootfs, a layer's entries go through the symlinks that lower layers made (as Docker
// and containerd apply them), its whiteouts delete through them, and a whiteout in a directory that does not
// exist deletes nothing; a layer directory cannot do any of that. Where the stack below breaks one of these,
// the layer must be applied through a mount of that stack instead (lower_stack.hpp).
struct LowerAssumptions {
    // Paths the layer took to be made of directories: the parents it made for its entries without entries of
    // their own, and the parents of hardlink targets it left to the layers below. Each component is a
    // directory, or nothing, below: not a symlink or a file, which applying the layer would go through or fail
    // on.
    std::vector<std::string> directory_paths;
    // Directories the layer deletes in (whiteouts, opaque markers) and does not make: each is a directory below.
    std::vector<std::string> deleting_in;
    // The layer wrote through a symlink of its own to a directory only the layers below may hold, or there were
    // too many of the above to record: only applying it through the stack tells what it means.
    bool needs_stack = false;
};

struct ExtractStats {
    std::uint64_t entries = 0;          // tar entries read, whiteouts included
    std::uint64_t bytes = 0;            // file content bytes written
    std::uint64_t whiteouts = 0;        // ".wh." entries and opaque markers applied
    std::uint64_t skipped_devices = 0;  // device nodes left out because mknod is not permitted
    std::vector<LowerLayerLink> lower_layer_links;  // WhiteoutFormat::overlay only
    LowerAssumptions lower_assumptions;             // WhiteoutFormat::overlay only
};

// Reads the tar stream `tar` to its end and applies every entry to `root`. An error names the layer and,
// where one is to blame, the entry; the rootfs may then be partly updated (callers discard it). Directories
// get their mode and times after all of the layer's entries are in place.
Result<ExtractStats> apply_layer(const RootFs& root, Reader& tar, const ExtractOptions& options);

}  // namespace kiln
