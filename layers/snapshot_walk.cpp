#include "layers/snapshot_walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_set>

#include "common/fd.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

FileType file_type(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFDIR:
            return FileType::directory;
        case S_IFLNK:
            return FileType::symlink;
        case S_IFIFO:
            return FileType::fifo;
        case S_IFCHR:
            return FileType::char_device;
        case S_IFBLK:
            return FileType::block_device;
        case S_IFSOCK:
            return FileType::socket;
        default:
            return FileType::regular;
    }
}

std::int64_t nanoseconds(const struct timespec& time) {
    return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

FileInfo file_info(const struct stat& st) {
    FileInfo info;
    info.type = file_type(st.st_mode);
    info.mode = static_cast<std::uint16_t>(st.st_mode & 07777);
    info.uid = st.st_uid;
    info.gid = st.st_gid;
    info.nlink = static_cast<std::uint32_t>(st.st_nlink);
    info.size = static_cast<std::uint64_t>(st.st_size);
    info.mtime_ns = nanoseconds(st.st_mtim);
    info.ctime_ns = nanoseconds(st.st_ctim);
    info.ino = st.st_ino;
    info.rdev = st.st_rdev;
    return info;
}

Result<std::string> read_symlink(int dir_fd, const std::string& name, size_t size_hint,
                                 const std::string& path) {
    std::string target(std::max<size_t>(size_hint, 64) + 1, '\0');
    while (true) {
        ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
        if (n < 0) return fail_errno(str_cat("readlink ", path));
        if (static_cast<size_t>(n) < target.size()) {
            target.resize(static_cast<size_t>(n));
            return target;
        }
        target.resize(target.size() * 2);  // the link grew since lstat
    }
}

// One directory being walked: its fd, its path and the names still to visit (sorted, so that the walk
// produces path_less order without a global sort).
struct Frame {
    UniqueFd fd;
    std::string path;
    std::vector<std::string> names;
    size_t next = 0;
};

bool same_entry(const FileInfo& a, const FileInfo& b, std::string_view a_target, std::string_view b_target) {
    if (a.type != b.type || a.mode != b.mode || a.uid != b.uid || a.gid != b.gid ||
        a.mtime_ns != b.mtime_ns || a.ino != b.ino)
        return false;
    // A directory's ctime, nlink and size move whenever a child comes or goes; the children speak for
    // themselves.
    if (a.type == FileType::directory) return true;
    return a.size == b.size && a.ctime_ns == b.ctime_ns && a.nlink == b.nlink && a.rdev == b.rdev &&
           a_target == b_target;
}

}  // namespace

std::string_view Snapshot::path(size_t index) const {
    const Record& record = m_records[index];
    return std::string_view(m_strings).substr(record.offset, record.path_size);
}

std::string_view Snapshot::symlink_target(size_t index) const {
    const Record& record = m_records[index];
    return std::string_view(m_strings).substr(record.offset + record.path_size, record.target_size);
}

std::optional<size_t> Snapshot::find(std::string_view wanted) const {
    size_t low = 0;
    size_t high = m_records.size();
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (path_less(path(middle), wanted)) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    if (low < m_records.size() && path(low) == wanted) return low;
    return std::nullopt;
}

void Snapshot::append(std::string_view path, const FileInfo& info, std::string_view symlink_target) {
    m_records.push_back(Record{info, m_strings.size(), static_cast<std::uint32_t>(path.size()),
                               static_cast<std::uint32_t>(symlink_target.size())});
    m_strings.append(path);
    m_strings.append(symlink_target);
}

Result<Snapshot> scan_snapshot(int dir_fd, const ScanOptions& options) {
    std::unordered_set<std::string> excluded;
    for (const std::string& path : options.excluded) excluded.insert(clean_path(path));

    Snapshot snapshot;
    std::vector<Frame> stack;
    UniqueFd root_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd) return fail_errno("open the tree to snapshot");
    KILN_ASSIGN(auto root_names, list_directory(root_fd.get(), "/"));
    stack.push_back(Frame{std::move(root_fd), "", std::move(root_names)});

    while (!stack.empty()) {
        Frame& frame = stack.back();
        if (frame.next == frame.names.size()) {
            stack.pop_back();
            continue;
        }
        const std::string& name = frame.names[frame.next++];
        std::string path = frame.path.empty() ? name : str_cat(frame.path, "/", name);
        if (excluded.contains(path)) continue;
        struct stat st;
        if (::fstatat(frame.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;  // gone since the directory was listed
            return fail_errno(str_cat("lstat /", path));
        }
        FileInfo info = file_info(st);
        std::string target;
        if (info.type == FileType::symlink) {
            KILN_ASSIGN(target,
                        read_symlink(frame.fd.get(), name, static_cast<size_t>(st.st_size), "/" + path));
        }
        snapshot.append(path, info, target);
        if (info.type != FileType::directory) continue;
        UniqueFd child(
            ::openat(frame.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!child) {
            if (errno == EMFILE) return fail_errno(str_cat("open /", path, " (directory tree too deep?)"));
            return fail_errno(str_cat("open /", path));
        }
        KILN_ASSIGN(auto names, list_directory(child.get(), "/" + path));
        // `frame` may dangle once the stack grows.
        stack.push_back(Frame{std::move(child), std::move(path), std::move(names)});
    }
    return snapshot;
}

Result<Snapshot> scan_snapshot(const RootFs& root, const ScanOptions& options) {
    return with_context(scan_snapshot(root.fd(), options), str_cat("snapshot of ", root.path()));
}

std::vector<Change> diff_snapshots(const Snapshot& before, const Snapshot& after) {
    std::vector<Change> changes;
    size_t i = 0;
    size_t j = 0;
    // Skips the entries of `before` below `path`: they went with it.
    auto skip_below = [&](std::string_view path) {
        while (i < before.size() && path_is_under(before.path(i), path)) ++i;
    };
    while (i < before.size() || j < after.size()) {
        if (j == after.size() || (i < before.size() && path_less(before.path(i), after.path(j)))) {
            std::string_view path = before.path(i++);
            changes.push_back({std::string(path), ChangeKind::deleted});
            skip_below(path);
            continue;
        }
        if (i == before.size() || path_less(after.path(j), before.path(i))) {
            changes.push_back({std::string(after.path(j++)), ChangeKind::added});
            continue;
        }
        const FileInfo& old_info = before.info(i);
        const FileInfo& new_info = after.info(j);
        std::string_view path = after.path(j);
        if (old_info.type != new_info.type) {
            changes.push_back({std::string(path), ChangeKind::modified});
            ++i;
            skip_below(path);
        } else {
            if (!same_entry(old_info, new_info, before.symlink_target(i), after.symlink_target(j)))
                changes.push_back({std::string(path), ChangeKind::modified});
            ++i;
        }
        ++j;
    }
    return changes;
}

const char* change_kind_name(ChangeKind kind) {
    switch (kind) {
        case ChangeKind::added:
            return "added";
        case ChangeKind::modified:
            return "modified";
        case ChangeKind::deleted:
            return "deleted";
    }
    return "unknown";
}

}  // namespace kiln
