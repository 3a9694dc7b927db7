#pragma once
// ADD of a local archive: Docker unpacks a tar, plain or compressed with gzip, bzip2, xz or zstd (recognised
// by its content, never by its name), into the destination directory instead of copying the file. Archives
// are hostile input: they are unpacked by the layer extractor in its archive mode, confined to the
// destination.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/sources/copy_files.hpp"
#include "common/error.hpp"
#include "common/stream.hpp"
#include "layers/extract.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// The compressions Docker's ADD recognises, by their magic bytes.
enum class ArchiveCompression { none, gzip, bzip2, xz, zstd };

// The compression whose magic number starts `first_bytes`; none for anything else.
ArchiveCompression detect_archive_compression(std::string_view first_bytes);

// A Reader of the decompressed bytes of `inner` (which must outlive it), whatever the compression it starts
// with; plain data passes through. Broken compressed data is an error when it is read.
Result<std::unique_ptr<Reader>> open_decompressed(Reader& inner);

// True when `path` in `root` (a final symlink followed) is a regular file holding a tar archive, possibly
// compressed: its first tar header can be read, as Docker decides. Anything else (text, a gzip of something
// that is not a tar, data broken from its start) is copied as it is.
Result<bool> is_tar_archive(const RootFs& root, std::string_view path);

struct ArchiveUnpack {
    // --chown: the owner of every entry and of the directories created; nullopt keeps the archive's owners.
    std::optional<CopyOwner> owner;
    OwnershipFailure ownership_failure = OwnershipFailure::error;
};

// Unpacks the archive at `path` in `from` into the directory `target_dir` of `to` (made, with missing
// parents, when it does not exist), confined to that directory the way Docker's chrooted untar is. Appends
// every path written in `to` (relative, symlinks resolved) to `written`. An error names the archive and the
// entry.
Status unpack_archive(const RootFs& from, std::string_view path, const RootFs& to,
                      std::string_view target_dir, const ArchiveUnpack& options,
                      std::vector<std::string>& written);

}  // namespace kiln
