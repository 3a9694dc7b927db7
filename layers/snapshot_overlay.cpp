#include "layers/snapshot_overlay.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"

namespace kiln {
namespace {

constexpr size_t k_compare_chunk = 64 << 10;

std::vector<std::string> cleaned(const std::vector<std::string>& paths) {
    std::vector<std::string> result;
    for (const std::string& path : paths) {
        std::string clean = clean_path(path);
        // Excluding the root would empty every layer: that is never what a mount stub or ignore path means.
        if (!clean.empty()) result.push_back(std::move(clean));
    }
    return result;
}

bool excluded_path(std::string_view path, const std::vector<std::string>& excluded) {
    return std::any_of(excluded.begin(), excluded.end(),
                       [&](const std::string& top) { return path == top || path_is_under(path, top); });
}

std::string entry_proc_path(int dir_fd, std::string_view name) {
    return str_cat("/proc/self/fd/", dir_fd, "/", name);
}

// Reads until `size` bytes or the end of the file.
ssize_t read_full(int fd, char* buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::read(fd, buffer + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return n;
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
}

bool same_override(int upper_fd, int lower_fd, const std::string& name) {
    std::optional<OverrideStat> a = read_override_stat(upper_fd, name.c_str());
    std::optional<OverrideStat> b = read_override_stat(lower_fd, name.c_str());
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->uid == b->uid && a->gid == b->gid && a->mode == b->mode);
}

// Walks the upper directory alongside the lower tree, one directory at a time.
class UpperScanner {
public:
    UpperScanner(const RootFs& upper, const RootFs& lower, const UpperScanOptions& options)
        : m_upper(upper), m_lower(lower), m_excluded(cleaned(options.excluded)) {}

    Result<UpperChanges> run() {
        KILN_TRY(scan_directory(m_upper.fd(), m_lower.fd(), ""));
        return std::move(m_changes);
    }

private:
    // `upper_fd` and `lower_fd` are the directory `dir` in each tree; lower_fd is -1 where the lower tree has
    // no such directory or the upper hides it (an opaque directory and everything below it is all new).
    Status scan_directory(int upper_fd, int lower_fd, const std::string& dir) {
        KILN_ASSIGN(std::vector<std::string> names, list_directory(upper_fd, m_upper.display(dir)));
        for (const std::string& name : names) {
            std::string path = join_path(dir, name);
            if (excluded_path(path, m_excluded)) continue;
            KILN_TRY(scan_entry(upper_fd, lower_fd, name, path));
        }
        return {};
    }

    Status scan_entry(int upper_fd, int lower_fd, const std::string& name, const std::string& path) {
        ++m_changes.stats.entries;
        struct stat st;
        if (::fstatat(upper_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(str_cat("lstat ", m_upper.display(path)));
        std::optional<struct stat> below = lower_fd >= 0 ? lower_entry(lower_fd, name) : std::nullopt;
        if (is_overlay_whiteout(st.st_mode, st.st_rdev)) {
            // Overlay leaves a whiteout where the step deleted something from below; one over nothing (the
            // lower tree never had the path) deletes nothing.
            if (below) {
                ++m_changes.stats.whiteouts;
                add(LayerEntryKind::whiteout, path);
            }
            return {};
        }
        if (S_ISDIR(st.st_mode)) return scan_subdirectory(upper_fd, lower_fd, name, path, st, below);
        if (below) {
            KILN_ASSIGN(bool unchanged, unchanged_copy_up(upper_fd, lower_fd, name, path, st, *below));
            if (unchanged) {
                ++m_changes.stats.unchanged_copy_ups;
                return {};
            }
        }
        add(LayerEntryKind::path, path);
        return {};
    }

    Status scan_subdirectory(int upper_fd, int lower_fd, const std::string& name, const std::string& path,
                             const struct stat& st, const std::optional<struct stat>& below) {
        UniqueFd upper_dir(::openat(upper_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!upper_dir) return fail_errno(str_cat("open ", m_upper.display(path)));
        bool lower_is_directory = below && S_ISDIR(below->st_mode);
        // Overlay marks directories it makes over a whiteout opaque, and sometimes brand-new ones too: only a
        // directory that hides something below needs the marker.
        bool opaque = lower_is_directory && has_overlay_opaque_xattr(entry_proc_path(upper_fd, name));
        UniqueFd lower_dir;
        if (lower_is_directory && !opaque) {
            lower_dir.reset(::openat(lower_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!lower_dir) return fail_errno(str_cat("open ", m_lower.display(path)));
        }
        if (opaque) {
            ++m_changes.stats.opaque_directories;
            add(LayerEntryKind::path, path);
            add(LayerEntryKind::opaque_marker, path);
        } else if (lower_is_directory && same_metadata(upper_fd, lower_fd, name, st, *below)) {
            // Copied up only because something below it changed. The layer writer adds every ancestor of an
            // entry anyway, as the walk snapshotter's layers have it.
            ++m_changes.stats.unchanged_copy_ups;
        } else {
            add(LayerEntryKind::path, path);
        }
        return scan_directory(upper_dir.get(), lower_dir ? lower_dir.get() : -1, path);
    }

    // lstat of `name` in the lower directory; a whiteout there (a lower that is itself a layer directory)
    // means the path is absent.
    static std::optional<struct stat> lower_entry(int lower_fd, const std::string& name) {
        struct stat st;
        if (::fstatat(lower_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
        if (is_overlay_whiteout(st.st_mode, st.st_rdev)) return std::nullopt;
        return st;
    }

    // What a copy-up preserves and a change alters, short of the content.
    static bool same_metadata(int upper_fd, int lower_fd, const std::string& name, const struct stat& a,
                              const struct stat& b) {
        if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT) || (a.st_mode & 07777) != (b.st_mode & 07777) ||
            a.st_uid != b.st_uid || a.st_gid != b.st_gid || a.st_mtim.tv_sec != b.st_mtim.tv_sec ||
            a.st_mtim.tv_nsec != b.st_mtim.tv_nsec)
            return false;
        if (!S_ISDIR(a.st_mode) && a.st_size != b.st_size) return false;
        if ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev) return false;
        return read_xattrs_encoded(upper_fd, name) == read_xattrs_encoded(lower_fd, name) &&
               same_override(upper_fd, lower_fd, name);
    }

    Result<bool> unchanged_copy_up(int upper_fd, int lower_fd, const std::string& name,
                                   const std::string& path, const struct stat& st, const struct stat& below) {
        if (!same_metadata(upper_fd, lower_fd, name, st, below)) return false;
        if (S_ISLNK(st.st_mode)) {
            KILN_ASSIGN(std::string now, read_link_at(upper_fd, name, m_upper.display(path)));
            KILN_ASSIGN(std::string before, read_link_at(lower_fd, name, m_lower.display(path)));
            return now == before;
        }
        if (!S_ISREG(st.st_mode)) return true;
        // Copy-ups break hardlinks, so an upper file with several links got them in this step: it stays, for
        // the layer to record the links.
        if (st.st_nlink > 1) return false;
        return same_content(upper_fd, lower_fd, name, path);
    }

    Result<bool> same_content(int upper_fd, int lower_fd, const std::string& name, const std::string& path) {
        int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
        UniqueFd now(::openat(upper_fd, name.c_str(), flags));
        if (!now) return fail_errno(str_cat("open ", m_upper.display(path)));
        UniqueFd before(::openat(lower_fd, name.c_str(), flags));
        if (!before) return false;  // unreadable below: keep the file rather than guess
        if (m_buffer.empty()) m_buffer.resize(2 * k_compare_chunk);
        char* a = m_buffer.data();
        char* b = m_buffer.data() + k_compare_chunk;
        while (true) {
            ssize_t n = read_full(now.get(), a, k_compare_chunk);
            if (n < 0) return fail_errno(str_cat("read ", m_upper.display(path)));
            ssize_t m = read_full(before.get(), b, k_compare_chunk);
            if (m != n || std::memcmp(a, b, static_cast<size_t>(n)) != 0) return false;
            if (n == 0) return true;
        }
    }

    void add(LayerEntryKind kind, const std::string& path) { m_changes.entries.push_back({kind, path}); }

    const RootFs& m_upper;
    const RootFs& m_lower;
    std::vector<std::string> m_excluded;
    UpperChanges m_changes;
    std::vector<char> m_buffer;
};

}  // namespace

bool is_overlay_whiteout(mode_t mode, dev_t rdev) {
    return S_ISCHR(mode) && ::major(rdev) == 0 && ::minor(rdev) == 0;
}

bool has_overlay_opaque_xattr(const std::string& path) {
    char value[2];
    return ::lgetxattr(path.c_str(), k_overlay_opaque_xattr, value, sizeof value) == 1 && value[0] == 'y';
}

Result<UpperChanges> scan_overlay_upper(const RootFs& upper, const RootFs& lower,
                                        const UpperScanOptions& options) {
    UpperScanner scanner(upper, lower, options);
    return with_context(scanner.run(),
                        str_cat("reading the changes in the overlay upper directory ", upper.path()));
}

std::vector<LayerEntry> without_excluded(std::vector<LayerEntry> entries,
                                         const std::vector<std::string>& excluded) {
    std::vector<std::string> tops = cleaned(excluded);
    if (tops.empty()) return entries;
    std::erase_if(entries,
                  [&](const LayerEntry& entry) { return excluded_path(clean_path(entry.path), tops); });
    return entries;
}

}  // namespace kiln
