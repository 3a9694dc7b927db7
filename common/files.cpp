#include "common/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <utility>

#include "common/strings.hpp"

namespace kiln {

Result<std::string> read_file(const std::string& path, size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", path));
    FdReader reader(fd.get(), path);
    return with_context(read_all(reader, limit), path);
}

AtomicFile::AtomicFile(std::string path, std::string temp_path, UniqueFd fd)
    : m_path(std::move(path)), m_temp_path(std::move(temp_path)), m_fd(std::move(fd)),
      m_writer(m_fd.get(), m_path) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_path(std::move(other.m_path)), m_temp_path(std::move(other.m_temp_path)), m_fd(std::move(other.m_fd)),
      m_writer(m_fd.get(), m_path), m_committed(std::exchange(other.m_committed, true)) {}

AtomicFile::~AtomicFile() {
    if (!m_committed && !m_temp_path.empty()) ::unlink(m_temp_path.c_str());
}

Result<AtomicFile> AtomicFile::create(const std::string& path, mode_t mode) {
    static std::atomic<unsigned> counter{0};
    std::string temp_path = str_cat(path, ".tmp-", ::getpid(), "-", counter++);
    UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) return fail_errno(str_cat("create ", temp_path));
    // The umask must not weaken what the caller asked for.
    if (::fchmod(fd.get(), mode) != 0) return fail_errno(str_cat("chmod ", temp_path));
    return AtomicFile(path, std::move(temp_path), std::move(fd));
}

Status AtomicFile::commit() { return commit_as(m_path); }

Status AtomicFile::commit_as(const std::string& target) {
    if (::close(m_fd.release()) != 0) return fail_errno(str_cat("close ", m_temp_path));
    if (::rename(m_temp_path.c_str(), target.c_str()) != 0) return fail_errno(str_cat("rename to ", target));
    m_committed = true;
    return {};
}

Status write_file_atomic(const std::string& path, std::string_view bytes, mode_t mode) {
    KILN_ASSIGN(auto file, AtomicFile::create(path, mode));
    KILN_TRY(file.writer().write(bytes));
    return file.commit();
}

Status make_directories(const std::string& path, mode_t mode) {
    if (path.empty()) return {};
    std::string prefix;
    for (const std::string& part : split(path, '/')) {
        prefix += part;
        if (!part.empty() && ::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST)
            return fail_errno(str_cat("mkdir ", prefix));
        prefix += '/';
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return fail_errno(str_cat("stat ", path));
    if (!S_ISDIR(st.st_mode)) return fail(str_cat(path, " exists and is not a directory"));
    return {};
}

Result<std::string> read_link_at(int dir_fd, const std::string& name, const std::string& display) {
    std::string target(256, '\0');
    while (true) {
        ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
        if (n < 0) return fail_errno(str_cat("readlink ", display));
        if (static_cast<size_t>(n) < target.size()) {
            target.resize(static_cast<size_t>(n));
            return target;
        }
        target.resize(target.size() * 2);  // it may have been cut: ask again with room to spare
    }
}

Result<std::vector<std::pair<std::string, std::string>>> read_xattrs(int fd, const std::string& path) {
    // Sizes are asked for first; ERANGE means the attributes grew in between, so ask again.
    auto list = [&](char* buffer, size_t size) {
        return fd >= 0 ? ::flistxattr(fd, buffer, size) : ::llistxattr(path.c_str(), buffer, size);
    };
    auto get = [&](const std::string& name, char* buffer, size_t size) {
        return fd >= 0 ? ::fgetxattr(fd, name.c_str(), buffer, size)
                       : ::lgetxattr(path.c_str(), name.c_str(), buffer, size);
    };
    std::vector<std::pair<std::string, std::string>> xattrs;
    std::string names;
    while (true) {
        ssize_t size = list(nullptr, 0);
        if (size < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) return xattrs;
        if (size < 0) return fail_errno(str_cat("list the extended attributes of ", path));
        names.resize(static_cast<size_t>(size));
        size = size == 0 ? 0 : list(names.data(), names.size());
        if (size >= 0) {
            names.resize(static_cast<size_t>(size));
            break;
        }
        if (errno != ERANGE) return fail_errno(str_cat("list the extended attributes of ", path));
    }
    for (const std::string& name : split(names, '\0')) {
        if (name.empty()) continue;
        std::string value;
        while (true) {
            ssize_t size = get(name, nullptr, 0);
            if (size < 0) break;
            value.resize(static_cast<size_t>(size));
            size = size == 0 ? 0 : get(name, value.data(), value.size());
            if (size >= 0) {
                value.resize(static_cast<size_t>(size));
                xattrs.emplace_back(name, std::move(value));
                break;
            }
            if (errno != ERANGE) break;
        }
    }
    return xattrs;
}

Result<std::vector<std::string>> list_directory(int dir_fd, const std::string& display) {
    int listing_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (listing_fd < 0) return fail_errno(str_cat("open ", display));
    DIR* dir = ::fdopendir(listing_fd);
    if (!dir) {
        ::close(listing_fd);
        return fail_errno(str_cat("fdopendir ", display));
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name != "." && name != "..") names.emplace_back(name);
        errno = 0;
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return fail_errno(str_cat("readdir ", display), err);
    std::sort(names.begin(), names.end());
    return names;
}

bool path_exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

std::string parent_path(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return ".";
    if (slash == 0) return "/";
    return std::string(path.substr(0, slash));
}

}  // namespace kiln
