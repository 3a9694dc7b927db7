#pragma once
// A directory holding an image's filesystem. Every path is resolved inside it as if it were "/": symlinks and
// ".." can never lead outside (openat2 with RESOLVE_IN_ROOT), so an image cannot make kiln touch host files.

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"

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

    // mkdir -p inside the rootfs. Directories it creates get `mode`, `uid` and `gid` (ids the user namespace
    // cannot hold are recorded as their ownership override, file_metadata.hpp); existing ones (and symlinks that
    // resolve to directories inside the rootfs) are kept as they are. Returns the final directory.
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

// The same for a path that is already relative and NUL-terminated. It does not allocate, so a child process
// between clone() and exec may call it.
int openat_in_root_raw(int root_fd, const char* relative_path, int flags, mode_t mode);

// Depth-first order of cleaned paths: a directory sorts right before its own entries ("a" < "a/b" < "a-b"),
// which is how layers list their entries and how snapshots are compared.
bool path_less(std::string_view a, std::string_view b);

// True when `path` is strictly below `directory` ("a/b" is under "a"; "ab" is not). "" is the root.
bool path_is_under(std::string_view path, std::string_view directory);

// Splits a cleaned, non-empty path into its directory ("" for the root) and its last component.
std::pair<std::string_view, std::string_view> split_parent(std::string_view path);

// Removes `name` from the directory `parent_fd` (recursively for a directory), never following a symlink.
// A missing entry is not an error. `display` names it in errors.
Status remove_at(int parent_fd, const std::string& name, const std::string& display);


}  // namespace kiln
