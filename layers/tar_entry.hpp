#pragma once
// One tar entry as kiln reads and writes it: the header fields a container layer carries, nothing more.

#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

enum class TarEntryType { regular, directory, symlink, hardlink, fifo, char_device, block_device, other };

struct TarEntry {
    // The name as stored in the archive: neither cleaned nor checked.
    std::string name;
    TarEntryType type = TarEntryType::regular;
    // The target of a symlink, or the name of the entry a hardlink points at.
    std::string link_target;
    // Permission bits including setuid, setgid and sticky (07777).
    std::uint32_t mode = 0;
    // Numeric ids; uname/gname are ignored on reading and left empty on writing.
    std::int64_t uid = 0;
    std::int64_t gid = 0;
    // Bytes of content (regular files only).
    std::int64_t size = 0;
    struct timespec mtime {};
    std::optional<struct timespec> atime;
    std::uint32_t rdev_major = 0;
    std::uint32_t rdev_minor = 0;
    // Extended attributes (name, value), in the order they are stored.
    std::vector<std::pair<std::string, std::string>> xattrs;
};

// "regular file", "symlink", … for messages.
const char* tar_entry_type_name(TarEntryType type);
// The S_IF* bits of a type (S_IFREG for regular files, hardlinks and anything unsupported). libarchive's AE_IF*
// values are the same bits.
mode_t file_type_bits(TarEntryType type);

// True for extended attributes that belong to the host rather than the image: overlayfs's own bookkeeping
// ("trusted.overlay.*", "user.overlay.*"), the host's SELinux label and the ownership override
// ("user.containers.override_stat", see file_metadata.hpp). Layers neither record nor apply them.
bool is_host_private_xattr(std::string_view name);

}  // namespace kiln
