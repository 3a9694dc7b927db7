#pragma once
// Applies a layer (an uncompressed tar stream) to a rootfs the way Docker and containerd do: entries replace
// what lower layers left, ".wh." whiteouts delete, opaque markers hide a directory's lower contents. Layers
// are hostile input: nothing is ever created, changed or read outside the rootfs.

#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// What to do when a uid/gid from the layer cannot be applied: EPERM without CAP_CHOWN, EINVAL for ids that
// the user namespace does not map.
enum class OwnershipFailure { error, warn_once };

struct ExtractOptions {
    // Names the layer in errors and warnings: its digest, or a file name.
    std::string layer_name;
    OwnershipFailure ownership_failure = OwnershipFailure::error;
};

struct ExtractStats {
    std::uint64_t entries = 0;          // tar entries read, whiteouts included
    std::uint64_t bytes = 0;            // file content bytes written
    std::uint64_t whiteouts = 0;        // ".wh." entries and opaque markers applied
    std::uint64_t skipped_devices = 0;  // device nodes left out because mknod is not permitted
};

// Reads the tar stream `tar` to its end and applies every entry to `root`. An error names the layer and,
// where one is to blame, the entry; the rootfs may then be partly updated (callers discard it). Directories
// get their mode and times after all of the layer's entries are in place.
Result<ExtractStats> apply_layer(const RootFs& root, Reader& tar, const ExtractOptions& options);

}  // namespace kiln
