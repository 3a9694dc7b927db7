#pragma once
// Content digests of what a step reads from a tree (COPY's selected files, a RUN bind mount's source), file by
// file: what a cache key covers, and what a miss can name ("src/main.c changed").

#include <map>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "dockerfile-parser/dockerignore.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// Adds to `digests`, under `prefix` + the entry's path in `root`, a digest of each entry at and below `path`:
// its type, permission bits, content (regular files) or target (symlinks), and with `owners` its uid and gid.
// A symlink at `path` itself is followed, as COPY follows its sources; none below it is. mtimes are not
// covered. Entries the ignore rules exclude are left out, as COPY leaves them out of what it copies.
Status digest_tree(const RootFs& root, std::string_view path, const dockerfile::IgnoreMatcher* ignore, bool owners,
                   const std::string& prefix, std::map<std::string, std::string>& digests);

}  // namespace kiln
