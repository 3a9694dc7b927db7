#pragma once
// The walk snapshotter: lstat every entry of a tree before and after a RUN, then compare. It needs nothing
// from the kernel beyond openat/fstatat, so it works wherever kiln runs; the overlay snapshotter
// (snapshot_overlay.hpp) is the faster path where kiln may mount overlays.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "layers/file_metadata.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

enum class FileType : std::uint8_t { regular, directory, symlink, fifo, char_device, block_device, socket };

// What lstat says about one entry, packed: a snapshot holds hundreds of thousands of these.
struct FileInfo {
    FileType type = FileType::regular;
    std::uint16_t mode = 0;  // permission bits, 07777
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t nlink = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    std::uint64_t ino = 0;
    std::uint64_t rdev = 0;
};

// How a walk decides that an entry changed: kiln's default, or one of Kaniko's --snapshot-mode values.
enum class SnapshotMode : std::uint8_t {
    // Everything lstat reports (ctime and inode too, so rewritten content with a restored mtime is caught),
    // link count and extended attributes. Directories: type, mode, owner, mtime, inode, extended attributes
    // (their ctime, size and link count follow their children, which speak for themselves).
    metadata,
    // Kaniko's "full": mode, owner, size, mtime, device number, link target, extended attributes and a
    // SHA-256 of every regular file's content; a file rewritten with the same bytes and times is unchanged.
    full,
    // Kaniko's "redo": type, mode, size, mtime and owner only.
    redo,
    // Kaniko's "time": type and mtime only.
    time,
};

// Parses Kaniko's --snapshot-mode value ("full", "redo", "time") or kiln's "metadata".
Result<SnapshotMode> parse_snapshot_mode(std::string_view text);
const char* snapshot_mode_name(SnapshotMode mode);

// Every entry of a tree, below its root, in path_less order. Paths are relative ("etc/passwd").
class Snapshot {
public:
    size_t size() const { return m_records.size(); }
    std::string_view path(size_t index) const;
    const FileInfo& info(size_t index) const { return m_records[index].info; }
    // Empty unless the entry is a symlink.
    std::string_view symlink_target(size_t index) const;
    // The entry's extended attributes in a canonical encoding (sorted; empty when it has none or the walk's
    // mode does not record them). Only compared for equality.
    std::string_view xattrs(size_t index) const;
    // The hex SHA-256 of a regular file's content in SnapshotMode::full, else empty.
    std::string_view content_digest(size_t index) const;
    // The index of `path` (cleaned form), if the snapshot has it.
    std::optional<size_t> find(std::string_view path) const;
    // The mode the walk recorded: what its entries can be compared on.
    SnapshotMode mode() const { return m_mode; }

    // Appends an entry; entries must arrive in path_less order.
    void append(std::string_view path, const FileInfo& info, std::string_view symlink_target,
                std::string_view xattrs = {}, std::string_view content_digest = {});
    void set_mode(SnapshotMode mode) { m_mode = mode; }

private:
    struct Record {
        FileInfo info;
        std::uint64_t offset;  // into m_strings: the path, the symlink target, the xattrs, the digest
        std::uint32_t path_size;
        std::uint32_t target_size;
        std::uint32_t xattrs_size;
        std::uint32_t digest_size;
    };
    std::vector<Record> m_records;
    std::string m_strings;
    SnapshotMode m_mode = SnapshotMode::metadata;
};

struct ScanOptions {
    // Paths (relative or absolute, taken from the tree's root) left out with everything below them:
    // "proc", "sys", "etc/resolv.conf", …
    std::vector<std::string> excluded;
    SnapshotMode mode = SnapshotMode::metadata;
    // SnapshotMode::full: content digests are taken from this earlier snapshot of the same tree for files
    // whose size, mtime, ctime and inode are unchanged, instead of reading them again.
    const Snapshot* previous = nullptr;
};

// Walks the tree below the directory `dir_fd`, never following a symlink.
Result<Snapshot> scan_snapshot(int dir_fd, const ScanOptions& options = {});
Result<Snapshot> scan_snapshot(const RootFs& root, const ScanOptions& options = {});

enum class ChangeKind {
    added,
    modified,
    deleted,
    // A directory that was removed and made again (its inode changed): it hides everything the lower layers
    // had in it, and everything now in it is listed as added.
    replaced,
};

struct Change {
    std::string path;
    ChangeKind kind;
    bool operator==(const Change&) const = default;
};

// What turned `before` into `after`, in path_less order, compared by after.mode() (both snapshots must have
// been taken in one mode). A deleted directory is one deletion; an entry whose type changed is "modified"
// and what was below it is not listed.
std::vector<Change> diff_snapshots(const Snapshot& before, const Snapshot& after);

const char* change_kind_name(ChangeKind kind);

// The extended attributes of the entry `name` in `dir_fd` (not followed), in Snapshot::xattrs's encoding,
// without the host's private ones (is_host_private_xattr: overlay's bookkeeping, SELinux labels).
// Best-effort: a filesystem without xattrs gives "". `recorded`, when given, receives the entry's ownership
// override (file_metadata.hpp), which the encoding leaves out.
std::string read_xattrs_encoded(int dir_fd, const std::string& name,
                                std::optional<OverrideStat>* recorded = nullptr);

}  // namespace kiln
