#include "common/temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

Status remove_entry(int parent_fd, const std::string& name, const std::string& display);

Status remove_children(int dir_fd, const std::string& display) {
    KILN_ASSIGN(std::vector<std::string> names, list_directory(dir_fd, display));
    for (const std::string& name : names) KILN_TRY(remove_entry(dir_fd, name, display + "/" + name));
    return {};
}

Status remove_entry(int parent_fd, const std::string& name, const std::string& display) {
    if (::unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno != EISDIR && errno != EPERM) return fail_errno(str_cat("unlink ", display));
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return fail_errno(str_cat("stat ", display));
    if (!S_ISDIR(st.st_mode)) return fail(str_cat("unlink ", display, ": permission denied"));
    // A directory we may not list or modify (an image's 0000 dir, overlay's work dir) is opened up first.
    if ((st.st_mode & 0700) != 0700) ::fchmodat(parent_fd, name.c_str(), st.st_mode | 0700, 0);
    UniqueFd dir_fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir_fd) return fail_errno(str_cat("open ", display));
    KILN_TRY(remove_children(dir_fd.get(), display));
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail_errno(str_cat("rmdir ", display));
    return {};
}

}  // namespace

Status remove_tree_contents(int dir_fd, const std::string& name_for_errors) {
    return remove_children(dir_fd, name_for_errors);
}

Status remove_tree(const std::string& path) {
    std::string parent = path;
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    size_t slash = parent.rfind('/');
    std::string name = slash == std::string::npos ? parent : parent.substr(slash + 1);
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : parent.substr(0, slash));
    UniqueFd parent_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_fd) return errno == ENOENT ? Status{} : fail_errno(str_cat("open ", dir));
    return remove_entry(parent_fd.get(), name, path);
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
