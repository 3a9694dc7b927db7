#include "layers/lower_stack.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"
#include "layers/snapshot_overlay.hpp"
#include "layers/tar_entry.hpp"

namespace kiln {
namespace {

enum class StackKind { directory, other, absent };

// What shows at a path through a stack of layer directories.
struct StackEntry {
    StackKind kind = StackKind::absent;
    bool whole_path = true;          // false: the lookup stopped at a parent, which `kind` describes
    const RootFs* holder = nullptr;  // the layer whose entry shows, unless absent
};

// Looks `path` (cleaned, relative) up through `roots` (topmost first) the way overlayfs does: the topmost
// entry shows; directories merge with the directories below them until an opaque one, and anything that is
// not a directory (a whiteout included) ends the merge. Stops at the first component that is not a directory.
Result<StackEntry> find_in_stack(const std::vector<RootFs>& roots, const std::string& path) {
    std::vector<const RootFs*> merging;
    for (const RootFs& root : roots) merging.push_back(&root);
    std::vector<std::string> parts = split(path, '/');
    std::string prefix;
    for (size_t i = 0; i < parts.size(); ++i) {
        prefix = prefix.empty() ? parts[i] : str_cat(prefix, "/", parts[i]);
        StackEntry entry{.whole_path = i + 1 == parts.size()};
        std::vector<const RootFs*> below;
        for (const RootFs* root : merging) {
            // Each of `merging` holds the parent as a directory, so nothing here follows a symlink.
            struct stat st;
            if (::fstatat(root->fd(), prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT || errno == ENOTDIR) continue;
                return fail_errno(str_cat("lstat ", root->display(prefix)));
            }
            if (is_overlay_whiteout(st.st_mode, st.st_rdev)) break;
            if (!entry.holder) {
                entry.holder = root;
                entry.kind = S_ISDIR(st.st_mode) ? StackKind::directory : StackKind::other;
            }
            if (!S_ISDIR(st.st_mode)) break;
            below.push_back(root);
            if (has_overlay_opaque_xattr(str_cat(root->path(), "/", prefix))) break;
        }
        if (entry.kind != StackKind::directory || entry.whole_path) return entry;
        merging = std::move(below);
    }
    return StackEntry{.kind = StackKind::directory};  // the root
}

Result<std::vector<RootFs>> open_roots(const std::vector<std::string>& directories) {
    std::vector<RootFs> roots;
    for (const std::string& directory : directories) {
        KILN_ASSIGN(RootFs root, RootFs::open(directory));
        roots.push_back(std::move(root));
    }
    return roots;
}

// Copies the regular file `from` (in `source`) to `to` in `layer`, with its owner (or its recorded owner),
// mode, extended attributes and mtime.
Status copy_lower_file(const RootFs& source, const std::string& from, const RootFs& layer, const std::string& to) {
    KILN_ASSIGN(UniqueFd in, source.open(from, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    struct stat st;
    if (::fstat(in.get(), &st) != 0) return fail_errno(str_cat("stat ", source.display(from)));
    if (!S_ISREG(st.st_mode)) return fail(str_cat("refused: hardlink to ", source.display(from), ", which is not a regular file"));
    KILN_ASSIGN(auto parent, layer.open_parent(to));
    UniqueFd out(::openat(parent.first.get(), parent.second.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return fail_errno(str_cat("create ", layer.display(to)));
    while (true) {
        ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno(str_cat("copy ", source.display(from), " to ", layer.display(to)));
        if (n == 0) break;
    }
    std::optional<OverrideStat> recorded = read_override_stat(in.get(), nullptr);
    uid_t uid = recorded ? recorded->uid : st.st_uid;
    gid_t gid = recorded ? recorded->gid : st.st_gid;
    KILN_TRY(change_owner(out.get(), nullptr, uid, gid, st.st_mode, layer.display(to)));
    if (::fchmod(out.get(), st.st_mode & 07777) != 0) return fail_errno(str_cat("chmod ", layer.display(to)));
    KILN_ASSIGN(auto xattrs, read_xattrs(in.get(), source.display(from)));
    for (const auto& [name, value] : xattrs) {
        if (is_host_private_xattr(name)) continue;
        if (::fsetxattr(out.get(), name.c_str(), value.data(), value.size(), 0) != 0)
            log_warn("cannot copy the extended attribute ", name, " to ", layer.display(to), ": ", std::strerror(errno));
    }
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(out.get(), times) != 0) return fail_errno(str_cat("set times of ", layer.display(to)));
    return {};
}

}  // namespace

Status copy_from_lower_layers(const RootFs& layer, const std::vector<LowerLayerLink>& links,
                              const std::vector<std::string>& lowers, const std::string& layer_name) {
    KILN_ASSIGN(std::vector<RootFs> roots, open_roots(lowers));
    std::map<std::string, std::string> copies;  // target → the path that holds this layer's copy of it
    for (const LowerLayerLink& link : links) {
        if (auto copy = copies.find(link.target); copy != copies.end()) {
            KILN_ASSIGN(auto from, layer.open_parent(copy->second));
            KILN_ASSIGN(auto to, layer.open_parent(link.path));
            if (::linkat(from.first.get(), from.second.c_str(), to.first.get(), to.second.c_str(), 0) != 0)
                return fail_errno(str_cat("layer ", layer_name, ": link ", layer.display(link.path), " to ", layer.display(copy->second)));
            continue;
        }
        KILN_ASSIGN(StackEntry found, find_in_stack(roots, link.target));
        const RootFs* source = found.whole_path && found.kind == StackKind::other ? found.holder : nullptr;
        if (!source)
            return fail(str_cat("layer ", layer_name, ": the hardlink \"", link.path, "\" names \"", link.target,
                                "\", which neither this layer nor an earlier one holds"));
        KILN_TRY_CONTEXT(copy_lower_file(*source, link.target, layer, link.path),
                         str_cat("layer ", layer_name, ": completing the hardlink \"", link.path, "\" to an earlier layer"));
        copies.emplace(link.target, link.path);
    }
    return {};
}

Result<bool> lower_stack_keeps(const LowerAssumptions& assumptions, const std::vector<std::string>& lowers) {
    if (assumptions.needs_stack) return false;
    if (assumptions.directory_paths.empty() && assumptions.deleting_in.empty()) return true;
    KILN_ASSIGN(std::vector<RootFs> roots, open_roots(lowers));
    for (const std::string& path : assumptions.directory_paths) {
        KILN_ASSIGN(StackEntry entry, find_in_stack(roots, path));
        if (entry.kind == StackKind::other) return false;
    }
    for (const std::string& path : assumptions.deleting_in) {
        KILN_ASSIGN(StackEntry entry, find_in_stack(roots, path));
        if (entry.kind != StackKind::directory || !entry.whole_path) return false;
    }
    return true;
}

}  // namespace kiln
