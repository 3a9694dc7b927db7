#include "layers/file_metadata.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common/strings.hpp"

namespace kiln {
namespace {

// include/uapi/linux/capability.h: the revision lives in the top byte of magic_etc, flags in the rest.
constexpr std::uint32_t k_cap_revision_mask = 0xff000000;
constexpr std::uint32_t k_cap_revision_2 = 0x02000000;
constexpr std::uint32_t k_cap_revision_3 = 0x03000000;
constexpr size_t k_cap_v2_size = 20;  // magic_etc, then permitted and inheritable for two 32-bit words
constexpr size_t k_cap_v3_size = 24;  // the same, then the rootid

std::uint32_t read_le32(std::string_view bytes) {
    std::uint32_t value = 0;
    for (int i = 3; i >= 0; --i)
        value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
    return value;
}

void write_le32(std::string& bytes, std::uint32_t value) {
    for (size_t i = 0; i < 4; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

// `name` in the directory `fd`, for the l*xattr calls (which do not follow it); or, for the following calls,
// `fd` itself, which works for O_PATH descriptors too (f*xattr does not).
std::string entry_path(int fd, const char* name) {
    return name ? str_cat("/proc/self/fd/", fd, "/", name) : str_cat("/proc/self/fd/", fd);
}

const char* type_name(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFDIR:
            return "dir";
        case S_IFLNK:
            return "symlink";
        case S_IFIFO:
            return "pipe";
        case S_IFSOCK:
            return "socket";
        default:
            return "file";
    }
}

std::optional<mode_t> type_from_name(std::string_view name) {
    if (name.starts_with("file")) return S_IFREG;
    if (name.starts_with("dir")) return S_IFDIR;
    if (name.starts_with("symlink")) return S_IFLNK;
    if (name.starts_with("pipe")) return S_IFIFO;
    if (name.starts_with("socket")) return S_IFSOCK;
    if (name.starts_with("char")) return S_IFCHR;
    if (name.starts_with("block")) return S_IFBLK;
    return std::nullopt;
}

bool parse_octal(std::string_view text, std::uint32_t& value) {
    if (text.empty() || text.size() > 11) return false;
    value = 0;
    for (char c : text) {
        if (c < '0' || c > '7') return false;
        value = value * 8 + static_cast<std::uint32_t>(c - '0');
    }
    return true;
}

}  // namespace

std::string normalize_file_capability(std::string_view value) {
    if (value.size() != k_cap_v3_size) return std::string(value);
    std::uint32_t magic = read_le32(value);
    if ((magic & k_cap_revision_mask) != k_cap_revision_3) return std::string(value);
    std::string v2(value.substr(0, k_cap_v2_size));
    write_le32(v2, k_cap_revision_2 | (magic & ~k_cap_revision_mask));
    return v2;
}

std::string format_override_stat(const OverrideStat& stat) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(stat.mode & 07777));
    return str_cat(stat.uid, ":", stat.gid, ":", mode, ":", type_name(stat.mode));
}

std::optional<OverrideStat> parse_override_stat(std::string_view value) {
    std::vector<std::string> parts = split(value, ':');
    if (parts.size() != 3 && parts.size() != 4) return std::nullopt;
    std::uint64_t uid = 0, gid = 0;
    std::uint32_t mode = 0;
    if (!parse_uint64(parts[0], uid) || !parse_uint64(parts[1], gid) || !parse_octal(parts[2], mode) ||
        uid > 0xfffffffe || gid > 0xfffffffe)
        return std::nullopt;
    // The older three-field form keeps the type in the mode ("0:0:0100755"); the newer one names it.
    mode_t kept = parts.size() == 3 ? (S_IFMT | 07777) : 07777;
    OverrideStat stat{static_cast<uid_t>(uid), static_cast<gid_t>(gid), static_cast<mode_t>(mode) & kept};
    if (parts.size() == 4) {
        std::optional<mode_t> type = type_from_name(parts[3]);
        if (!type) return std::nullopt;
        stat.mode |= *type;
    }
    return stat;
}

std::optional<OverrideStat> read_override_stat(int fd, const char* name) {
    char value[128];
    std::string path = entry_path(fd, name);
    ssize_t size = name ? ::lgetxattr(path.c_str(), k_override_stat_xattr.data(), value, sizeof value)
                        : ::getxattr(path.c_str(), k_override_stat_xattr.data(), value, sizeof value);
    if (size <= 0) return std::nullopt;
    return parse_override_stat(std::string_view(value, static_cast<size_t>(size)));
}

Status write_override_stat(int fd, const char* name, const OverrideStat& stat) {
    std::string value = format_override_stat(stat);
    std::string path = entry_path(fd, name);
    int ret = name ? ::lsetxattr(path.c_str(), k_override_stat_xattr.data(), value.data(), value.size(), 0)
                   : ::setxattr(path.c_str(), k_override_stat_xattr.data(), value.data(), value.size(), 0);
    if (ret != 0) return fail_errno(str_cat("setxattr ", k_override_stat_xattr));
    return {};
}

void remove_override_stat(int fd, const char* name) {
    std::string path = entry_path(fd, name);
    if (name)
        ::lremovexattr(path.c_str(), k_override_stat_xattr.data());
    else
        ::removexattr(path.c_str(), k_override_stat_xattr.data());
}

Result<OwnershipKept> change_owner(int fd, const char* name, uid_t uid, gid_t gid, mode_t mode,
                                   const std::string& display) {
    int ret = ::fchownat(fd, name ? name : "", uid, gid, name ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH);
    if (ret == 0) {
        // A directory that already existed may carry a record from ids applied earlier, now out of date;
        // other files are created just before they are owned.
        if (S_ISDIR(mode)) remove_override_stat(fd, name);
        return OwnershipKept::on_disk;
    }
    int err = errno;
    if (err != EINVAL && err != EPERM)
        return fail_errno(str_cat("chown ", display, " to ", uid, ":", gid), err);
    if (!write_override_stat(fd, name, {uid, gid, mode})) return OwnershipKept::lost;
    return OwnershipKept::in_override;
}

}  // namespace kiln
