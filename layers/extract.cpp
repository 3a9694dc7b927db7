#include "layers/extract.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"
#include "layers/snapshot_overlay.hpp"
#include "layers/tar_reader.hpp"
#include "layers/whiteout.hpp"

namespace kiln {
namespace {

constexpr std::int64_t k_max_id = 0xfffffffe;  // (uid_t)-1 means "leave unchanged" to chown(2)

std::uint64_t path_hash(std::string_view path) {
    return std::hash<std::string_view>{}(path);
}

struct timespec clamp_time(struct timespec time) {
    if (time.tv_nsec < 0 || time.tv_nsec > 999'999'999) time.tv_nsec = 0;
    return time;
}

// A path that setxattr(2) can use for an entry that has no fd of its own; the entry itself is not followed.
std::string proc_path(int parent_fd, std::string_view leaf) {
    return str_cat("/proc/self/fd/", parent_fd, "/", leaf);
}

// The value to set for an extended attribute from a layer. A v3 file capability names the root of some
// builder's user namespace, which means nothing here: its v2 form grants the same capabilities, and the kernel
// namespaces it again when kiln itself runs in a user namespace.
std::string applied_xattr_value(const std::string& name, const std::string& value) {
    return name == k_file_capability_xattr ? normalize_file_capability(value) : value;
}

// Checked before anything is written: the contents of a block of zeros can stay a hole in the file.
bool all_zero(const char* data, size_t size) {
    return size > 0 && data[0] == 0 && std::memcmp(data, data + 1, size - 1) == 0;
}

constexpr size_t k_min_hole = 4096;  // smaller runs of zeros are written: a hole cannot save a block

// WhiteoutFormat::overlay: the bytes of path a layer's LowerAssumptions may hold. A layer that needs more
// (hostile, or odd: most layers name every directory they write in) is applied through the stack instead.
constexpr size_t k_max_assumption_bytes = 1 << 20;

// parent_directory()'s answer, in WhiteoutFormat::overlay, for a parent beyond a symlink of the layer that
// leads to no directory of its own: only the layers below can tell where the entry goes.
constexpr int k_parent_below = -1;

// Applies one layer. Lives for one apply_layer() call.
class LayerApplier {
public:
    LayerApplier(const RootFs& root, Reader& tar, const ExtractOptions& options)
        : m_root(root), m_options(options), m_tar(tar) {}

    Result<ExtractStats> run() {
        TarEntry entry;
        while (true) {
            KILN_ASSIGN(bool more, m_tar.next(entry));
            if (!more) break;
            ++m_stats.entries;
            KILN_TRY_CONTEXT(apply_entry(entry), str_cat("entry \"", entry.name, "\""));
        }
        KILN_TRY(m_tar.drain());
        KILN_TRY(clear_opaque_directories());
        KILN_TRY(finish_directories());
        KILN_TRY(mark_overlay_opaque_directories());
        if (overlay_format()) finish_lower_assumptions();
        return m_stats;
    }

private:
    struct PendingDirectory {
        std::string path;
        mode_t mode;
        struct timespec times[2];
    };

    Status apply_entry(const TarEntry& entry) {
        if (entry.name.starts_with('/')) return fail("refused: absolute path");
        if (escapes_root(entry.name)) return fail("refused: the path climbs above the root with \"..\"");
        std::string path = clean_path(entry.name);
        if (path.empty()) return {};  // the root itself: its metadata belongs to the rootfs, not the layer
        auto [parent_view, leaf_view] = split_parent(path);
        std::string parent(parent_view);
        std::string leaf(leaf_view);
        if (archive() && path_has_whiteout_name(path))
            return fail("refused: \".wh.\" names mark deletions in image layers, so a layer cannot hold them");
        if (leaf.starts_with(k_whiteout_prefix)) return apply_whiteout(parent, leaf);
        if (entry.uid < 0 || entry.uid > k_max_id || entry.gid < 0 || entry.gid > k_max_id)
            return fail(str_cat("refused: uid/gid ", entry.uid, ":", entry.gid, " out of range"));
        if (entry.size < 0) return fail("refused: negative size");
        record_written(path, parent);

        KILN_ASSIGN(int parent_fd, parent_directory(parent));
        if (parent_fd == k_parent_below) return {};
        KILN_TRY(create_entry(parent_fd, leaf, path, entry));
        return report_written(parent_fd, leaf);
    }

    Status create_entry(int parent_fd, const std::string& leaf, const std::string& path, const TarEntry& entry) {
        switch (entry.type) {
            case TarEntryType::regular:
                return write_regular(parent_fd, leaf, path, entry);
            case TarEntryType::directory:
                return make_directory(parent_fd, leaf, path, entry);
            case TarEntryType::symlink:
                return make_symlink(parent_fd, leaf, path, entry);
            case TarEntryType::hardlink:
                return make_hardlink(parent_fd, leaf, path, entry);
            case TarEntryType::fifo:
            case TarEntryType::char_device:
            case TarEntryType::block_device:
                return make_node(parent_fd, leaf, path, entry);
            case TarEntryType::other:
                break;
        }
        return fail("refused: unsupported entry type");
    }

    Status apply_whiteout(const std::string& parent, const std::string& leaf) {
        ++m_stats.whiteouts;
        if (leaf == k_opaque_marker) {
            // Applied once the whole layer is in: the marker may come after the directory's new entries.
            if (overlay_format()) {
                m_overlay_opaque_directories.push_back(parent);
                note_deleting_in(parent);
            } else {
                m_opaque_directories.push_back(parent);
            }
            return {};
        }
        if (leaf.starts_with(k_whiteout_meta_prefix)) return {};
        std::string target = leaf.substr(k_whiteout_prefix.size());
        if (target.empty() || target == "." || target == "..")
            return fail(
                str_cat("refused: whiteout of \"", target, "\" does not name an entry of its directory"));
        if (overlay_format()) return write_overlay_whiteout(parent, target);
        // Whiteouts never create anything: a missing parent means there is nothing to delete.
        UniqueFd parent_fd(openat_in_root(m_root.fd(), parent, O_PATH | O_DIRECTORY, 0));
        if (!parent_fd) {
            if (errno == ENOENT || errno == ENOTDIR) return {};
            return fail_errno(str_cat("open ", m_root.display(parent)));
        }
        forget_parent();
        return remove_at(parent_fd.get(), target, m_root.display(join_path(parent, target)));
    }

    bool archive() const { return m_options.mode == ExtractMode::archive; }
    bool overlay_format() const { return m_options.whiteout_format == WhiteoutFormat::overlay; }

    // WhiteoutFormat::overlay: the deletion becomes overlayfs's whiteout, a 0/0 character device, which
    // unprivileged user namespaces may create too. Nothing below is touched: the layer's directory is its own.
    Status write_overlay_whiteout(const std::string& parent, const std::string& target) {
        std::string path = join_path(parent, target);
        m_overlay_whiteouts.push_back(path);
        note_deleting_in(parent);
        KILN_ASSIGN(int parent_fd, parent_directory(parent));
        if (parent_fd == k_parent_below) return {};
        KILN_TRY(remove_at(parent_fd, target, m_root.display(path)));
        if (::mknodat(parent_fd, target.c_str(), S_IFCHR | 0600, ::makedev(0, 0)) != 0)
            return fail_errno(str_cat("mknod (overlay whiteout) ", m_root.display(path)));
        return {};
    }

    // WhiteoutFormat::overlay: opaque markers become overlayfs's opaque xattr (the "userxattr" form), set once
    // the layer is in because the marker may precede its directory's entry. A directory that the layer made
    // where it also deleted one ("a/.wh.b" then "a/b/") is opaque too: it replaces the lower one.
    Status mark_overlay_opaque_directories() {
        forget_parent();
        for (const std::string& path : m_overlay_whiteouts) {
            UniqueFd dir(openat_in_root(m_root.fd(), path, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0));
            if (dir) m_overlay_opaque_directories.push_back(path);
        }
        if (m_stats.lower_assumptions.needs_stack) return {};  // the directory is discarded
        for (const std::string& dir : m_overlay_opaque_directories) {
            KILN_ASSIGN(int parent_fd, parent_directory(dir));
            if (parent_fd == k_parent_below) return {};
            std::string path = str_cat("/proc/self/fd/", parent_fd);
            if (::setxattr(path.c_str(), k_overlay_opaque_xattr, "y", 1, 0) != 0)
                return fail_errno(str_cat("set ", k_overlay_opaque_xattr, " on ", m_root.display(dir)));
        }
        return {};
    }

    static bool path_has_whiteout_name(std::string_view path) {
        for (const std::string& part : split(path, '/'))
            if (part.starts_with(k_whiteout_prefix)) return true;
        return false;
    }

    // Hands the entry just created to the caller's list, under its resolved path. Entries that were left out
    // (a device node without CAP_MKNOD) are not there to report.
    Status report_written(int parent_fd, const std::string& leaf) {
        if (!m_options.written) return {};
        struct stat st;
        if (::fstatat(parent_fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return {};
        if (!m_parent_resolved) {
            KILN_ASSIGN(std::string resolved, resolve_in_root(parent_fd));
            m_parent_resolved = std::move(resolved);
        }
        m_options.written->push_back(join_path(*m_parent_resolved, leaf));
        return {};
    }

    // The path of the directory `fd` relative to the root: where its entries really are once symlinks in the
    // entry's parents have been followed (inside the root).
    Result<std::string> resolve_in_root(int fd) {
        if (m_root_real.empty()) {
            char real[PATH_MAX];
            if (!::realpath(m_root.path().c_str(), real)) return fail_errno(str_cat("realpath ", m_root.path()));
            m_root_real = real;
        }
        char link[PATH_MAX];
        std::string proc = str_cat("/proc/self/fd/", fd);
        ssize_t length = ::readlink(proc.c_str(), link, sizeof link - 1);
        if (length < 0) return fail_errno(str_cat("readlink ", proc));
        std::string_view resolved(link, static_cast<size_t>(length));
        if (resolved == m_root_real) return std::string();
        if (!path_is_under(resolved, m_root_real))
            return fail(str_cat("resolved path ", resolved, " is outside the root"));
        return std::string(resolved.substr(m_root_real.size() + 1));
    }

    // Remembers `path` and its ancestors as this layer's own, which an opaque marker must keep.
    void record_written(const std::string& path, const std::string& parent) {
        m_written.push_back(path_hash(path));
        if (parent == m_last_recorded_parent) return;
        m_last_recorded_parent = parent;
        std::string_view ancestor = parent;
        while (!ancestor.empty()) {
            m_written.push_back(path_hash(ancestor));
            ancestor = split_parent(ancestor).first;
        }
    }

    // The directory that will hold an entry, resolved inside the rootfs and created (0755, owned by the
    // extracting user) when missing; symlinks on the way are followed inside the rootfs, as Docker follows
    // them. The last one is kept: tar entries usually come grouped by directory. In WhiteoutFormat::overlay,
    // k_parent_below for a parent beyond a symlink that leads nowhere in the layer's own directory.
    Result<int> parent_directory(const std::string& parent) {
        if (m_parent_fd && !m_parent_stale && m_parent_path == parent) return m_parent_fd.get();
        UniqueFd fd(openat_in_root(m_root.fd(), parent, O_PATH | O_DIRECTORY, 0));
        if (!fd) {
            if (errno != ENOENT) return fail_errno(str_cat("open ", m_root.display(parent)));
            // Docker's untar makes the directories an archive implies as root (or the --chown owner).
            uid_t uid = archive() ? m_options.owner.value_or(ExtractOwner{}).uid : ::geteuid();
            gid_t gid = archive() ? m_options.owner.value_or(ExtractOwner{}).gid : ::getegid();
            auto made = m_root.make_directories(parent, 0755, uid, gid);
            if (!made) {
                auto link = symlink_on_the_way(parent);
                if (link && overlay_format()) {
                    leave_to_stack();
                    return k_parent_below;
                }
                if (link)
                    return fail(str_cat("refused: its parent \"", link->first, "\" is a symlink to \"",
                                        link->second, "\", which leads to no directory inside the root"));
                made.error().context(str_cat("making the parent directory \"", parent, "\""));
                return fail(std::move(made).error());
            }
            if (overlay_format()) assume_directories_below(parent);
            fd = std::move(*made);
        }
        m_parent_fd = std::move(fd);
        m_parent_resolved.reset();
        m_parent_path = parent;
        m_parent_stale = false;
        return m_parent_fd.get();
    }

    // The first component of `path` (a cleaned relative path) that is a symlink leading to no directory
    // inside the root, and its target; nullopt when there is none (the path is missing for another reason).
    std::optional<std::pair<std::string, std::string>> symlink_on_the_way(const std::string& path) const {
        std::string prefix;
        for (const std::string& component : split(path, '/')) {
            if (component.empty() || component == ".") continue;
            prefix = prefix.empty() ? component : str_cat(prefix, "/", component);
            auto parent = m_root.open_parent(prefix);
            struct stat st;
            if (!parent || ::fstatat(parent->first.get(), parent->second.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                return std::nullopt;
            if (S_ISLNK(st.st_mode)) {
                if (UniqueFd(openat_in_root(m_root.fd(), prefix, O_PATH | O_DIRECTORY, 0))) continue;
                auto target = read_link_at(parent->first.get(), parent->second, prefix);
                return std::make_pair(prefix, target ? *target : std::string("?"));
            }
            if (!S_ISDIR(st.st_mode)) return std::nullopt;
        }
        return std::nullopt;
    }

    // WhiteoutFormat::overlay: counts `path` against the bytes the layer's assumptions may hold; past them,
    // the layer is left to the stack and nothing more is recorded.
    bool within_assumption_budget(const std::string& path) {
        if (m_stats.lower_assumptions.needs_stack || path.empty()) return false;
        m_assumption_bytes += path.size();
        if (m_assumption_bytes <= k_max_assumption_bytes) return true;
        leave_to_stack();
        return false;
    }

    // WhiteoutFormat::overlay: only applying the layer through the stack below tells what it means; what was
    // recorded of its assumptions no longer matters.
    void leave_to_stack() {
        m_stats.lower_assumptions = LowerAssumptions{.needs_stack = true};
        m_deleting_in = {};
    }

    // WhiteoutFormat::overlay: records that the layer took each component of `path` to be a directory, or
    // nothing, in the layers below.
    void assume_directories_below(const std::string& path) {
        if (within_assumption_budget(path)) m_stats.lower_assumptions.directory_paths.push_back(path);
    }

    // WhiteoutFormat::overlay: a whiteout or opaque marker in `dir`, which finish_lower_assumptions() checks.
    void note_deleting_in(const std::string& dir) {
        if (!m_deleting_in.empty() && m_deleting_in.back() == dir) return;
        if (within_assumption_budget(dir)) m_deleting_in.push_back(dir);
    }

    // WhiteoutFormat::overlay: the directories the layer deletes in, unless it made them itself, must be
    // directories below: a whiteout in a directory that is not there deletes nothing and makes nothing.
    void finish_lower_assumptions() {
        std::sort(m_written.begin(), m_written.end());
        for (std::string& dir : m_deleting_in)
            if (!written(dir)) m_stats.lower_assumptions.deleting_in.push_back(std::move(dir));
    }

    // Anything removed may have been (or led to) the remembered parent directory, so the next entry resolves
    // its parent again. The fd stays open: the current entry is still using it.
    void forget_parent() { m_parent_stale = true; }

    // Clears the way for a new entry: whatever is there goes, except a directory that a directory entry
    // merges into. Returns whether an existing directory is kept.
    Result<bool> make_room(int parent_fd, const std::string& leaf, const std::string& path,
                           TarEntryType type) {
        struct stat st;
        if (::fstatat(parent_fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) return false;
            return fail_errno(str_cat("lstat ", m_root.display(path)));
        }
        if (type == TarEntryType::directory && S_ISDIR(st.st_mode)) return true;
        forget_parent();
        KILN_TRY(remove_at(parent_fd, leaf, m_root.display(path)));
        return false;
    }

    Status write_regular(int parent_fd, const std::string& leaf, const std::string& path,
                         const TarEntry& entry) {
        KILN_TRY(make_room(parent_fd, leaf, path, entry.type));
        UniqueFd fd(
            ::openat(parent_fd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return fail_errno(str_cat("create ", m_root.display(path)));
        std::int64_t end = 0;
        while (true) {
            KILN_ASSIGN(auto block, m_tar.read_block());
            if (!block) break;
            // Blocks carry offsets: the gaps of a sparse entry stay holes in the file, and so do long runs of
            // zeros that a dense entry stores (a 10 GiB disk image costs its data, not 10 GiB).
            const char* data = block->data;
            size_t remaining = block->size;
            off_t offset = block->offset;
            if (remaining >= k_min_hole && all_zero(data, remaining)) {
                m_stats.bytes += remaining;
                continue;
            }
            while (remaining > 0) {
                ssize_t n = ::pwrite(fd.get(), data, remaining, offset);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    return fail_errno(str_cat("write ", m_root.display(path)));
                }
                data += n;
                remaining -= static_cast<size_t>(n);
                offset += n;
            }
            m_stats.bytes += block->size;
            end = std::max<std::int64_t>(end, offset);
        }
        if (end < entry.size && ::ftruncate(fd.get(), entry.size) != 0)
            return fail_errno(str_cat("truncate ", m_root.display(path)));
        KILN_TRY(set_owner(fd.get(), nullptr, path, entry));
        if (::fchmod(fd.get(), entry.mode) != 0) return fail_errno(str_cat("chmod ", m_root.display(path)));
        // After chown and chmod, either of which would drop a file capability.
        for (const auto& [name, value] : entry.xattrs) {
            if (is_host_private_xattr(name)) continue;
            std::string applied = applied_xattr_value(name, value);
            if (::fsetxattr(fd.get(), name.c_str(), applied.data(), applied.size(), 0) != 0)
                warn_xattr(name, path, errno);
        }
        struct timespec times[2] = {clamp_time(entry.atime.value_or(entry.mtime)), clamp_time(entry.mtime)};
        if (::futimens(fd.get(), times) != 0)
            return fail_errno(str_cat("set times of ", m_root.display(path)));
        return {};
    }

    Status make_directory(int parent_fd, const std::string& leaf, const std::string& path,
                          const TarEntry& entry) {
        KILN_ASSIGN(bool exists, make_room(parent_fd, leaf, path, entry.type));
        // An existing directory named by the layer or archive takes its metadata, as Docker's untar (and so
        // Kaniko and buildah) does; only the archive's own root entry "./" is skipped, before this point.
        if (!exists && ::mkdirat(parent_fd, leaf.c_str(), 0700) != 0)
            return fail_errno(str_cat("mkdir ", m_root.display(path)));
        UniqueFd fd(::openat(parent_fd, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) return fail_errno(str_cat("open ", m_root.display(path)));
        KILN_TRY(set_owner(fd.get(), nullptr, path, entry));
        for (const auto& [name, value] : entry.xattrs) {
            if (is_host_private_xattr(name)) continue;
            std::string applied = applied_xattr_value(name, value);
            if (::fsetxattr(fd.get(), name.c_str(), applied.data(), applied.size(), 0) != 0)
                warn_xattr(name, path, errno);
        }
        // Mode and times wait until the layer's entries are in: writing them would change the mtime, and a
        // read-only mode could stand in their way.
        m_directories.push_back(
            {path, entry.mode, {clamp_time(entry.atime.value_or(entry.mtime)), clamp_time(entry.mtime)}});
        return {};
    }

    Status make_symlink(int parent_fd, const std::string& leaf, const std::string& path,
                        const TarEntry& entry) {
        // In an image layer, a target that climbs above "/" is kept, as containerd keeps it: kiln resolves every
        // link inside the root, where ".." stops at "/". An ADD archive unpacks into a directory of the image,
        // and Docker's untar refuses a link that climbs above that directory: so does kiln.
        if (archive() && !entry.link_target.starts_with('/') &&
            escapes_root(join_path(split_parent(path).first, entry.link_target)))
            return fail(str_cat("refused: the symlink target \"", entry.link_target, "\" climbs above the root"));
        KILN_TRY(make_room(parent_fd, leaf, path, entry.type));
        // The target is data: it is only ever resolved inside the rootfs.
        if (::symlinkat(entry.link_target.c_str(), parent_fd, leaf.c_str()) != 0)
            return fail_errno(str_cat("symlink ", m_root.display(path), " -> ", entry.link_target));
        KILN_TRY(set_owner(parent_fd, leaf.c_str(), path, entry));
        set_path_xattrs(parent_fd, leaf, path, entry);
        return set_path_times(parent_fd, leaf, path, entry);
    }

    Status make_hardlink(int parent_fd, const std::string& leaf, const std::string& path,
                         const TarEntry& entry) {
        // An absolute name is read relative to the root, as Docker reads it.
        std::string target = entry.link_target;
        while (target.starts_with('/')) target.erase(0, 1);
        if (escapes_root(target))
            return fail(str_cat("refused: hardlink to \"", target, "\" climbs above the root"));
        std::string target_path = clean_path(target);
        if (target_path.empty()) return fail("refused: hardlink to the root directory");
        auto [target_parent, target_leaf] = split_parent(target_path);
        // The target may come from a lower layer; its parents are resolved inside the rootfs like any path.
        UniqueFd target_parent_fd(openat_in_root(m_root.fd(), target_parent, O_PATH | O_DIRECTORY, 0));
        if (!target_parent_fd && errno == ENOENT && overlay_format()) {
            if (symlink_on_the_way(std::string(target_parent))) {
                leave_to_stack();  // where the target is, only the stack tells
                return {};
            }
            return defer_link(parent_fd, leaf, path, target_path, entry);
        }
        if (!target_parent_fd) return fail_errno(str_cat("hardlink target ", m_root.display(target_path)));
        std::string target_name(target_leaf);
        struct stat target_st;
        if (::fstatat(target_parent_fd.get(), target_name.c_str(), &target_st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT && overlay_format()) {
                // The parent may lie beyond a symlink of this layer: the layers below hold it under its real path.
                KILN_ASSIGN(std::string resolved_parent, resolve_in_root(target_parent_fd.get()));
                return defer_link(parent_fd, leaf, path, join_path(resolved_parent, target_name), entry);
            }
            return fail_errno(str_cat("hardlink target ", m_root.display(target_path)));
        }
        if (S_ISDIR(target_st.st_mode))
            return fail(str_cat("refused: hardlink to the directory \"", target, "\""));
        struct stat existing;
        if (::fstatat(parent_fd, leaf.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
            existing.st_dev == target_st.st_dev && existing.st_ino == target_st.st_ino)
            return {};
        KILN_TRY(make_room(parent_fd, leaf, path, entry.type));
        // linkat without AT_SYMLINK_FOLLOW links a symlink target itself, never what it points to.
        if (::linkat(target_parent_fd.get(), target_name.c_str(), parent_fd, leaf.c_str(), 0) != 0)
            return fail_errno(str_cat("link ", m_root.display(path), " to ", m_root.display(target_path)));
        return {};
    }

    // WhiteoutFormat::overlay: the target is in an earlier layer's directory, which this one cannot link to.
    Status defer_link(int parent_fd, const std::string& leaf, const std::string& path, const std::string& target,
                      const TarEntry& entry) {
        KILN_TRY(make_room(parent_fd, leaf, path, entry.type));
        m_stats.lower_layer_links.push_back({clean_path(path), target});
        assume_directories_below(std::string(split_parent(target).first));
        return {};
    }

    Status make_node(int parent_fd, const std::string& leaf, const std::string& path, const TarEntry& entry) {
        bool device = entry.type != TarEntryType::fifo;
        if (overlay_format() && entry.type == TarEntryType::char_device && entry.rdev_major == 0 &&
            entry.rdev_minor == 0) {
            // In a lowerdir a 0/0 device reads as a whiteout: it would delete instead of being a file.
            ++m_stats.skipped_devices;
            log_warn("layer ", m_options.layer_name, ": leaving out the 0/0 character device \"", entry.name,
                     "\": overlayfs would read it as a whiteout");
            return {};
        }
        if (device && m_devices_forbidden) {
            ++m_stats.skipped_devices;
            return {};
        }
        KILN_TRY(make_room(parent_fd, leaf, path, entry.type));
        mode_t type = entry.type == TarEntryType::fifo          ? S_IFIFO
                      : entry.type == TarEntryType::char_device ? S_IFCHR
                                                                : S_IFBLK;
        dev_t rdev = device ? ::makedev(entry.rdev_major, entry.rdev_minor) : 0;
        if (::mknodat(parent_fd, leaf.c_str(), type | 0600, rdev) != 0) {
            if (device && errno == EPERM) {
                m_devices_forbidden = true;
                ++m_stats.skipped_devices;
                log_warn("layer ", m_options.layer_name,
                         ": device nodes cannot be created here (no CAP_MKNOD); "
                         "skipping them, starting with \"",
                         entry.name, "\"");
                return {};
            }
            return fail_errno(str_cat("mknod ", m_root.display(path)));
        }
        KILN_TRY(set_owner(parent_fd, leaf.c_str(), path, entry));
        if (::fchmodat(parent_fd, leaf.c_str(), entry.mode, 0) != 0)
            return fail_errno(str_cat("chmod ", m_root.display(path)));
        set_path_xattrs(parent_fd, leaf, path, entry);
        return set_path_times(parent_fd, leaf, path, entry);
    }

    // chown of `fd`, or of `name` in `fd` without following it. Comes before chmod, which it would undo
    // (chown clears setuid and setgid).
    Status set_owner(int fd, const char* name, const std::string& path, const TarEntry& entry) {
        auto uid = m_options.owner ? m_options.owner->uid : static_cast<uid_t>(entry.uid);
        auto gid = m_options.owner ? m_options.owner->gid : static_cast<gid_t>(entry.gid);
        int ret = name ? ::fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) : ::fchown(fd, uid, gid);
        bool recording = m_options.ownership_failure == OwnershipFailure::warn_once;
        if (ret == 0) {
            // A directory this entry merges into may carry an override from a lower layer that is now wrong.
            if (recording && entry.type == TarEntryType::directory) remove_override_stat(fd, name);
            return {};
        }
        int err = errno;
        if ((err == EPERM || err == EINVAL) && recording) {
            // The layer writer reads the override back, so kiln's own layers keep the image's ownership.
            mode_t mode = file_type_bits(entry.type) | (entry.mode & 07777);
            if (write_override_stat(fd, name, {uid, gid, mode})) return {};
            if (!m_warned_ownership) {
                m_warned_ownership = true;
                log_warn("layer ", m_options.layer_name, ": cannot apply or record the layer's file ownership ",
                         "(first: ", uid, ":", gid, " on the ", tar_entry_type_name(entry.type), " \"", path,
                         "\": ", std::strerror(err), "); such entries keep the builder's ids");
            }
            return {};
        }
        return fail_errno(str_cat("chown ", m_root.display(path), " to ", uid, ":", gid), err);
    }

    void set_path_xattrs(int parent_fd, const std::string& leaf, const std::string& path,
                         const TarEntry& entry) {
        for (const auto& [name, value] : entry.xattrs) {
            if (is_host_private_xattr(name)) continue;
            std::string applied = applied_xattr_value(name, value);
            if (::lsetxattr(proc_path(parent_fd, leaf).c_str(), name.c_str(), applied.data(), applied.size(),
                            0) != 0)
                warn_xattr(name, path, errno);
        }
    }

    // Extended attributes are best-effort: the filesystem or the namespace may not allow them.
    void warn_xattr(const std::string& name, const std::string& path, int err) {
        if (m_warned_xattrs) return;
        m_warned_xattrs = true;
        log_warn("layer ", m_options.layer_name, ": cannot set extended attributes (first: ", name, " on \"",
                 path, "\": ", std::strerror(err), "); continuing without them");
    }

    Status set_path_times(int parent_fd, const std::string& leaf, const std::string& path,
                          const TarEntry& entry) {
        struct timespec times[2] = {clamp_time(entry.atime.value_or(entry.mtime)), clamp_time(entry.mtime)};
        if (::utimensat(parent_fd, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(str_cat("set times of ", m_root.display(path)));
        return {};
    }

    bool written(std::string_view path) const {
        return std::binary_search(m_written.begin(), m_written.end(), path_hash(path));
    }

    // Empties each opaque directory of everything this layer did not write, descending into the directories
    // it did.
    Status clear_opaque_directories() {
        if (m_opaque_directories.empty()) return {};
        std::sort(m_written.begin(), m_written.end());
        forget_parent();
        for (const std::string& top : m_opaque_directories) {
            std::vector<std::string> pending{top};
            while (!pending.empty()) {
                std::string dir = std::move(pending.back());
                pending.pop_back();
                int nofollow = dir == top ? 0 : O_NOFOLLOW;
                UniqueFd fd(openat_in_root(m_root.fd(), dir, O_PATH | O_DIRECTORY | nofollow, 0));
                if (!fd) {
                    if (errno == ENOENT || errno == ENOTDIR) continue;
                    return fail_errno(str_cat("open ", m_root.display(dir)));
                }
                KILN_ASSIGN(auto names, list_directory(fd.get(), m_root.display(dir)));
                for (const std::string& name : names) {
                    std::string child = join_path(dir, name);
                    if (!written(child)) {
                        KILN_TRY(remove_at(fd.get(), name, m_root.display(child)));
                        continue;
                    }
                    struct stat st;
                    if (::fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                        S_ISDIR(st.st_mode))
                        pending.push_back(std::move(child));
                }
            }
        }
        return {};
    }

    // Directory modes and times, in tar order so that a repeated entry's last word wins.
    Status finish_directories() {
        for (const PendingDirectory& dir : m_directories) {
            auto [parent, leaf_view] = split_parent(dir.path);
            std::string leaf(leaf_view);
            UniqueFd parent_fd(openat_in_root(m_root.fd(), parent, O_PATH | O_DIRECTORY, 0));
            struct stat st;
            // Removed or replaced later in the layer: nothing left to finish.
            if (!parent_fd || ::fstatat(parent_fd.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISDIR(st.st_mode))
                continue;
            if (::fchmodat(parent_fd.get(), leaf.c_str(), dir.mode, 0) != 0)
                return fail_errno(str_cat("chmod ", m_root.display(dir.path)));
            if (::utimensat(parent_fd.get(), leaf.c_str(), dir.times, AT_SYMLINK_NOFOLLOW) != 0)
                return fail_errno(str_cat("set times of ", m_root.display(dir.path)));
        }
        return {};
    }

    const RootFs& m_root;
    const ExtractOptions& m_options;
    TarReader m_tar;
    ExtractStats m_stats;
    std::string m_parent_path;
    UniqueFd m_parent_fd;
    bool m_parent_stale = false;
    std::optional<std::string> m_parent_resolved;  // m_parent_fd's path in the root, once asked for
    std::string m_root_real;
    // Hashes of the paths this layer wrote (and their ancestors): 8 bytes an entry, for opaque markers.
    std::vector<std::uint64_t> m_written;
    std::string m_last_recorded_parent = "\n";
    std::vector<std::string> m_opaque_directories;
    std::vector<std::string> m_overlay_opaque_directories;  // WhiteoutFormat::overlay
    std::vector<std::string> m_overlay_whiteouts;           // WhiteoutFormat::overlay
    std::vector<std::string> m_deleting_in;                 // WhiteoutFormat::overlay: whiteouts' directories
    size_t m_assumption_bytes = 0;                          // WhiteoutFormat::overlay
    std::vector<PendingDirectory> m_directories;
    bool m_devices_forbidden = false;
    bool m_warned_ownership = false;
    bool m_warned_xattrs = false;
};

}  // namespace

Result<ExtractStats> apply_layer(const RootFs& root, Reader& tar, const ExtractOptions& options) {
    LayerApplier applier(root, tar, options);
    const char* what = options.mode == ExtractMode::archive ? "archive " : "layer ";
    return with_context(applier.run(), str_cat(what, options.layer_name));
}

}  // namespace kiln
