#include "builder/snapshot/extracted_layer_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "builder/sandbox/id_map.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/apply_image.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

using nlohmann::json;

constexpr const char* k_entry_file = "entry.json";
// An entry's record holds at most LowerAssumptions' bound of paths (1 MiB), escaped.
constexpr size_t k_entry_limit = 8 << 20;
// The size an entry counts for, beyond its files' bytes: a block for each entry of the tree, as ext4 and xfs
// give each small file and directory one.
constexpr std::uint64_t k_bytes_per_entry = 4096;

bool is_entry_name(const std::string& name) {
    return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

Result<std::vector<std::string>> string_list(const json& value, const std::string& display) {
    std::vector<std::string> list;
    if (!value.is_array()) return fail(str_cat(display, ": not a list"));
    for (const json& item : value) {
        if (!item.is_string()) return fail(str_cat(display, ": not a list of paths"));
        std::string path = item.get<std::string>();
        if (path.find('\0') != std::string::npos) return fail(str_cat(display, ": a path holds a NUL byte"));
        list.push_back(std::move(path));
    }
    return list;
}

// A blob handed to a keeper that is older than this was left by one that was killed.
constexpr std::time_t k_stale_blob_seconds = 6 * 3600;

// What eviction reads of an entry's record: its estimated size (0 when unreadable) and its layer's digest.
struct Recorded {
    std::uint64_t size = 0;
    std::string digest;
};

Recorded read_recorded(const std::string& entry_file) {
    Recorded recorded;
    auto text = read_file(entry_file, k_entry_limit);
    json entry = json::parse(text ? *text : std::string(), nullptr, false);
    if (!entry.is_object()) return recorded;
    if (entry.contains("size") && entry["size"].is_number_unsigned()) recorded.size = entry["size"].get<std::uint64_t>();
    if (entry.contains("digest") && entry["digest"].is_string()) {
        if (auto digest = Digest::parse(entry["digest"].get<std::string>())) recorded.digest = digest->short_str();
    }
    return recorded;
}

// The lock file's inode is still the one at `path`: eviction unlinks it, and a build that waited on the old
// one must open the new.
bool still_linked(int fd, const std::string& path) {
    struct stat held, current;
    return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &current) == 0 && held.st_ino == current.st_ino &&
           held.st_dev == current.st_dev;
}

}  // namespace

std::string extracted_layer_variant(OwnershipFailure ownership_failure) {
    // Parsed and formatted again: the kernel pads the columns to widths that differ between kernels.
    std::string maps;
    for (const char* which : {"uid_map", "gid_map"}) {
        auto map = read_own_id_map(which);
        maps += map ? format_id_map(*map) : std::string("unreadable\n");
    }
    maps.append(ownership_failure == OwnershipFailure::error ? "owners" : "owners-ignored");
    return sha256_hex(maps).substr(0, 16);
}

Result<std::unique_ptr<ExtractedLayerStore>> ExtractedLayerStore::open(const std::string& root,
                                                                       const std::string& variant, Discard discard) {
    if (variant.empty() || variant.find('/') != std::string::npos || variant == "." || variant == "..")
        return fail(str_cat("extracted layers: \"", variant, "\" is not a variant's name"));
    std::string dir = str_cat(root, "/", variant);
    KILN_TRY(make_directories(dir, 0700));
    for (const std::string& path : {root, dir}) {
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) return fail_errno(str_cat("stat ", path));
        if (!S_ISDIR(st.st_mode)) return fail(str_cat(path, " is not a directory"));
        if (st.st_uid != ::geteuid())
            return fail(str_cat(path, " belongs to uid ", st.st_uid, ", not to kiln's uid ", ::geteuid()));
        if ((st.st_mode & 022) != 0)
            return fail(str_cat(path, " may be written by other users: its layers could not be trusted"));
    }
    if (!discard) discard = [](const std::string& path) {
        if (auto removed = remove_tree(path, true); !removed) log_warn(removed.error().message());
    };
    // What an eviction killed between its rename and its removal left, and blobs that a keeper killed before
    // it was done left (a live keeper's are younger).
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", dir));
    KILN_ASSIGN(std::vector<std::string> names, list_directory(fd.get(), dir));
    for (const std::string& name : names) {
        std::string path = str_cat(dir, "/", name);
        struct stat st;
        if (name.find(".evicted-") != std::string::npos) discard(path);
        else if (name.find(".blob-") != std::string::npos && ::lstat(path.c_str(), &st) == 0 &&
                 st.st_mtime + k_stale_blob_seconds < ::time(nullptr))
            ::unlink(path.c_str());
    }
    return std::unique_ptr<ExtractedLayerStore>(new ExtractedLayerStore(root, variant, std::move(discard)));
}

Result<UniqueFd> ExtractedLayerStore::lock_entry(const std::string& hex, int operation) const {
    std::string path = str_cat(m_dir, "/", hex, ".lock");
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return fail_errno(str_cat("open ", path));
    while (::flock(fd.get(), operation) != 0) {
        if (errno == EWOULDBLOCK) return UniqueFd();
        if (errno != EINTR) return fail_errno(str_cat("flock ", path));
    }
    if (!still_linked(fd.get(), path)) return UniqueFd();
    return fd;
}

Result<StoredLayer> ExtractedLayerStore::read_entry(const std::string& hex) const {
    std::string path = str_cat(m_dir, "/", hex, "/", k_entry_file);
    KILN_ASSIGN(std::string text, read_file(path, k_entry_limit));
    json entry = json::parse(text, nullptr, false);
    if (!entry.is_object() || !entry.contains("directory_paths") || !entry.contains("deleting_in") ||
        !entry.contains("needs_stack") || !entry["needs_stack"].is_boolean())
        return fail(str_cat(path, ": not an extracted layer's record"));
    StoredLayer stored{.tree = str_cat(m_dir, "/", hex, "/tree"), .assumptions = {}};
    KILN_ASSIGN(stored.assumptions.directory_paths, string_list(entry["directory_paths"], path));
    KILN_ASSIGN(stored.assumptions.deleting_in, string_list(entry["deleting_in"], path));
    stored.assumptions.needs_stack = entry["needs_stack"].get<bool>();
    struct stat st;
    if (::lstat(stored.tree.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(str_cat(stored.tree, ": missing, or not a directory"));
    // Its mtime is when it was last used: eviction goes by it.
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) != 0)
        log_debug("touch ", path, ": ", std::strerror(errno));
    return stored;
}

Status ExtractedLayerStore::extract_entry(const std::string& hex, const Layer& layer,
                                          OwnershipFailure ownership_failure, bool& keepable) const {
    std::string partial = str_cat(m_dir, "/", hex, ".partial");
    if (path_exists(partial)) {
        log_info("extracted layers: removing ", partial, ", which a build that ended early left");
        KILN_TRY(remove_tree(partial, true));
    }
    std::string tree = partial + "/tree";
    KILN_TRY(make_directories(partial, 0700));
    if (::mkdir(tree.c_str(), 0755) != 0) return fail_errno(str_cat("mkdir ", tree));
    ExtractStats stats;
    {
        KILN_ASSIGN(RootFs root, RootFs::open(tree));
        KILN_ASSIGN(stats, with_context(extract_layer(layer, root, ownership_failure, WhiteoutFormat::overlay),
                                        str_cat("extracting layer ", layer.descriptor().digest.str(), " into ", m_dir)));
    }
    keepable = stats.lower_layer_links.empty();
    if (!keepable) return remove_tree(partial, true);
    const LowerAssumptions& assumptions = stats.lower_assumptions;
    json entry = {{"diff_id", layer.diff_id().str()},
                  {"digest", layer.descriptor().digest.str()},
                  {"size", stats.bytes + (stats.entries + 1) * k_bytes_per_entry},
                  {"directory_paths", assumptions.directory_paths},
                  {"deleting_in", assumptions.deleting_in},
                  {"needs_stack", assumptions.needs_stack}};
    KILN_TRY(write_file_atomic(str_cat(partial, "/", k_entry_file), entry.dump(), 0600));
    // Every file of the tree on the disk before the entry appears: one syncfs, not a fsync per file.
    UniqueFd dir(::open(partial.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::syncfs(dir.get()) != 0) return fail_errno(str_cat("syncfs ", partial));
    std::string entry_dir = str_cat(m_dir, "/", hex);
    if (::rename(partial.c_str(), entry_dir.c_str()) != 0)
        return fail_errno(str_cat("rename ", partial, " to ", entry_dir));
    return sync_directory(m_dir);
}

Result<std::optional<StoredLayer>> ExtractedLayerStore::acquire(const Layer& layer, OwnershipFailure ownership_failure) {
    std::string hex = layer.diff_id().encoded();
    std::string entry_dir = str_cat(m_dir, "/", hex);
    bool damaged_once = false;
    while (true) {
        KILN_ASSIGN(UniqueFd lock, lock_entry(hex, LOCK_SH));
        if (!lock) continue;  // evicted meanwhile: a new lock file
        if (!path_exists(entry_dir)) {
            // Exclusive to extract it; another build may have done so while this one waited.
            if (::flock(lock.get(), LOCK_EX) != 0) return fail_errno(str_cat("flock ", entry_dir, ".lock"));
            if (!still_linked(lock.get(), entry_dir + ".lock")) continue;
            if (!path_exists(entry_dir)) {
                bool keepable = true;
                KILN_TRY(extract_entry(hex, layer, ownership_failure, keepable));
                if (!keepable) {
                    log_debug("extracted layers: layer ", layer.descriptor().digest.short_str(),
                              " has hardlinks into the layers below it, and is extracted for this build only");
                    return std::optional<StoredLayer>();
                }
                log_info("extracted layers: kept layer ", layer.descriptor().digest.short_str(), " in ", m_dir);
            }
            if (::flock(lock.get(), LOCK_SH) != 0) return fail_errno(str_cat("flock ", entry_dir, ".lock"));
            if (!still_linked(lock.get(), entry_dir + ".lock")) continue;
        } else {
            log_info("extracted layers: layer ", layer.descriptor().digest.short_str(), " is already extracted");
        }
        auto stored = read_entry(hex);
        if (!stored) {
            // A record that cannot be read (damaged, or written by hand) makes the entry worthless: it is moved
            // out of the way under the exclusive lock, and the layer extracted again.
            if (damaged_once) return fail(std::move(stored.error()));
            damaged_once = true;
            log_warn("extracted layers: ", stored.error().message(), ": extracting the layer again");
            KILN_TRY(drop_entry(hex, std::move(lock)));
            continue;
        }
        std::lock_guard guard(m_mutex);
        m_held.push_back(std::move(lock));
        return std::optional<StoredLayer>(std::move(*stored));
    }
}

Status ExtractedLayerStore::drop_entry(const std::string& hex, UniqueFd lock) const {
    std::string entry_dir = str_cat(m_dir, "/", hex);
    // Others holding it keep what they mounted; the tree goes once they let go.
    if (::flock(lock.get(), LOCK_EX) != 0) return fail_errno(str_cat("flock ", entry_dir, ".lock"));
    if (!still_linked(lock.get(), entry_dir + ".lock")) return {};
    std::string doomed = str_cat(entry_dir, ".evicted-", unique_name_suffix());
    if (::rename(entry_dir.c_str(), doomed.c_str()) != 0) {
        if (errno == ENOENT) return {};
        return fail_errno(str_cat("rename ", entry_dir, " to ", doomed));
    }
    // While it is still held: a build waiting on it then finds it unlinked, and opens a new one.
    ::unlink(str_cat(entry_dir, ".lock").c_str());
    m_discard(doomed);
    return {};
}

void ExtractedLayerStore::release() {
    std::lock_guard guard(m_mutex);
    m_held.clear();
}

bool ExtractedLayerStore::contains(const Layer& layer) const {
    return path_exists(str_cat(m_dir, "/", layer.diff_id().encoded(), "/", k_entry_file));
}

void ExtractedLayerStore::keep_later(const Layer& layer) {
    std::string blob = layer.file_path();
    if (blob.empty() || !path_exists(blob)) return;
    std::lock_guard guard(m_mutex);
    m_to_keep.push_back(ToKeep{layer.descriptor(), layer.diff_id(), std::move(blob)});
}

void ExtractedLayerStore::keep_in_background(OwnershipFailure ownership_failure, std::uint64_t max_bytes) {
    std::vector<ToKeep> layers;
    {
        std::lock_guard guard(m_mutex);
        layers = std::exchange(m_to_keep, {});
    }
    constexpr size_t k_fixed_arguments = 6;  // "kiln", the command, root, variant, ownership, max
    std::vector<std::string> argv = {"kiln", k_keep_layers_command, m_root, m_variant,
                                     ownership_failure == OwnershipFailure::error ? "error" : "warn",
                                     str_cat(max_bytes)};
    for (const ToKeep& layer : layers) {
        std::string handed = str_cat(m_dir, "/", layer.diff_id.encoded(), ".blob-", unique_name_suffix());
        if (::link(layer.blob.c_str(), handed.c_str()) != 0) {
            UniqueFd in(::open(layer.blob.c_str(), O_RDONLY | O_CLOEXEC));
            UniqueFd out(::open(handed.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
            if (!in || !out || !copy_file_data(in.get(), out.get(), handed)) {
                log_warn("extracted layers: cannot hand ", layer.descriptor.digest.short_str(), " over to be kept");
                ::unlink(handed.c_str());
                continue;
            }
        }
        for (const std::string& field : {layer.descriptor.media_type, layer.descriptor.digest.str(), layer.diff_id.str(), handed})
            argv.push_back(field);
    }
    if (argv.size() == k_fixed_arguments) return;
    log_info("extracted layers: keeping ", (argv.size() - k_fixed_arguments) / 4, " layer(s) in ", m_dir, " in the background");
    if (auto spawned = spawn_child(argv, {.path = "/proc/self/exe", .new_session = true, .default_signals = true}); !spawned)
        log_warn("extracted layers: ", spawned.error().message());
}

int keep_layers(const std::vector<std::string>& args) {
    if (args.size() < 4 || (args.size() - 4) % 4 != 0) return 2;
    OwnershipFailure ownership = args[2] == "error" ? OwnershipFailure::error : OwnershipFailure::warn_once;
    std::uint64_t max_bytes = 0;
    if (!parse_uint64(args[3], max_bytes)) return 2;
    auto store = ExtractedLayerStore::open(args[0], args[1]);
    if (!store) return 1;
    int code = 0;
    for (size_t i = 4; i < args.size(); i += 4) {
        const std::string& blob = args[i + 3];
        auto digest = Digest::parse(args[i + 1]);
        auto diff_id = Digest::parse(args[i + 2]);
        struct stat st;
        // The extraction checks the blob against its digest and the tar against its diffID.
        if (digest && diff_id && ::stat(blob.c_str(), &st) == 0) {
            FileLayer layer(Descriptor{.media_type = args[i], .digest = *digest, .size = st.st_size}, *diff_id, blob);
            if (!(*store)->acquire(layer, ownership)) code = 1;
        }
        ::unlink(blob.c_str());
    }
    (*store)->release();
    if (max_bytes && !(*store)->evict(max_bytes)) code = 1;
    return code;
}

namespace {

// An entry as eviction sees it: its name, its record, and when it was last used.
struct Candidate {
    std::string hex;
    Recorded recorded;
    struct timespec used;
};

// Every entry in `dir` that has a record.
Result<std::vector<Candidate>> list_entries(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", dir));
    KILN_ASSIGN(std::vector<std::string> names, list_directory(fd.get(), dir));
    std::vector<Candidate> entries;
    for (const std::string& name : names) {
        if (!is_entry_name(name)) continue;
        std::string entry_file = str_cat(dir, "/", name, "/", k_entry_file);
        struct stat st;
        if (::stat(entry_file.c_str(), &st) != 0) continue;
        entries.push_back({name, read_recorded(entry_file), st.st_mtim});
    }
    return entries;
}

}  // namespace

std::uint64_t ExtractedLayerStore::size() const {
    std::uint64_t total = 0;
    for (const Candidate& entry : list_entries(m_dir).value_or(std::vector<Candidate>{})) total += entry.recorded.size;
    return total;
}

Result<EvictionStats> ExtractedLayerStore::evict(std::uint64_t max_bytes) {
    KILN_ASSIGN(std::vector<Candidate> candidates, list_entries(m_dir));
    EvictionStats stats;
    for (const Candidate& candidate : candidates) stats.kept += candidate.recorded.size;
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec : a.used.tv_nsec < b.used.tv_nsec;
    });
    for (const Candidate& candidate : candidates) {
        if (stats.kept <= max_bytes) break;
        KILN_ASSIGN(UniqueFd lock, lock_entry(candidate.hex, LOCK_EX | LOCK_NB));
        if (!lock) continue;  // in use by a build, or being evicted by another
        if (!path_exists(str_cat(m_dir, "/", candidate.hex))) continue;
        const Recorded& recorded = candidate.recorded;
        log_info("extracted layers: evicted ",
                 recorded.digest.empty() ? str_cat("the layer of diffID sha256:", candidate.hex.substr(0, 12)) : recorded.digest,
                 " (", format_bytes(recorded.size), ", unused the longest)");
        KILN_TRY(drop_entry(candidate.hex, std::move(lock)));
        ++stats.entries;
        stats.bytes += recorded.size;
        stats.kept -= recorded.size;
    }
    return stats;
}

}  // namespace kiln
