#include "layers/layer_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_set>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"
#include "layers/tar_writer.hpp"
#include "layers/whiteout.hpp"

namespace kiln {
namespace {

constexpr size_t k_copy_buffer_size = 256 << 10;

// One tar entry to write. `name` is the tar name without a trailing slash; an opaque marker carries its
// directory instead, so that it sorts right after that directory and before its entries.
struct PlannedEntry {
    std::string name;
    LayerEntryKind kind;

    int rank() const { return kind == LayerEntryKind::opaque_marker ? 1 : 0; }
    bool operator==(const PlannedEntry&) const = default;
};

bool planned_less(const PlannedEntry& a, const PlannedEntry& b) {
    if (a.name != b.name) return path_less(a.name, b.name);
    return a.rank() < b.rank();
}

// Sorted, deduplicated entries with every ancestor directory added.
Result<std::vector<PlannedEntry>> plan_entries(const std::vector<LayerEntry>& entries) {
    std::vector<PlannedEntry> planned;
    planned.reserve(entries.size());
    std::unordered_set<std::string> ancestors;
    auto add_ancestors = [&](std::string_view directory) {
        // Once a directory is in, so are its ancestors.
        while (!directory.empty() && ancestors.emplace(directory).second)
            directory = split_parent(directory).first;
    };
    for (const LayerEntry& entry : entries) {
        if (escapes_root(entry.path))
            return fail(str_cat("layer entry \"", entry.path, "\" climbs above the root"));
        std::string path = clean_path(entry.path);
        auto [parent, leaf] = split_parent(path);
        switch (entry.kind) {
            case LayerEntryKind::path:
                if (path.empty()) continue;  // the root's metadata is not part of a layer
                if (leaf.starts_with(k_whiteout_prefix))
                    return fail(
                        str_cat("\"/", path, "\" cannot be stored in a layer: its name reads as a whiteout"));
                add_ancestors(parent);
                planned.push_back({std::move(path), LayerEntryKind::path});
                break;
            case LayerEntryKind::whiteout:
                if (path.empty()) return fail("a whiteout cannot delete the root directory");
                add_ancestors(parent);
                planned.push_back(
                    {join_path(parent, str_cat(k_whiteout_prefix, leaf)), LayerEntryKind::whiteout});
                break;
            case LayerEntryKind::opaque_marker:
                add_ancestors(path);
                planned.push_back({std::move(path), LayerEntryKind::opaque_marker});
                break;
        }
    }
    for (const std::string& directory : ancestors) planned.push_back({directory, LayerEntryKind::path});
    std::sort(planned.begin(), planned.end(), planned_less);
    planned.erase(std::unique(planned.begin(), planned.end()), planned.end());
    return planned;
}

// Reads entries from the rootfs and writes them to a TarWriter.
class LayerTarBuilder {
public:
    LayerTarBuilder(const RootFs& root, TarWriter& tar, const LayerWriteOptions& options)
        : m_root(root), m_tar(tar), m_options(options), m_buffer(k_copy_buffer_size) {}

    Status write(const PlannedEntry& planned) {
        switch (planned.kind) {
            case LayerEntryKind::path:
                return write_path(planned.name);
            case LayerEntryKind::whiteout:
                return write_marker(planned.name);
            case LayerEntryKind::opaque_marker:
                return write_marker(join_path(planned.name, k_opaque_marker));
        }
        return {};
    }

private:
    // Whiteouts and opaque markers: empty regular files with every field zero but the mtime, which is the
    // layer's timestamp when it has one.
    Status write_marker(const std::string& name) {
        TarEntry entry;
        entry.name = name;
        entry.mtime = {m_options.timestamp.value_or(0), 0};
        return m_tar.write_header(entry);
    }

    Status write_path(const std::string& path) {
        auto [parent, leaf_view] = split_parent(path);
        std::string leaf(leaf_view);
        KILN_ASSIGN(int dir_fd, directory(parent));
        struct stat st;
        if (::fstatat(dir_fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(str_cat("lstat ", m_root.display(path)));
        TarEntry entry;
        entry.name = path;
        entry.mode = st.st_mode & 07777;
        entry.uid = st.st_uid;
        entry.gid = st.st_gid;
        entry.mtime = {m_options.timestamp.value_or(st.st_mtim.tv_sec), 0};
        switch (st.st_mode & S_IFMT) {
            case S_IFREG:
                return write_regular(dir_fd, leaf, st, entry);
            case S_IFDIR:
                entry.type = TarEntryType::directory;
                break;
            case S_IFLNK: {
                entry.type = TarEntryType::symlink;
                KILN_ASSIGN(entry.link_target, read_link_at(dir_fd, leaf, m_root.display(path)));
                break;
            }
            case S_IFIFO:
                entry.type = TarEntryType::fifo;
                break;
            case S_IFCHR:
            case S_IFBLK:
                entry.type = S_ISCHR(st.st_mode) ? TarEntryType::char_device : TarEntryType::block_device;
                entry.rdev_major = ::major(st.st_rdev);
                entry.rdev_minor = ::minor(st.st_rdev);
                break;
            default:
                log_debug("leaving the socket ", m_root.display(path), " out of the layer");
                return {};
        }
        entry.xattrs = read_xattrs(-1, str_cat("/proc/self/fd/", dir_fd, "/", leaf), path, entry);
        return m_tar.write_header(entry);
    }

    Status write_regular(int dir_fd, const std::string& leaf, const struct stat& st, TarEntry& entry) {
        if (st.st_nlink > 1) {
            auto [first, inserted] = m_first_paths.try_emplace({st.st_dev, st.st_ino}, entry.name);
            if (!inserted) {
                entry.type = TarEntryType::hardlink;
                entry.link_target = first->second;
                return m_tar.write_header(entry);
            }
        }
        // O_NONBLOCK: should the file have been swapped for a FIFO since lstat, reading fails instead of
        // hanging.
        UniqueFd fd(::openat(dir_fd, leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!fd) return fail_errno(str_cat("open ", m_root.display(entry.name)));
        entry.type = TarEntryType::regular;
        entry.size = st.st_size;
        entry.xattrs = read_xattrs(fd.get(), "", entry.name, entry);
        KILN_TRY(m_tar.write_header(entry));
        // Exactly the size the header announced: a file that shrank meanwhile cannot be stored truthfully.
        // Holes are not read: their zeros come from memory, so a sparse 10 GiB disk image costs the reads of
        // its data only.
        // A file with as many blocks as bytes has no hole worth looking for (most files): two lseeks fewer.
        std::int64_t offset = 0;
        bool dense = static_cast<std::int64_t>(st.st_blocks) * 512 >= entry.size;
        DataExtent extent = dense ? DataExtent{0, entry.size} : data_extent(fd.get(), 0, entry.size);
        while (offset < entry.size) {
            if (offset < extent.begin) {
                size_t n =
                    static_cast<size_t>(std::min<std::int64_t>(extent.begin - offset, std::ssize(m_zeros)));
                KILN_TRY(m_tar.write_data(m_zeros.data(), n));
                offset += static_cast<std::int64_t>(n);
                continue;
            }
            std::int64_t until = std::min(extent.end, entry.size);
            size_t want = static_cast<size_t>(std::min<std::int64_t>(until - offset, static_cast<std::int64_t>(m_buffer.size())));
            ssize_t n = ::pread(fd.get(), m_buffer.data(), want, offset);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return fail_errno(str_cat("read ", m_root.display(entry.name)));
            if (n == 0)
                return fail(str_cat(m_root.display(entry.name), " shrank while it was being archived"));
            KILN_TRY(m_tar.write_data(m_buffer.data(), static_cast<size_t>(n)));
            offset += n;
            if (offset >= extent.end && offset < entry.size) extent = data_extent(fd.get(), offset, entry.size);
        }
        return {};
    }

    // The next run of data at or after `offset` in a file of `size` bytes: [begin, end). Before `begin` is a
    // hole. Where the filesystem cannot say, or the file is now shorter than `size`, everything from `offset`
    // counts as data, so that reading it finds out.
    struct DataExtent {
        std::int64_t begin;
        std::int64_t end;
    };
    static DataExtent data_extent(int fd, std::int64_t offset, std::int64_t size) {
        off_t begin = ::lseek(fd, offset, SEEK_DATA);
        if (begin < 0) {
            struct stat st;
            bool hole_to_the_end = errno == ENXIO && ::fstat(fd, &st) == 0 && st.st_size >= size;
            return hole_to_the_end ? DataExtent{size, size} : DataExtent{offset, size};
        }
        // A file that grew since lstat may have data past `size`: only the announced bytes are stored.
        if (begin >= size) return {size, size};
        off_t end = ::lseek(fd, begin, SEEK_HOLE);
        return {begin, end < 0 ? size : std::max<std::int64_t>(end, begin + 1)};
    }

    // The directory `parent` opened component by component without following symlinks. The chain of open
    // directories is kept: entries arrive depth-first, so consecutive ones share most of it.
    Result<int> directory(std::string_view parent) {
        std::vector<std::string> components =
            parent.empty() ? std::vector<std::string>{} : split(parent, '/');
        size_t common = 0;
        while (common < components.size() && common < m_chain.size() &&
               m_chain[common].first == components[common])
            ++common;
        m_chain.resize(common);
        for (size_t i = common; i < components.size(); ++i) {
            int at = m_chain.empty() ? m_root.fd() : m_chain.back().second.get();
            UniqueFd fd(::openat(at, components[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd) {
                std::vector<std::string> prefix(components.begin(),
                                                components.begin() + static_cast<long>(i) + 1);
                return fail_errno(str_cat("open the directory ", m_root.display(join(prefix, "/"))));
            }
            m_chain.emplace_back(components[i], std::move(fd));
        }
        return m_chain.empty() ? m_root.fd() : m_chain.back().second.get();
    }

    // Extended attributes of an fd, or of `proc_path` (not followed), sorted by name for stable output, as
    // the layer must carry them: a file capability in its v2 form, whatever namespace set it. An ownership
    // override, which the layer does not carry, becomes `entry`'s uid and gid instead. Best-effort: a
    // filesystem without xattrs has none to record.
    std::vector<std::pair<std::string, std::string>> read_xattrs(int fd, const std::string& proc_path,
                                                                 const std::string& path, TarEntry& entry) {
        auto all = kiln::read_xattrs(fd, proc_path);
        if (!all) {
            warn_xattrs(path, all.error().errno_value());
            return {};
        }
        std::vector<std::pair<std::string, std::string>> xattrs;
        for (auto& [name, value] : *all) {
            if (name == k_override_stat_xattr) {
                apply_override(parse_override_stat(value), entry);
                continue;
            }
            if (is_host_private_xattr(name)) continue;
            if (name == k_file_capability_xattr) value = normalize_file_capability(value);
            xattrs.emplace_back(std::move(name), std::move(value));
        }
        std::sort(xattrs.begin(), xattrs.end());
        return xattrs;
    }

    // The owner that extraction or COPY could only record (a single-id user namespace holds no other ids).
    // The mode stays lstat's: it is always applied for real, and a later chmod by a RUN step changes only it.
    static void apply_override(const std::optional<OverrideStat>& recorded, TarEntry& entry) {
        if (!recorded || !override_applies(*recorded, entry.type == TarEntryType::directory ? S_IFDIR : S_IFREG))
            return;
        entry.uid = recorded->uid;
        entry.gid = recorded->gid;
    }

    void warn_xattrs(const std::string& path, int err) {
        if (m_warned_xattrs) return;
        m_warned_xattrs = true;
        log_warn("cannot read extended attributes (first: ", m_root.display(path), ": ", std::strerror(err),
                 "); the layer is written without them");
    }

    const RootFs& m_root;
    TarWriter& m_tar;
    const LayerWriteOptions& m_options;
    Buffer m_buffer;
    const std::vector<char> m_zeros = std::vector<char>(k_copy_buffer_size, '\0');  // a hole's contents
    std::vector<std::pair<std::string, UniqueFd>> m_chain;
    // The first path written for each inode with several links, which later paths link to.
    std::map<std::pair<dev_t, ino_t>, std::string> m_first_paths;
    bool m_warned_xattrs = false;
};

}  // namespace

Result<LayerWriteResult> write_layer(const RootFs& root, const std::vector<LayerEntry>& entries, Writer& out,
                                     const LayerWriteOptions& options) {
    KILN_ASSIGN(std::vector<PlannedEntry> planned, plan_entries(entries));
    HashingWriter compressed(&out);
    KILN_ASSIGN(std::unique_ptr<Compressor> compressor, make_compressor(compressed, options.compression));
    HashingWriter uncompressed(compressor.get());
    TarWriter tar(uncompressed);
    LayerTarBuilder builder(root, tar, options);
    for (const PlannedEntry& entry : planned)
        KILN_TRY_CONTEXT(builder.write(entry), str_cat("writing \"", entry.name, "\" to a layer"));
    KILN_TRY(tar.finish());
    KILN_TRY(compressor->finish());

    LayerWriteResult result;
    KILN_ASSIGN(result.diff_id, Digest::parse(uncompressed.finish_digest()));
    KILN_ASSIGN(result.digest, Digest::parse(compressed.finish_digest()));
    result.uncompressed_size = uncompressed.size();
    result.compressed_size = compressed.size();
    result.compression = options.compression.compression;
    return result;
}

std::vector<LayerEntry> layer_entries_from_changes(const std::vector<Change>& changes) {
    std::vector<LayerEntry> entries;
    entries.reserve(changes.size());
    for (const Change& change : changes) {
        switch (change.kind) {
            case ChangeKind::added:
            case ChangeKind::modified:
                entries.push_back({LayerEntryKind::path, change.path});
                break;
            case ChangeKind::replaced:
                // The new directory hides all the old one held; what it holds now follows as added.
                entries.push_back({LayerEntryKind::path, change.path});
                entries.push_back({LayerEntryKind::opaque_marker, change.path});
                break;
            case ChangeKind::deleted:
                entries.push_back({LayerEntryKind::whiteout, change.path});
                break;
        }
    }
    return entries;
}

const Digest& empty_layer_diff_id() {
    static const Digest digest = Digest::from_sha256_hex(sha256_hex(std::string(2 * 512, '\0')));
    return digest;
}

}  // namespace kiln
