#include "builder/sandbox/seccomp_caller.hpp"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/proc_files.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"

namespace kiln {

bool Caller::read(std::uint64_t address, void* out, size_t size) const {
    return ::pread(memory.get(), out, size, static_cast<off_t>(address)) == static_cast<ssize_t>(size);
}

bool Caller::write(std::uint64_t address, const void* in, size_t size) const {
    return ::pwrite(memory.get(), in, size, static_cast<off_t>(address)) == static_cast<ssize_t>(size);
}

Result<std::string> Caller::read_path(std::uint64_t address) const {
    constexpr size_t page = 4096;
    std::string text;
    char buffer[page];
    while (text.size() < PATH_MAX) {
        size_t chunk = page - address % page;
        ssize_t got = ::pread(memory.get(), buffer, chunk, static_cast<off_t>(address));
        if (got <= 0) return fail(Error::from_errno("read the caller's path", EFAULT));
        const char* end = static_cast<const char*>(std::memchr(buffer, '\0', static_cast<size_t>(got)));
        if (end) return text.append(buffer, static_cast<size_t>(end - buffer));
        text.append(buffer, static_cast<size_t>(got));
        address += static_cast<std::uint64_t>(got);
    }
    return fail(Error::from_errno("read the caller's path", ENAMETOOLONG));
}

std::optional<mode_t> Caller::umask() const {
    std::optional<std::string> status = read_proc_file(proc.get(), "status");
    std::optional<std::string> field = status ? status_field(*status, "Umask") : std::nullopt;
    if (!field || field->empty()) return std::nullopt;
    mode_t mask = 0;
    for (char c : *field) {
        if (c < '0' || c > '7') return std::nullopt;
        mask = static_cast<mode_t>(mask * 8 + static_cast<mode_t>(c - '0'));
    }
    return mask & 0777;
}

Result<UniqueFd> Caller::open_descriptor(int descriptor) const {
    std::string name = descriptor == AT_FDCWD ? "cwd" : str_cat("fd/", descriptor);
    UniqueFd opened(::openat(proc.get(), name.c_str(), O_PATH | O_CLOEXEC));
    if (!opened) return fail(Error::from_errno(name, errno == ENOENT ? EBADF : errno));
    return opened;
}

Result<std::string> Caller::absolute_path(int dirfd, const std::string& path) const {
    if (path.starts_with('/')) return path;
    std::string link = dirfd == AT_FDCWD ? "cwd" : str_cat("fd/", dirfd);
    // The links read as paths from the mount namespace's root; a chroot inside it is the caller's root.
    std::optional<std::string> base = read_proc_link(proc.get(), link);
    std::optional<std::string> root = read_proc_link(proc.get(), "root");
    KILN_ASSIGN(UniqueFd directory, open_descriptor(dirfd));
    struct stat st {};
    if (!base || !root || !base->starts_with('/') || ::fstat(directory.get(), &st) != 0 || st.st_nlink == 0)
        return fail(Error::from_errno(link, ENOENT));
    if (*root != "/") {
        if (*base != *root && !base->starts_with(*root + "/")) return fail(Error::from_errno(link, ENOENT));
        base = base->substr(root->size());
    }
    return str_cat(*base, "/", path);
}

Result<UniqueFd> Caller::open_in_root(int dirfd, const std::string& path, std::uint64_t flags, mode_t mode) const {
    KILN_ASSIGN(std::string absolute, absolute_path(dirfd, path));
    UniqueFd root(::openat(proc.get(), "root", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_errno("open the caller's root");
    open_how how{};
    how.flags = flags | O_CLOEXEC;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd = -1;
    do {
        fd = ::syscall(SYS_openat2, root.get(), absolute.c_str(), &how, sizeof how);
    } while (fd < 0 && errno == EAGAIN);  // a rename raced the lookup
    if (fd < 0) return fail_errno(str_cat("openat2 ", absolute));
    return UniqueFd(static_cast<int>(fd));
}

std::optional<gid_t> Caller::setgid_parent_group(int dirfd, const std::string& path) const {
    std::string parent = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
    auto directory = open_in_root(dirfd, parent.empty() ? "/" : parent, O_PATH | O_DIRECTORY, 0);
    struct stat st {};
    if (!directory || ::fstat(directory->get(), &st) != 0 || !(st.st_mode & S_ISGID)) return std::nullopt;
    std::optional<OverrideStat> recorded = read_override_stat(directory->get(), nullptr);
    return recorded ? recorded->gid : st.st_gid;
}

}  // namespace kiln
