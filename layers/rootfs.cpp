#include "layers/rootfs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/file_metadata.hpp"

namespace kiln {

int openat_in_root(int root_fd, std::string_view path, int flags, mode_t mode) {
    std::string relative = clean_path(path);
    if (relative.empty()) relative = ".";
    return openat_in_root_raw(root_fd, relative.c_str(), flags, mode);
}

int openat_in_root_raw(int root_fd, const char* relative_path, int flags, mode_t mode) {
    open_how how{};
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (true) {
        long fd = ::syscall(SYS_openat2, root_fd, relative_path, &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
        // EAGAIN: a rename raced with the lookup; the kernel asks us to retry.
    }
}

std::string clean_path(std::string_view path) {
    std::vector<std::string> parts;
    for (const std::string& part : split(path, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(part);
    }
    return join(parts, "/");
}

bool escapes_root(std::string_view path) {
    int depth = 0;
    for (const std::string& part : split(path, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (--depth < 0) return true;
        } else {
            ++depth;
        }
    }
    return false;
}

bool path_less(std::string_view a, std::string_view b) {
    size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < common; ++i) {
        if (a[i] == b[i]) continue;
        // '/' ends a component, so it sorts before every byte a name can hold.
        unsigned ca = a[i] == '/' ? 0u : static_cast<unsigned char>(a[i]);
        unsigned cb = b[i] == '/' ? 0u : static_cast<unsigned char>(b[i]);
        return ca < cb;
    }
    return a.size() < b.size();
}

bool path_is_under(std::string_view path, std::string_view directory) {
    if (directory.empty()) return !path.empty();
    return path.size() > directory.size() && path.starts_with(directory) && path[directory.size()] == '/';
}

std::pair<std::string_view, std::string_view> split_parent(std::string_view path) {
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return {std::string_view(), path};
    return {path.substr(0, slash), path.substr(slash + 1)};
}

Status remove_at(int parent_fd, const std::string& name, const std::string& display) {
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return {};
        return fail_errno(str_cat("lstat ", display));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT)
            return fail_errno(str_cat("unlink ", display));
        return {};
    }
    // A directory we may not list or modify (an image's 0000 directory) is opened up first.
    if ((st.st_mode & 0700) != 0700) ::fchmodat(parent_fd, name.c_str(), (st.st_mode & 07777) | 0700, 0);
    UniqueFd dir_fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir_fd) return fail_errno(str_cat("open ", display));
    KILN_TRY(remove_tree_contents(dir_fd.get(), display));
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail_errno(str_cat("rmdir ", display));
    return {};
}

Result<RootFs> RootFs::open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open rootfs ", path));
    return RootFs(std::move(fd), path);
}

std::string RootFs::display(std::string_view path) const { return str_cat(m_path, "/", clean_path(path)); }

Result<UniqueFd> RootFs::open(std::string_view path, int flags, mode_t mode) const {
    UniqueFd fd(openat_in_root(m_fd.get(), path, flags, mode));
    if (!fd) return fail_errno(str_cat("open ", display(path)));
    return fd;
}

Result<std::pair<UniqueFd, std::string>> RootFs::open_parent(std::string_view path) const {
    std::string cleaned = clean_path(path);
    if (cleaned.empty()) return fail(str_cat("\"", path, "\" names the root directory, which has no parent"));
    size_t slash = cleaned.rfind('/');
    std::string parent = slash == std::string::npos ? "" : cleaned.substr(0, slash);
    std::string leaf = slash == std::string::npos ? cleaned : cleaned.substr(slash + 1);
    KILN_ASSIGN(UniqueFd parent_fd, open(parent, O_PATH | O_DIRECTORY));
    return std::pair{std::move(parent_fd), std::move(leaf)};
}

Result<UniqueFd> RootFs::make_directories(std::string_view path, mode_t mode, uid_t uid, gid_t gid) const {
    std::string cleaned = clean_path(path);
    std::string prefix;
    KILN_ASSIGN(UniqueFd current, open("", O_PATH | O_DIRECTORY));
    for (const std::string& part : split(cleaned, '/')) {
        if (part.empty()) continue;
        prefix = prefix.empty() ? part : prefix + "/" + part;
        if (::mkdirat(current.get(), part.c_str(), mode) == 0) {
            // mkdir honours the umask and the caller's ids; the image's intent is applied explicitly (or
            // recorded, where a single-id user namespace cannot hold it).
            KILN_TRY(change_owner(current.get(), part.c_str(), uid, gid, S_IFDIR | mode, display(prefix)));
            if (::fchmodat(current.get(), part.c_str(), mode, 0) != 0)
                return fail_errno(str_cat("chmod ", display(prefix)));
        } else if (errno != EEXIST) {
            return fail_errno(str_cat("mkdir ", display(prefix)));
        }
        // Re-resolve from the root so that an existing symlink component is followed inside the rootfs.
        KILN_ASSIGN(current, open(prefix, O_PATH | O_DIRECTORY));
    }
    return current;
}

Result<struct stat> RootFs::lstat(std::string_view path) const {
    std::string cleaned = clean_path(path);
    struct stat st;
    if (cleaned.empty()) {
        if (::fstat(m_fd.get(), &st) != 0) return fail_errno(str_cat("stat ", m_path));
        return st;
    }
    KILN_ASSIGN(auto parent, open_parent(cleaned));
    if (::fstatat(parent.first.get(), parent.second.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail_errno(str_cat("lstat ", display(cleaned)));
    return st;
}

}  // namespace kiln
