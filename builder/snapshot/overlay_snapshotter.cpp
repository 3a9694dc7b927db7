#include "builder/snapshot/overlay_snapshotter.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "builder/sources/image_source.hpp"
#include "builder/options.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {

Result<SnapshotterChoice> choose_snapshotter(const BuildOptions& options, const std::string& work_dir,
                                             const Result<const Sandbox*>& sandbox) {
    if (options.snapshotter == Snapshotter::walk) return SnapshotterChoice{false, "--snapshotter=walk"};
    std::optional<std::string> unavailable;
    if (!options.private_mount_namespace) {
        unavailable =
            str_cat("kiln has no mount namespace of its own: ", options.private_mount_namespace_error);
    } else if (auto probed = probe_overlay(work_dir); !probed) {
        unavailable = probed.error().message();
    } else if (!sandbox) {
        unavailable = str_cat("no RUN sandbox: ", sandbox.error().message());
    } else if (auto runs = (*sandbox)->probe_overlay_rootfs(work_dir); !runs) {
        unavailable = str_cat("RUN steps cannot run on an overlay: ", runs.error().message());
    }
    if (!unavailable) {
        return SnapshotterChoice{true, options.snapshotter == Snapshotter::overlay
                                           ? "--snapshotter=overlay"
                                           : str_cat("overlay mounts work under ", work_dir)};
    }
    if (options.snapshotter == Snapshotter::overlay)
        return fail(str_cat("--snapshotter=overlay: overlay is unavailable: ", *unavailable));
    return SnapshotterChoice{false, str_cat("overlay unavailable: ", *unavailable)};
}

std::shared_ptr<LayerDirectories::Slot> LayerDirectories::slot_for(const std::string& hex) {
    std::lock_guard lock(m_mutex);
    std::shared_ptr<Slot>& entry = m_slots[hex];
    if (!entry) entry = std::make_shared<Slot>();
    return entry;
}

Status LayerDirectories::link_lower_layers(const Layer& layer, const std::vector<std::string>& lowers) {
    std::string hex = layer.diff_id().encoded();
    std::shared_ptr<Slot> slot = slot_for(hex);
    std::lock_guard lock(slot->mutex);
    if (slot->links.empty()) return {};
    KILN_ASSIGN(RootFs root, RootFs::open(str_cat(m_root, "/", hex)));
    KILN_TRY(copy_from_lower_layers(root, slot->links, lowers, layer.descriptor().digest.str()));
    slot->links.clear();
    return {};
}

Result<std::string> LayerDirectories::directory_for(const Layer& layer, OwnershipFailure ownership_failure) {
    std::string hex = layer.diff_id().encoded();
    std::shared_ptr<Slot> slot = slot_for(hex);
    // One stage extracts; another that wants the same layer waits for it here.
    std::lock_guard lock(slot->mutex);
    std::string directory = str_cat(m_root, "/", hex);
    if (slot->done) return directory;
    KILN_TRY(make_directories(m_root, 0700));
    // A failed attempt leaves a partial directory: start again from an empty one.
    std::string partial = str_cat(m_root, "/", hex, ".partial");
    if (path_exists(partial)) KILN_TRY(remove_tree(partial));
    if (::mkdir(partial.c_str(), 0755) != 0) return fail_errno(str_cat("mkdir ", partial));
    {
        KILN_ASSIGN(RootFs root, RootFs::open(partial));
        KILN_ASSIGN(ExtractStats stats,
                    with_context(extract_layer(layer, root, ownership_failure, WhiteoutFormat::overlay),
                                 str_cat("extracting layer ", layer.descriptor().digest.str(),
                                         " for the overlay snapshotter")));
        slot->links = std::move(stats.lower_layer_links);
    }
    if (::rename(partial.c_str(), directory.c_str()) != 0)
        return fail_errno(str_cat("rename ", partial, " to ", directory));
    slot->done = true;
    return directory;
}

Result<std::unique_ptr<StageOverlay>> StageOverlay::mount(std::string stage_dir,
                                                          std::vector<std::string> lowers,
                                                          std::string rootfs_path) {
    if (lowers.empty()) return fail("an overlay needs at least one lower directory");
    std::unique_ptr<StageOverlay> overlay(new StageOverlay());
    overlay->m_stage_dir = std::move(stage_dir);
    overlay->m_rootfs_path = std::move(rootfs_path);
    overlay->m_spec.lowers = std::move(lowers);
    KILN_TRY(overlay->mount_current());
    return overlay;
}

StageOverlay::~StageOverlay() {
    if (auto done = unmount_all(); !done) log_warn("overlay snapshotter: ", done.error().message());
    // Overlay leaves each work directory's "work" at mode 000; the work dir's removal must get through.
    for (size_t step = 1; step <= m_steps; ++step) {
        for (const char* dir : {"/work/work", "/run-work/work"}) {
            std::string work = str_cat(m_stage_dir, "/steps/", step, dir);
            if (path_exists(work)) ::chmod(work.c_str(), 0700);
        }
    }
}

std::vector<std::string> StageOverlay::layer_directories() const {
    std::vector<std::string> directories;
    // An empty upper adds nothing to a stack, and a directory still in use as an upper is best left out.
    std::error_code error;
    if (!std::filesystem::is_empty(m_spec.upper, error) || error) directories.push_back(m_spec.upper);
    directories.insert(directories.end(), m_spec.lowers.begin(), m_spec.lowers.end());
    return directories;
}

Status StageOverlay::mount_current() {
    ++m_steps;
    m_step_dir = str_cat(m_stage_dir, "/steps/", m_steps);
    m_spec.upper = m_step_dir + "/upper";
    m_spec.work = m_step_dir + "/work";
    KILN_TRY(make_directories(m_spec.upper, 0755));
    KILN_TRY(make_directories(m_spec.work, 0700));
    KILN_TRY(make_directories(m_rootfs_path, 0755));
    KILN_ASSIGN(m_mount, mount_overlay(m_spec, m_rootfs_path));
    return {};
}

Status StageOverlay::unmount_all() {
    Status result = m_mount.unmount();
    if (auto done = m_lower_view.unmount(); !done && result) result = done;
    return result;
}

Result<RootFs> StageOverlay::lower_view() {
    if (m_spec.lowers.size() == 1) return RootFs::open(m_spec.lowers[0]);
    std::string view = m_stage_dir + "/lower-view";
    if (!m_lower_view.active()) {
        KILN_TRY(make_directories(view, 0755));
        KILN_ASSIGN(m_lower_view,
                    with_context(mount_overlay(OverlayMountSpec{.lowers = m_spec.lowers, .upper = {}, .work = {}}, view),
                                 "mounting the lower layers read-only"));
    }
    return RootFs::open(view);
}

Result<UpperChanges> StageOverlay::changes(const std::vector<std::string>& excluded) {
    KILN_ASSIGN(RootFs upper_root, upper());
    KILN_ASSIGN(RootFs lower_root, lower_view());
    return scan_overlay_upper(upper_root, lower_root, UpperScanOptions{.excluded = excluded});
}

Status StageOverlay::next_step() {
    KILN_TRY(unmount_all());
    m_spec.lowers.insert(m_spec.lowers.begin(), m_spec.upper);
    return mount_current();
}

Status StageOverlay::remount() {
    KILN_TRY(m_mount.unmount());
    KILN_ASSIGN(m_mount, mount_overlay(m_spec, m_rootfs_path));
    return {};
}

}  // namespace kiln
