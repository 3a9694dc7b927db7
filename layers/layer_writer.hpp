#pragma once
// Turns paths of a rootfs into a layer blob in one streaming pass: tar → sha256 (diffID) → compressor →
// sha256 + size (digest) → the caller's Writer. Nothing is read twice and no file is held in memory.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "images/digest.hpp"
#include "images/media_type.hpp"
#include "layers/compression.hpp"
#include "layers/rootfs.hpp"
#include "layers/snapshot_walk.hpp"

namespace kiln {

enum class LayerEntryKind {
    path,           // the entry at this path in the rootfs, as it is now
    whiteout,       // this path was deleted: ".wh.NAME"
    opaque_marker,  // this directory hides everything lower layers had in it: "DIR/.wh..wh..opq"
};

struct LayerEntry {
    LayerEntryKind kind = LayerEntryKind::path;
    // In the rootfs, relative or absolute ("etc/passwd", "/etc/passwd"); for opaque_marker, the directory.
    std::string path;
};

struct LayerWriteOptions {
    CompressionOptions compression;
    // Seconds since the epoch written as every entry's mtime (SOURCE_DATE_EPOCH), whiteouts and opaque
    // markers included; otherwise lstat's, in whole seconds, and 0 for the markers.
    std::optional<std::int64_t> timestamp;
};

struct LayerWriteResult {
    Digest digest;   // of the bytes handed to the Writer
    Digest diff_id;  // of the uncompressed tar
    std::uint64_t compressed_size = 0;
    std::uint64_t uncompressed_size = 0;
    Compression compression = Compression::none;
};

// Writes the layer made of `entries` to `out`. Entries are sorted depth-first (parents first) and
// deduplicated; every ancestor directory is added with its current metadata so that extraction recreates its
// owner and mode. Paths are read without following symlinks (an ancestor that is not a directory is an
// error). Files that share an inode are stored once, later paths as hardlinks to the first. The same tree and
// entries give the same bytes. Sockets are left out; a path whose name starts with ".wh." cannot be stored
// and is an error. Entries carry the image's view (file_metadata.hpp): an ownership override, where a file
// has one, gives its uid and gid, and a file capability is stored in its v2 form.
Result<LayerWriteResult> write_layer(const RootFs& root, const std::vector<LayerEntry>& entries, Writer& out,
                                     const LayerWriteOptions& options);

// The diff_id of a layer that holds nothing: a tar of only its two zero blocks, as write_layer() writes for no
// entries, and the digest other builders know as the empty layer.
const Digest& empty_layer_diff_id();

// The entries for a snapshot diff: added and modified paths as they are now, deletions as whiteouts, and a
// replaced directory as it is now with an opaque marker.
std::vector<LayerEntry> layer_entries_from_changes(const std::vector<Change>& changes);

}  // namespace kiln
