#include "builder/sandbox/mount_stubs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

bool same_time(const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

constexpr mode_t k_directory_mode = 0755;
constexpr mode_t k_file_mode = 0644;

}  // namespace

MountStubs::~MountStubs() {
    if (auto removed = remove(); !removed)
        log_warn("leaving a mount point stub behind: ", removed.error().message());
}

Status MountStubs::ensure(const RootFs& rootfs, std::string_view path, StubKind kind) {
    std::vector<std::string> parts = split(clean_path(path), '/');
    std::string prefix;
    for (size_t i = 0; i < parts.size(); ++i) {
        prefix = prefix.empty() ? parts[i] : prefix + "/" + parts[i];
        bool last = i + 1 == parts.size();
        auto existing = rootfs.lstat(prefix);
        if (existing) {
            if (last) return {};
            continue;  // a directory, or a symlink that the next lookup resolves inside the rootfs
        }
        if (existing.error().errno_value() != ENOENT) return fail(std::move(existing).error());

        KILN_ASSIGN(auto parent_path, rootfs.open_parent(prefix));
        // O_PATH allows neither futimens nor reading the directory; reopen it for real.
        UniqueFd parent(::openat(parent_path.first.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!parent) return fail_errno(str_cat("open the parent of ", rootfs.display(prefix)));
        Stub stub;
        stub.name = parent_path.second;
        stub.display = rootfs.display(prefix);
        stub.kind = last ? kind : StubKind::directory;
        struct stat before;
        if (::fstat(parent.get(), &before) != 0)
            return fail_errno(str_cat("stat the parent of ", stub.display));
        stub.parent_atime = before.st_atim;
        stub.parent_mtime = before.st_mtim;

        if (stub.kind == StubKind::directory) {
            if (::mkdirat(parent.get(), stub.name.c_str(), k_directory_mode) != 0)
                return fail_errno(str_cat("mkdir ", stub.display));
            if (::fchmodat(parent.get(), stub.name.c_str(), k_directory_mode, 0) != 0)
                return fail_errno(str_cat("chmod ", stub.display));
        } else {
            UniqueFd file(::openat(parent.get(), stub.name.c_str(),
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, k_file_mode));
            if (!file) return fail_errno(str_cat("create ", stub.display));
            if (::fchmod(file.get(), k_file_mode) != 0) return fail_errno(str_cat("chmod ", stub.display));
        }
        struct stat created, after;
        if (::fstatat(parent.get(), stub.name.c_str(), &created, AT_SYMLINK_NOFOLLOW) != 0 ||
            ::fstat(parent.get(), &after) != 0)
            return fail_errno(str_cat("stat ", stub.display));
        stub.inode = created.st_ino;
        stub.mtime = created.st_mtim;
        stub.parent_mtime_after = after.st_mtim;
        stub.parent = std::move(parent);
        m_stubs.push_back(std::move(stub));
    }
    return {};
}

Status MountStubs::remove() {
    Status first_error;
    while (!m_stubs.empty()) {
        Status removed = remove_one(m_stubs.back());
        if (!removed && first_error) first_error = std::move(removed);
        m_stubs.pop_back();
    }
    return first_error;
}

Status MountStubs::remove_one(Stub& stub) {
    struct stat now;
    if (::fstatat(stub.parent.get(), stub.name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return {};  // the RUN removed it itself
        return fail_errno(str_cat("stat ", stub.display));
    }
    bool untouched =
        now.st_ino == stub.inode &&
        (stub.kind == StubKind::directory ? S_ISDIR(now.st_mode) && same_time(now.st_mtim, stub.mtime)
                                          : S_ISREG(now.st_mode) && now.st_size == 0);
    if (!untouched) {
        log_info("keeping ", stub.display, ": the RUN step changed this mount point stub");
        return {};
    }
    struct stat parent_before;
    if (::fstat(stub.parent.get(), &parent_before) != 0)
        return fail_errno(str_cat("stat the parent of ", stub.display));
    int flags = stub.kind == StubKind::directory ? AT_REMOVEDIR : 0;
    if (::unlinkat(stub.parent.get(), stub.name.c_str(), flags) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST) {
            log_info("keeping ", stub.display, ": the RUN step wrote into this mount point stub");
            return {};
        }
        return fail_errno(str_cat("remove ", stub.display));
    }
    // If the RUN left the parent alone, it gets back its timestamps from before the stub; otherwise it keeps
    // the RUN's, not the time of this removal.
    timespec times[2] = {parent_before.st_atim, parent_before.st_mtim};
    if (same_time(parent_before.st_mtim, stub.parent_mtime_after)) {
        times[0] = stub.parent_atime;
        times[1] = stub.parent_mtime;
    }
    if (::futimens(stub.parent.get(), times) != 0)
        return fail_errno(str_cat("restore the timestamps of the parent of ", stub.display));
    return {};
}

}  // namespace kiln
