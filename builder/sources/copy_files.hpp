#pragma once
// Copying files into a stage's rootfs for COPY (and ADD of local files): from the build context or from
// another stage, through RootFs on both sides, so neither side's symlinks can lead outside its root.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/sources/file_mode.hpp"
#include "common/error.hpp"
#include "dockerfile-parser/dockerignore.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

struct CopyOwner {
    uid_t uid = 0;
    gid_t gid = 0;
};

struct CopyOptions {
    // Owner of everything copied and of directories created on the way; nullopt keeps the source's owners.
    std::optional<CopyOwner> owner;
    // --chmod: changes the mode of every copied file and directory; nullopt keeps the source's modes.
    std::optional<ModeChange> mode;
    // Context copies: paths (relative to the source root) these rules exclude are not copied.
    const dockerfile::IgnoreMatcher* ignore = nullptr;
    // --exclude: paths below a copied directory (relative to it; for --parents, to the pivot) that are left out.
    const dockerfile::IgnoreMatcher* exclude = nullptr;
};

// Copies `source` (in `from`; a final symlink is followed, as Docker does for COPY sources) to `target` (in
// `to`). A file lands at `target`; a directory's contents are copied into `target`, which is created if
// missing (0755, as BuildKit makes it, not with the source directory's mode). Inside directories, symlinks are
// copied as symlinks and files sharing an inode stay hardlinked. Directories created on the way belong to
// `options.owner`, else root. Appends every path it wrote in `to` (relative, symlinks resolved) to `written`.
Status copy_path(const RootFs& from, std::string_view source, const RootFs& to, std::string_view target,
                 const CopyOptions& options, std::vector<std::string>& written);

// COPY --parents: copies `relative` (a path below `pivot` in `from`) to `target_dir`/`relative` in `to`. The
// directories between, and a copied directory itself, are created like their sources (mode, times, owner
// unless `options.owner`), as BuildKit recreates the parents it keeps.
Status copy_path_with_parents(const RootFs& from, std::string_view pivot, std::string_view relative,
                              const RootFs& to, std::string_view target_dir, const CopyOptions& options,
                              std::vector<std::string>& written);

// Writes `content` as the file `target` in `to` (COPY <<EOF), with mode 0644 unless `options.mode` says otherwise.
Status write_inline_file(const RootFs& to, std::string_view target, std::string_view content,
                         const CopyOptions& options, std::vector<std::string>& written);

}  // namespace kiln
