#pragma once
// A directory holding an image's filesystem. Every path is resolved inside it as if it were "/": symlinks and
// ".." can never lead outside (openat2 with RESOLVE_IN_ROOT), so an image cannot make kiln touch host files.

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

class RootFs {
public:
    // Opens an existing directory as a rootfs.
    static Result<RootFs> open(const std::string& path);

    int fd() const { return m_fd.get(); }
    const std::string& path() const { return m_path; }

    // Opens `path` (absolute or relative, both taken from the rootfs's "/") with open(2) `flags`, following
    // symlinks inside the rootfs. Add O_NOFOLLOW to open a final symlink itself (with O_PATH).
    Result<UniqueFd> open(std::string_view path, int flags, mode_t mode = 0) const;

    // Opens the directory that contains the last component of `path`, following symlinks in the parents only,
    // and returns it with the last component's name. Fails for the root itself.
    Result<std::pair<UniqueFd, std::string>> open_parent(std::string_view path) const;

    // mkdir -p inside the rootfs. Directories it creates get `mode`, `uid` and `gid`; existing ones (and symlinks
    // that resolve to directories inside the rootfs) are kept as they are. Returns the final directory.
    Result<UniqueFd> make_directories(std::string_view path, mode_t mode, uid_t uid, gid_t gid) const;

    // lstat of `path` without following a final symlink.
    Result<struct stat> lstat(std::string_view path) const;

    // The error message names paths as "<rootfs>/<path>"; this gives that display form.
    std::string display(std::string_view path) const;

private:
    RootFs(UniqueFd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}
    UniqueFd m_fd;
    std::string m_path;
};

// Lexically cleans an in-image path into relative form with no ".", "..", empty components, leading or
// trailing slashes: "/a/./b/../c/" → "a/c", "/" → "". ".." at the top stays at the top, as the kernel does.
std::string clean_path(std::string_view path);

// True when a path, taken relative to a root, climbs above that root ("../x", "a/../../x").
bool escapes_root(std::string_view path);

// openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS relative to `root_fd`.
int openat_in_root(int root_fd, std::string_view path, int flags, mode_t mode);

}  // namespace kiln
