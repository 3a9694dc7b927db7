#include "layers/tar_entry.hpp"

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
