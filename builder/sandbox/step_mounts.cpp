#include "builder/sandbox/step_mounts.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr unsigned k_bind_attributes = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

bool under_dev(const std::string& relative) {
    return relative == "dev" || path_is_under(relative, "dev");
}

unsigned bind_attributes(const RunMount& mount) {
    return k_bind_attributes | (mount.access == MountAccess::read_only ? MOUNT_ATTR_RDONLY : 0);
}

unsigned file_attributes(const RunMount& mount) {
    return MOUNT_ATTR_RDONLY | k_bind_attributes | ((mount.mode & 0111) ? 0 : MOUNT_ATTR_NOEXEC);
}

}  // namespace

Result<StepMounts::Entry> StepMounts::make_entry(const RunMount& mount, size_t index) {
    Entry entry;
    entry.mount = mount;
    if (mount.target.empty() || mount.target[0] != '/')
        return fail(str_cat("RUN mount target \"", mount.target, "\" is not absolute"));
    entry.relative_target = clean_path(mount.target);
    if (entry.relative_target.empty()) return fail("a RUN mount cannot be mounted on \"/\"");
    entry.display = "/" + entry.relative_target;
    std::string prefix;
    for (const std::string& name : split(entry.relative_target, '/')) {
        prefix = prefix.empty() ? name : prefix + "/" + name;
        entry.prefixes.push_back(prefix);
        entry.names.push_back(name);
    }
    entry.source = clean_path(mount.source);
    if (entry.source.empty()) entry.source = ".";
    entry.scratch_name = str_cat(".kiln-run-mount-", index);
    if (mount.kind == RunMountKind::file) entry.target_is_directory = false;
    if (mount.kind == RunMountKind::tmpfs && mount.tmpfs_size > 0)
        entry.size_text = str_cat(mount.tmpfs_size);
    if (mount.kind == RunMountKind::bind) {
        if (mount.source_root.empty() || mount.source_root[0] != '/')
            return fail(str_cat("RUN mount source directory \"", mount.source_root, "\" is not absolute"));
        // The source's type decides the stub's, as with `docker run -v`; a missing source is the caller's
        // error.
        KILN_ASSIGN(RootFs source_root, RootFs::open(mount.source_root));
        KILN_ASSIGN(UniqueFd source, source_root.open(entry.source, O_PATH));
        struct stat st;
        if (::fstat(source.get(), &st) != 0)
            return fail_errno(str_cat("stat ", source_root.display(entry.source)));
        entry.target_is_directory = S_ISDIR(st.st_mode);
    }
    return entry;
}

Result<StepMounts> StepMounts::prepare(const std::vector<RunMount>& mounts, const RootFs& rootfs,
                                       MountStubs& stubs) {
    if (mounts.size() > k_max_run_mounts)
        return fail(
            str_cat("a RUN step may have at most ", k_max_run_mounts, " mounts, not ", mounts.size()));
    StepMounts result;
    for (size_t i = 0; i < mounts.size(); ++i) {
        KILN_ASSIGN(Entry entry,
                    with_context(make_entry(mounts[i], i), str_cat("RUN mount at ", mounts[i].target)));
        result.m_entries.push_back(std::move(entry));
    }
    std::stable_sort(result.m_entries.begin(), result.m_entries.end(), [](const Entry& a, const Entry& b) {
        return path_less(a.relative_target, b.relative_target);
    });
    for (size_t i = 1; i < result.m_entries.size(); ++i)
        if (result.m_entries[i].relative_target == result.m_entries[i - 1].relative_target)
            return fail(str_cat("two RUN mounts share the target ", result.m_entries[i].display));
    for (const Entry& entry : result.m_entries) {
        if (under_dev(entry.relative_target)) continue;
        KILN_TRY_CONTEXT(stubs.ensure(rootfs, entry.relative_target,
                                      entry.target_is_directory ? StubKind::directory : StubKind::file),
                         str_cat("creating the RUN mount point ", entry.display));
    }
    return result;
}

Status StepMounts::clone_sources(int userns_fd, const LayeredSource& layered) {
    for (Entry& entry : m_entries) {
        if (entry.mount.kind != RunMountKind::bind) continue;
        // An overlay cannot be idmapped: a layered source is mounted again from its layers, already mapped.
        bool from_layers = userns_fd >= 0 && !entry.mount.source_layers.empty();
        bool premapped = from_layers && entry.mount.source_layers.size() > 1;
        if (premapped && !layered) return fail("a bind source made of layers needs an overlay");
        UniqueFd tree;
        std::string display;
        if (premapped) {
            display = str_cat(entry.mount.source_root, "/", entry.source);
            KILN_ASSIGN(tree, with_context(layered(entry.mount.source_layers, entry.source), display));
        } else {
            KILN_ASSIGN(RootFs source_root,
                        RootFs::open(from_layers ? entry.mount.source_layers[0] : entry.mount.source_root));
            KILN_ASSIGN(UniqueFd source, source_root.open(entry.source, O_PATH));
            display = source_root.display(entry.source);
            tree = UniqueFd(::open_tree(source.get(), "",
                                        AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
            if (!tree) return fail_errno(str_cat("open_tree(OPEN_TREE_CLONE) ", display));
        }
        mount_attr attr{};
        attr.attr_set = bind_attributes(entry.mount);
        if (userns_fd >= 0 && !premapped) {
            attr.attr_set |= MOUNT_ATTR_IDMAP;
            attr.userns_fd = static_cast<std::uint64_t>(userns_fd);
        }
        if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
            return fail_errno(
                str_cat("mount_setattr(", userns_fd >= 0 ? "MOUNT_ATTR_IDMAP" : "read-only", ") ", display));
        entry.tree = std::move(tree);
    }
    return {};
}

void StepMounts::release_clones() {
    for (Entry& entry : m_entries) entry.tree.reset();
}

const StepMountPlan* StepMounts::plan() {
    m_plan.clear();
    for (Entry& entry : m_entries) {
        entry.prefix_pointers.clear();
        entry.name_pointers.clear();
        for (const std::string& prefix : entry.prefixes) entry.prefix_pointers.push_back(prefix.c_str());
        for (const std::string& name : entry.names) entry.name_pointers.push_back(name.c_str());
        entry.prefix_pointers.push_back(nullptr);
        entry.name_pointers.push_back(nullptr);

        StepMountPlan step;
        step.display = entry.display.c_str();
        step.target_prefixes = entry.prefix_pointers.data();
        step.target_names = entry.name_pointers.data();
        step.target_is_directory = entry.target_is_directory;
        switch (entry.mount.kind) {
            case RunMountKind::bind:
                step.kind = StepMountKind::tree;
                step.tree_fd = entry.tree ? entry.tree.get() : -1;
                step.source_root = entry.mount.source_root.c_str();
                step.source = entry.source.c_str();
                step.attributes = entry.tree ? 0 : bind_attributes(entry.mount);
                break;
            case RunMountKind::tmpfs:
                step.kind = StepMountKind::tmpfs;
                step.tmpfs_size = entry.size_text.empty() ? nullptr : entry.size_text.c_str();
                break;
            case RunMountKind::file:
                step.kind = StepMountKind::file;
                step.content = entry.mount.content.data();
                step.content_size = entry.mount.content.size();
                step.mode = entry.mount.mode;
                step.uid = entry.mount.uid;
                step.gid = entry.mount.gid;
                step.scratch_name = entry.scratch_name.c_str();
                step.attributes = file_attributes(entry.mount);
                break;
        }
        m_plan.push_back(step);
    }
    return m_plan.data();
}

}  // namespace kiln
