#pragma once
// The walk snapshotter: lstat every entry of a tree before and after a RUN, then compare. It needs nothing
// from the kernel beyond openat/fstatat, so it works wherever kiln runs; the overlay snapshotter is the
// faster path.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
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

// Every entry of a tree, below its root, in path_less order. Paths are relative ("etc/passwd").
class Snapshot {
public:
    size_t size() const { return m_records.size(); }
    std::string_view path(size_t index) const;
    const FileInfo& info(size_t index) const { return m_records[index].info; }
    // Empty unless the entry is a symlink.
    std::string_view symlink_target(size_t index) const;
    // The index of `path` (cleaned form), if the snapshot has it.
    std::optional<size_t> find(std::string_view path) const;

    // Appends an entry; entries must arrive in path_less order.
    void append(std::string_view path, const FileInfo& info, std::string_view symlink_target);

private:
    struct Record {
        FileInfo info;
        std::uint64_t offset;  // into m_strings: the path, then the symlink target
        std::uint32_t path_size;
        std::uint32_t target_size;
    };
    std::vector<Record> m_records;
    std::string m_strings;
};

struct ScanOptions {
    // Paths (relative or absolute, taken from the tree's root) left out with everything below them:
    // "proc", "sys", "etc/resolv.conf", …
    std::vector<std::string> excluded;
};

// Walks the tree below the directory `dir_fd`, never following a symlink.
Result<Snapshot> scan_snapshot(int dir_fd, const ScanOptions& options = {});
Result<Snapshot> scan_snapshot(const RootFs& root, const ScanOptions& options = {});

enum class ChangeKind { added, modified, deleted };

struct Change {
    std::string path;
    ChangeKind kind;
    bool operator==(const Change&) const = default;
};

// What turned `before` into `after`, in path_less order. Directories count as modified when their type, mode,
// owner, mtime or inode changed (not ctime, nlink or size, which follow their children); other entries when
// anything lstat reports changed, ctime included, so that rewritten content with a restored mtime is caught.
// A deleted directory is one deletion; an entry whose type changed is "modified" and what was below it is
// not listed.
std::vector<Change> diff_snapshots(const Snapshot& before, const Snapshot& after);

const char* change_kind_name(ChangeKind kind);

}  // namespace kiln
