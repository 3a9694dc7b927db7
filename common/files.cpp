#include "common/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstring>
#include <ctime>
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
      m_lock(std::move(other.m_lock)), m_writer(m_fd.get(), m_path),
      m_committed(std::exchange(other.m_committed, true)) {}

AtomicFile::~AtomicFile() {
    if (!m_committed && !m_temp_path.empty()) ::unlink(m_temp_path.c_str());
}

std::string unique_name_suffix() {
    unsigned char bytes[8];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    if (got < sizeof bytes) {
        // No getrandom (a seccomp filter): the clock and a counter, still unique within this process.
        static std::atomic<std::uint64_t> counter{0};
        std::uint64_t mix = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                            (counter++ * 0x9e3779b97f4a7c15ull) ^ static_cast<std::uint64_t>(::getpid());
        std::memcpy(bytes, &mix, sizeof bytes);
    }
    static const char* digits = "0123456789abcdef";
    std::string text;
    for (unsigned char byte : bytes) {
        text += digits[byte >> 4];
        text += digits[byte & 15];
    }
    return text;
}

Result<AtomicFile> AtomicFile::create(const std::string& path, mode_t mode) {
    std::string temp_path = str_cat(path, ".tmp-", unique_name_suffix());
    UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) return fail_errno(str_cat("create ", temp_path));
    AtomicFile file(path, std::move(temp_path), std::move(fd));
    // Before anything that can fail: the destructor now removes the file. A filesystem without flock (Lustre
    // without -o flock, NFS without a lock manager) still gets its file: remove_stale_temp_files() cannot lock
    // it either, and leaves it alone.
    if (::flock(file.m_fd.get(), LOCK_EX | LOCK_NB) == 0) {
        file.m_lock = UniqueFd(::fcntl(file.m_fd.get(), F_DUPFD_CLOEXEC, 0));
        if (!file.m_lock) return fail_errno(str_cat("dup ", file.m_temp_path));
    } else if (errno != ENOSYS && errno != ENOLCK && errno != EOPNOTSUPP && errno != EINVAL) {
        return fail_errno(str_cat("flock ", file.m_temp_path));
    }
    // The umask must not weaken what the caller asked for.
    if (::fchmod(file.m_fd.get(), mode) != 0) return fail_errno(str_cat("chmod ", file.m_temp_path));
    return file;
}

Status AtomicFile::commit() { return commit_as(m_path); }

Status AtomicFile::commit_as(const std::string& target) {
    if (::close(m_fd.release()) != 0) return fail_errno(str_cat("close ", m_temp_path));
    if (::rename(m_temp_path.c_str(), target.c_str()) != 0) return fail_errno(str_cat("rename to ", target));
    m_committed = true;
    m_lock.reset();
    return {};
}

Status copy_file_data(int in_fd, int out_fd, const std::string& display) {
    while (true) {
        ssize_t n = ::copy_file_range(in_fd, nullptr, out_fd, nullptr, 1 << 30, 0);
        if (n > 0) continue;
        if (n == 0) return {};
        if (errno == EINTR) continue;
        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) break;
        return fail_errno(str_cat("copy to ", display));
    }
    // Pipes, and filesystems that copy_file_range cannot span. FdWriter retries interrupted writes.
    Buffer buffer(1 << 20);
    FdWriter writer(out_fd, display);
    while (true) {
        ssize_t n = ::read(in_fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(str_cat("read the source of ", display));
        }
        if (n == 0) return {};
        KILN_TRY(writer.write(buffer.data(), static_cast<size_t>(n)));
    }
}

Result<size_t> remove_stale_temp_files(const std::string& dir, std::string_view prefix,
                                       std::chrono::seconds min_age) {
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) {
        if (errno == ENOENT) return size_t{0};
        return fail_errno(str_cat("open ", dir));
    }
    KILN_ASSIGN(std::vector<std::string> names, list_directory(dir_fd.get(), dir));
    size_t removed = 0;
    std::time_t now = std::time(nullptr);
    for (const std::string& name : names) {
        if (!name.starts_with(prefix)) continue;
        UniqueFd fd(::openat(dir_fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!fd) continue;  // gone already, or not ours to open
        struct stat st;
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (now - st.st_mtime < min_age.count()) continue;
        // A live writer holds it (or the filesystem cannot tell: then nothing is removed).
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
        if (::unlinkat(dir_fd.get(), name.c_str(), 0) == 0) ++removed;
    }
    return removed;
}

Status AtomicFile::sync() {
    while (::fdatasync(m_fd.get()) != 0) {
        if (errno != EINTR) return fail_errno(str_cat("fdatasync ", m_temp_path));
    }
    return {};
}

Status sync_directory(const std::string& path) {
    UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return fail_errno(str_cat("open ", path));
    if (::fsync(dir.get()) != 0 && errno != EINVAL) return fail_errno(str_cat("fsync ", path));
    return {};
}

Status write_file_durable(const std::string& path, std::string_view bytes, mode_t mode) {
    KILN_ASSIGN(auto file, AtomicFile::create(path, mode));
    KILN_TRY(file.writer().write(bytes));
    KILN_TRY(file.sync());
    KILN_TRY(file.commit());
    return sync_directory(parent_path(path));
}

Status write_file_atomic(const std::string& path, std::string_view bytes, mode_t mode) {
    KILN_ASSIGN(auto file, AtomicFile::create(path, mode));
    KILN_TRY(file.writer().write(bytes));
    return file.commit();
}

Status write_named_file(const std::string& path, std::string_view bytes) {
    struct statx st {};
    bool exists = ::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE, &st) == 0;
    if (!exists && errno != ENOENT) return fail_errno(str_cat("stat ", path));
    if (exists && S_ISDIR(st.stx_mode)) return fail(str_cat(path, " is a directory"));
    bool mounted = exists && (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
    if (!exists || (S_ISREG(st.stx_mode) && !mounted)) return write_file_atomic(path, bytes);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return fail_errno(str_cat("open ", path));
    FdWriter writer(fd.get(), path);
    KILN_TRY(writer.write(bytes));
    if (::close(fd.release()) != 0 && errno != EINTR) return fail_errno(str_cat("close ", path));
    return {};
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

std::string join_path(std::string_view dir, std::string_view name) {
    return dir.empty() ? std::string(name) : str_cat(dir, "/", name);
}

std::string parent_path(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return ".";
    if (slash == 0) return "/";
    return std::string(path.substr(0, slash));
}

std::string file_name(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return std::string(path);
    return std::string(path.substr(slash + 1));
}

}  // namespace kiln
