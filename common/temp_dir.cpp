#include "common/temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// `device`: when not 0, a directory on another file system (a mount point) is left alone, not descended into.
Status remove_entry(int parent_fd, const std::string& name, const std::string& display, dev_t device,
                    std::string_view last = {});

// Removes what `dir_fd` holds; the entry named `last`, if any, after the others.
Status remove_children(int dir_fd, const std::string& display, dev_t device, std::string_view last = {}) {
    KILN_ASSIGN(std::vector<std::string> names, list_directory(dir_fd, display));
    std::stable_partition(names.begin(), names.end(), [&](const std::string& name) { return name != last; });
    for (const std::string& name : names) KILN_TRY(remove_entry(dir_fd, name, display + "/" + name, device));
    return {};
}

Status remove_entry(int parent_fd, const std::string& name, const std::string& display, dev_t device,
                    std::string_view last) {
    if (::unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno != EISDIR && errno != EPERM) return fail_errno(str_cat("unlink ", display));
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return {};
        return fail_errno(str_cat("stat ", display));
    }
    if (!S_ISDIR(st.st_mode)) return fail(str_cat("unlink ", display, ": permission denied"));
    if (device != 0 && st.st_dev != device) return fail(str_cat(display, " is on another file system (a mount point): left alone"));
    // A directory we may not list or modify (an image's 0000 dir, overlay's work dir) is opened up first.
    if ((st.st_mode & 0700) != 0700) ::fchmodat(parent_fd, name.c_str(), st.st_mode | 0700, 0);
    UniqueFd dir_fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir_fd) return errno == ENOENT ? Status{} : fail_errno(str_cat("open ", display));
    KILN_TRY(remove_children(dir_fd.get(), display, device, last));
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail_errno(str_cat("rmdir ", display));
    return {};
}

}  // namespace

Status remove_tree_contents(int dir_fd, const std::string& name_for_errors) {
    return remove_children(dir_fd, name_for_errors, 0);
}

Status remove_tree(const std::string& path, bool one_file_system, std::string_view last) {
    std::string parent = path;
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    size_t slash = parent.rfind('/');
    std::string name = slash == std::string::npos ? parent : parent.substr(slash + 1);
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : parent.substr(0, slash));
    UniqueFd parent_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_fd) return errno == ENOENT ? Status{} : fail_errno(str_cat("open ", dir));
    dev_t device = 0;
    if (one_file_system) {
        struct stat st;
        if (::fstatat(parent_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno == ENOENT ? Status{} : fail_errno(str_cat("stat ", path));
        device = st.st_dev;
    }
    return remove_entry(parent_fd.get(), name, path, device, last);
}

Result<TempDir> TempDir::create(const std::string& parent, const std::string& prefix) {
    std::string pattern = parent + "/" + prefix + "XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!::mkdtemp(buffer.data())) return fail_errno(str_cat("mkdtemp ", pattern));
    return TempDir(std::string(buffer.data()));
}

TempDir::TempDir(TempDir&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
    if (this != &other) {
        if (!m_path.empty()) (void)remove_tree(m_path);
        m_path = std::exchange(other.m_path, {});
    }
    return *this;
}

TempDir::~TempDir() {
    if (m_path.empty()) return;
    if (auto removed = remove_tree(m_path); !removed)
        log_warn("could not remove temporary directory: ", removed.error().message());
}

std::string TempDir::release() { return std::exchange(m_path, {}); }

std::string default_temp_parent() {
    const char* tmpdir = std::getenv("TMPDIR");
    return tmpdir && *tmpdir ? tmpdir : "/var/tmp";
}

}  // namespace kiln
