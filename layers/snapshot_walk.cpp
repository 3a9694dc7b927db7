#include "layers/snapshot_walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unordered_set>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "layers/tar_entry.hpp"

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

// The hex SHA-256 of the regular file `name` in `dir_fd`.
Result<std::string> content_digest_of(int dir_fd, const std::string& name, const std::string& path) {
    // O_NONBLOCK: a file swapped for a FIFO since lstat makes the read fail instead of hang.
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open /", path));
    Sha256 hash;
    char buffer[128 << 10];
    while (true) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno(str_cat("read /", path));
        if (n == 0) break;
        hash.update(buffer, static_cast<size_t>(n));
    }
    return hash.finish_hex();
}

// One directory being walked: its fd, its path and the names still to visit (sorted, so that the walk
// produces path_less order without a global sort).
struct Frame {
    UniqueFd fd;
    std::string path;
    std::vector<std::string> names;
    size_t next = 0;
};

bool records_xattrs(SnapshotMode mode) { return mode == SnapshotMode::metadata || mode == SnapshotMode::full; }

// Whether two states of one path are the same entry as `mode` sees it; the type is already known equal.
bool same_entry(const Snapshot& before, size_t i, const Snapshot& after, size_t j, SnapshotMode mode) {
    const FileInfo& a = before.info(i);
    const FileInfo& b = after.info(j);
    if (a.mtime_ns != b.mtime_ns) return false;
    if (mode == SnapshotMode::time) return true;
    if (a.mode != b.mode || a.uid != b.uid || a.gid != b.gid) return false;
    bool directory = a.type == FileType::directory;
    // A directory's ctime, nlink and size move whenever a child comes or goes; the children speak for
    // themselves.
    if (mode == SnapshotMode::redo) return directory || a.size == b.size;
    if (before.xattrs(i) != after.xattrs(j)) return false;
    if (directory) return mode == SnapshotMode::full || a.ino == b.ino;
    if (a.size != b.size || a.rdev != b.rdev || before.symlink_target(i) != after.symlink_target(j)) return false;
    if (mode == SnapshotMode::full) return before.content_digest(i) == after.content_digest(j);
    return a.nlink == b.nlink && a.ctime_ns == b.ctime_ns && a.ino == b.ino;
}

// A directory removed and made again: a new inode where the same path was a directory before.
bool replaced_directory(const FileInfo& a, const FileInfo& b, SnapshotMode mode) {
    return mode == SnapshotMode::metadata && a.type == FileType::directory && a.ino != b.ino;
}

}  // namespace

Result<SnapshotMode> parse_snapshot_mode(std::string_view text) {
    std::string mode = to_lower(text);
    if (mode == "full") return SnapshotMode::full;
    if (mode == "redo") return SnapshotMode::redo;
    if (mode == "time") return SnapshotMode::time;
    if (mode == "metadata") return SnapshotMode::metadata;
    return fail(str_cat("unknown snapshot mode \"", text, "\" (full, redo, time or metadata)"));
}

const char* snapshot_mode_name(SnapshotMode mode) {
    switch (mode) {
        case SnapshotMode::metadata:
            return "metadata";
        case SnapshotMode::full:
            return "full";
        case SnapshotMode::redo:
            return "redo";
        case SnapshotMode::time:
            return "time";
    }
    return "unknown";
}

std::string read_xattrs_encoded(int dir_fd, const std::string& name, std::optional<OverrideStat>* recorded) {
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d/", dir_fd);
    auto all = read_xattrs(-1, proc + name);
    if (!all) return {};  // best-effort, as the layer writer's warning covers what cannot be read
    if (recorded) {
        for (const auto& [key, value] : *all)
            if (key == k_override_stat_xattr) *recorded = parse_override_stat(value);
    }
    std::erase_if(*all, [](const auto& xattr) { return is_host_private_xattr(xattr.first); });
    std::sort(all->begin(), all->end());
    std::string encoded;
    for (const auto& [key, value] : *all) {
        encoded += key;
        encoded += '\0';
        encoded += std::to_string(value.size());
        encoded += ':';
        encoded += value;
    }
    return encoded;
}

std::string_view Snapshot::path(size_t index) const {
    const Record& record = m_records[index];
    return std::string_view(m_strings).substr(record.offset, record.path_size);
}

std::string_view Snapshot::symlink_target(size_t index) const {
    const Record& record = m_records[index];
    return std::string_view(m_strings).substr(record.offset + record.path_size, record.target_size);
}

std::string_view Snapshot::xattrs(size_t index) const {
    const Record& record = m_records[index];
    return std::string_view(m_strings).substr(record.offset + record.path_size + record.target_size,
                                              record.xattrs_size);
}

std::string_view Snapshot::content_digest(size_t index) const {
    const Record& record = m_records[index];
    return std::string_view(m_strings).substr(
        record.offset + record.path_size + record.target_size + record.xattrs_size, record.digest_size);
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

void Snapshot::append(std::string_view path, const FileInfo& info, std::string_view symlink_target,
                      std::string_view xattrs, std::string_view content_digest) {
    m_records.push_back(Record{info, m_strings.size(), static_cast<std::uint32_t>(path.size()),
                               static_cast<std::uint32_t>(symlink_target.size()),
                               static_cast<std::uint32_t>(xattrs.size()),
                               static_cast<std::uint32_t>(content_digest.size())});
    m_strings.append(path);
    m_strings.append(symlink_target);
    m_strings.append(xattrs);
    m_strings.append(content_digest);
}

Result<Snapshot> scan_snapshot(int dir_fd, const ScanOptions& options) {
    std::unordered_set<std::string> excluded;
    for (const std::string& path : options.excluded) excluded.insert(clean_path(path));
    const Snapshot* previous = options.mode == SnapshotMode::full && options.previous &&
                                       options.previous->mode() == SnapshotMode::full
                                   ? options.previous
                                   : nullptr;

    Snapshot snapshot;
    snapshot.set_mode(options.mode);
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
        std::string path = frame.path.empty() ? name : frame.path + "/" + name;
        if (!excluded.empty() && excluded.contains(path)) continue;
        struct stat st;
        if (::fstatat(frame.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;  // gone since the directory was listed
            return fail_errno(str_cat("lstat /", path));
        }
        FileInfo info = file_info(st);
        std::string target;
        if (info.type == FileType::symlink) {
            KILN_ASSIGN(target, read_link_at(frame.fd.get(), name, "/" + path));
        }
        std::string xattrs;
        std::string digest;
        if (records_xattrs(options.mode)) {
            // An owner recorded where the namespace holds no such id (file_metadata.hpp) is the entry's owner:
            // a RUN step that only changes it changes the entry.
            std::optional<OverrideStat> recorded;
            xattrs = read_xattrs_encoded(frame.fd.get(), name, &recorded);
            if (recorded && override_applies(*recorded, st.st_mode)) {
                info.uid = recorded->uid;
                info.gid = recorded->gid;
            }
        }
        if (info.type == FileType::regular && options.mode == SnapshotMode::full) {
            std::optional<size_t> earlier = previous ? previous->find(path) : std::nullopt;
            if (earlier) {
                const FileInfo& old = previous->info(*earlier);
                if (old.type == FileType::regular && old.size == info.size && old.mtime_ns == info.mtime_ns &&
                    old.ctime_ns == info.ctime_ns && old.ino == info.ino)
                    digest = previous->content_digest(*earlier);
            }
            if (digest.empty()) {
                KILN_ASSIGN(digest, content_digest_of(frame.fd.get(), name, path));
            }
        }
        snapshot.append(path, info, target, xattrs, digest);
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
    SnapshotMode mode = after.mode();
    std::vector<Change> changes;
    size_t i = 0;
    size_t j = 0;
    // Skips the entries of `before` below `path`: they went with it.
    auto skip_below = [&](std::string_view path) {
        while (i < before.size() && path_is_under(before.path(i), path)) ++i;
    };
    // Everything now below a replaced directory is new to the layer, however it matches what was there.
    auto add_below = [&](std::string_view path) {
        while (j < after.size() && path_is_under(after.path(j), path))
            changes.push_back({std::string(after.path(j++)), ChangeKind::added});
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
        } else if (replaced_directory(old_info, new_info, mode)) {
            changes.push_back({std::string(path), ChangeKind::replaced});
            ++i;
            skip_below(path);
            ++j;
            add_below(path);
            continue;
        } else {
            if (!same_entry(before, i, after, j, mode)) changes.push_back({std::string(path), ChangeKind::modified});
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
        case ChangeKind::replaced:
            return "replaced";
    }
    return "unknown";
}

}  // namespace kiln
