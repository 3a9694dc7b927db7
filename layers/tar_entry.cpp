#include "layers/tar_entry.hpp"

#include <sys/stat.h>

namespace kiln {

const char* tar_entry_type_name(TarEntryType type) {
    switch (type) {
        case TarEntryType::regular:
            return "regular file";
        case TarEntryType::directory:
            return "directory";
        case TarEntryType::symlink:
            return "symlink";
        case TarEntryType::hardlink:
            return "hardlink";
        case TarEntryType::fifo:
            return "fifo";
        case TarEntryType::char_device:
            return "character device";
        case TarEntryType::block_device:
            return "block device";
        case TarEntryType::other:
            return "unsupported entry type";
    }
    return "unknown";
}

mode_t file_type_bits(TarEntryType type) {
    switch (type) {
        case TarEntryType::directory:
            return S_IFDIR;
        case TarEntryType::symlink:
            return S_IFLNK;
        case TarEntryType::fifo:
            return S_IFIFO;
        case TarEntryType::char_device:
            return S_IFCHR;
        case TarEntryType::block_device:
            return S_IFBLK;
        default:
            return S_IFREG;
    }
}

bool is_host_private_xattr(std::string_view name) {
    if (name == "security.selinux") return true;
    // kiln's (and containers/storage's) record of ownership the filesystem could not hold: the layer writer
    // turns it into the entry's uid and gid.
    if (name == "user.containers.override_stat") return true;
    // "<namespace>.overlay.<anything>": overlayfs keeps its whiteouts, redirects and origins there.
    size_t dot = name.find('.');
    return dot != std::string_view::npos && name.substr(dot + 1).starts_with("overlay.");
}

}  // namespace kiln
