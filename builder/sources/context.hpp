#pragma once
// The build context: a directory read through a RootFs (so a symlink in it cannot reach outside it) and the
// .dockerignore rules that hide files from COPY.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "dockerfile-parser/dockerignore.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

class BuildContext {
public:
    // Opens `dir` and reads its ignore rules: `<dockerfile>.dockerignore` beside the Dockerfile when it
    // exists, else `.dockerignore` at the context root.
    static Result<BuildContext> open(const std::string& dir, const std::string& dockerfile_path);

    const RootFs& root() const { return m_root; }
    const dockerfile::IgnoreMatcher* ignore() const { return m_ignore ? &*m_ignore : nullptr; }

private:
    BuildContext(RootFs root, std::optional<dockerfile::IgnoreMatcher> ignore)
        : m_root(std::move(root)), m_ignore(std::move(ignore)) {}
    RootFs m_root;
    std::optional<dockerfile::IgnoreMatcher> m_ignore;
};

// Expands a COPY source inside `root` the way BuildKit does. A path without wildcards names itself, and is an
// error when it does not exist or the ignore rules exclude it. From its first component holding '*', '?' or
// '[…]' ('\' escapes them) on, each component matches directory entries by filepath.Match rules, only real
// directories are searched below, and a matching directory is not searched further. A wildcard that matches
// nothing gives an empty list, as BuildKit allows. Returns cleaned relative paths, in depth-first order.
Result<std::vector<std::string>> expand_sources(const RootFs& root, std::string_view pattern,
                                                const dockerfile::IgnoreMatcher* ignore);

// True when a source pattern holds an unescaped wildcard.
bool has_wildcards(std::string_view pattern);

// The cleaned part of a source pattern before its first wildcard component ("src" for "src/*/x.txt"; the
// whole path when there is none): what --exclude patterns of the sources it matches are relative to.
std::string wildcard_base(std::string_view pattern);

// The path of an open file or directory relative to `root`, symlinks resolved ("" for the root itself).
Result<std::string> path_in_root(const RootFs& root, int fd);

}  // namespace kiln
