#include "builder/snapshot/overlay_snapshotter.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "layers/apply_image.hpp"
#include "layers/lower_stack.hpp"
#include "common/files.hpp"
#include "common/parallel.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

// In each step's directory, beside "upper" and "work": the work directory of the RUN sandbox's own mount.
constexpr const char* k_run_work = "run-work";

// Overlay leaves each work directory's "work" at mode 000; the removal of `step_dir` must get through.
void open_work_dirs(const std::string& step_dir) {
    for (const std::string& work : {step_dir + "/work/work", str_cat(step_dir, "/", k_run_work, "/work")})
        if (path_exists(work)) ::chmod(work.c_str(), 0700);
}

}  // namespace

bool MemoryPlace::ran_out() {
    if (m_root.empty()) return false;
    if (m_full) return true;
    struct statvfs st;
    if (::statvfs(m_root.c_str(), &st) != 0) return false;
    // A write stops short of the last page or two; a megabyte is what "full" looks like from outside.
    constexpr std::uint64_t k_slack = 1 << 20;
    if (static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize < k_slack || st.f_favail == 0) m_full = true;
    return m_full;
}

std::shared_ptr<LayerDirectories::Slot> LayerDirectories::slot_for(const std::string& hex) {
    std::lock_guard lock(m_mutex);
    std::shared_ptr<Slot>& entry = m_slots[hex];
    if (!entry) entry = std::make_shared<Slot>();
    return entry;
}

Result<std::string> LayerDirectories::stacked_on(const Layer& layer, const std::vector<std::string>& lowers,
                                                 OwnershipFailure ownership_failure) {
    std::shared_ptr<Slot> slot = slot_for(layer.diff_id().encoded());
    std::lock_guard lock(slot->mutex);
    if (!slot->done) return fail(str_cat("internal error: layer ", layer.descriptor().digest.str(), " stacked before it was extracted"));
    KILN_ASSIGN(bool keeps, lower_stack_keeps(slot->assumptions, lowers));
    if (!keeps) return apply_over(*slot, layer, lowers, ownership_failure);
    if (!slot->links.empty()) {
        KILN_ASSIGN(RootFs root, RootFs::open(slot->directory));
        KILN_TRY(copy_from_lower_layers(root, slot->links, lowers, layer.descriptor().digest.str()));
        slot->links.clear();
    }
    return slot->directory;
}

Result<std::string> LayerDirectories::apply_over(Slot& slot, const Layer& layer, const std::vector<std::string>& lowers,
                                                 OwnershipFailure ownership_failure) {
    std::string key = join(lowers, "\n");
    if (auto found = slot.applied.find(key); found != slot.applied.end()) return found->second;
    log_debug("layer ", layer.descriptor().digest.short_str(),
              " goes through a symlink of the layers below it, or deletes in a directory they lack: applying it through them");
    std::string base = str_cat(m_root, "/", layer.diff_id().encoded(), ".over-", slot.applied.size());
    if (path_exists(base)) KILN_TRY(remove_tree(base));
    OverlayMountSpec spec{.lowers = lowers, .upper = base + "/upper", .work = base + "/work"};
    if (spec.lowers.empty()) {  // overlay needs a lower
        spec.lowers.push_back(base + "/empty");
        KILN_TRY(make_directories(spec.lowers.back(), 0755));
    }
    for (const std::string& dir : {spec.upper, base + "/mnt"}) KILN_TRY(make_directories(dir, 0755));
    KILN_TRY(make_directories(spec.work, 0700));
    Status applied = [&]() -> Status {
        KILN_ASSIGN(MountGuard mount, mount_overlay(spec, base + "/mnt"));
        KILN_ASSIGN(RootFs root, RootFs::open(base + "/mnt"));
        KILN_TRY(extract_layer(layer, root, ownership_failure));
        return mount.unmount();
    }();
    // Overlay leaves its work directory's "work" at mode 000; the work dir's removal must get through.
    ::chmod((spec.work + "/work").c_str(), 0700);
    KILN_TRY_CONTEXT(applied, str_cat("applying layer ", layer.descriptor().digest.str(), " through the layers below it"));
    slot.applied.emplace(std::move(key), spec.upper);
    return spec.upper;
}

Result<ExtractStats> LayerDirectories::extract_into(const std::string& root, const Layer& layer,
                                                    OwnershipFailure ownership_failure) {
    std::string hex = layer.diff_id().encoded();
    KILN_TRY(make_directories(root, 0700));
    // A failed attempt leaves a partial directory: start again from an empty one.
    std::string partial = str_cat(root, "/", hex, ".partial");
    if (path_exists(partial)) KILN_TRY(remove_tree(partial));
    if (::mkdir(partial.c_str(), 0755) != 0) return fail_errno(str_cat("mkdir ", partial));
    ExtractStats stats;
    {
        KILN_ASSIGN(RootFs tree, RootFs::open(partial));
        KILN_ASSIGN(stats, with_context(extract_layer(layer, tree, ownership_failure, WhiteoutFormat::overlay),
                                        str_cat("extracting layer ", layer.descriptor().digest.str(),
                                                " for the overlay snapshotter")));
    }
    std::string directory = str_cat(root, "/", hex);
    if (::rename(partial.c_str(), directory.c_str()) != 0)
        return fail_errno(str_cat("rename ", partial, " to ", directory));
    return stats;
}

Status LayerDirectories::extract(const Layer& layer, OwnershipFailure ownership_failure) {
    std::string hex = layer.diff_id().encoded();
    std::shared_ptr<Slot> slot = slot_for(hex);
    // One stage extracts; another that wants the same layer waits for it here.
    std::lock_guard lock(slot->mutex);
    if (slot->done) return {};
    // A layer the store holds is stacked from there. One it does not is extracted the fastest way, for this
    // build, and kept in the store once the build is done.
    bool keep = m_store && !m_store->contains(layer);
    if (m_store && !keep) {
        auto stored = m_store->acquire(layer, ownership_failure);
        if (stored && *stored) {
            slot->directory = std::move((*stored)->tree);
            slot->assumptions = std::move((*stored)->assumptions);
            slot->done = true;
            return {};
        }
        // A store that fails (its disk full, say) costs this build the reuse, not the build; a layer that is
        // at fault fails again below.
        if (!stored) log_warn("extracted layers: ", stored.error().message(), "; extracting it for this build only");
    }
    std::optional<ExtractStats> stats;
    std::string memory_root = m_memory.root() + "/layers";
    if (m_memory.usable()) {
        auto in_memory = extract_into(memory_root, layer, ownership_failure);
        if (in_memory) {
            stats = std::move(*in_memory);
            slot->directory = str_cat(memory_root, "/", hex);
        } else {
            // Past the budget (ENOSPC), every later layer goes to the disk too; any other failure is tried
            // there again, where it fails the same way if the layer itself is at fault.
            if (in_memory.error().errno_value() == ENOSPC) {
                m_memory.mark_full();
                log_info("memory budget: full; layer ", layer.descriptor().digest.short_str(),
                         " and later ones are extracted to the disk");
            } else {
                log_debug("extracting layer ", layer.descriptor().digest.short_str(), " in memory failed (",
                          in_memory.error().message(), "); extracting it to the disk");
            }
            if (auto removed = remove_tree(str_cat(memory_root, "/", hex, ".partial")); !removed)
                log_debug(removed.error().message());
        }
    }
    if (!stats) {
        KILN_ASSIGN(stats, extract_into(m_root, layer, ownership_failure));
        slot->directory = str_cat(m_root, "/", hex);
    }
    slot->links = std::move(stats->lower_layer_links);
    slot->assumptions = std::move(stats->lower_assumptions);
    slot->done = true;
    if (keep) m_store->keep_later(layer);
    return {};
}

Result<std::unique_ptr<StageOverlay>> StageOverlay::mount(std::string stage_dir,
                                                          std::vector<std::string> lowers,
                                                          std::string rootfs_path, MemoryPlace* memory,
                                                          std::string memory_stage_dir) {
    if (lowers.empty()) return fail("an overlay needs at least one lower directory");
    std::unique_ptr<StageOverlay> overlay(new StageOverlay());
    overlay->m_stage_dir = std::move(stage_dir);
    overlay->m_memory = memory;
    overlay->m_memory_stage_dir = std::move(memory_stage_dir);
    overlay->m_rootfs_path = std::move(rootfs_path);
    overlay->m_spec.lowers = std::move(lowers);
    KILN_TRY(overlay->mount_current());
    return overlay;
}

StageOverlay::~StageOverlay() {
    if (auto done = unmount_all(); !done) log_warn("overlay snapshotter: ", done.error().message());
    for (size_t step = 1; step <= m_steps; ++step)
        for (const std::string& stage_dir : {m_stage_dir, m_memory_stage_dir})
            if (!stage_dir.empty()) open_work_dirs(str_cat(stage_dir, "/steps/", step));
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
    // A step's writes go to memory while the budget lasts: creating files there costs a fraction of the disk's.
    m_step_in_memory = m_memory && m_memory->usable() && !m_memory_stage_dir.empty();
    m_step_dir = str_cat(m_step_in_memory ? m_memory_stage_dir : m_stage_dir, "/steps/", m_steps);
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

bool StageOverlay::upper_is_empty() const {
    std::error_code error;
    return std::filesystem::is_empty(m_spec.upper, error) && !error;
}

Result<bool> StageOverlay::spill_failed_step() {
    if (!m_step_in_memory || !m_memory->ran_out()) return false;
    KILN_TRY(unmount_all());
    open_work_dirs(m_step_dir);
    KILN_TRY(remove_tree(m_step_dir));
    KILN_TRY(mount_current());
    return true;
}

Status StageOverlay::push_lower(const std::string& directory) {
    if (!upper_is_empty()) return fail("internal error: a layer was applied under a step's changes");
    KILN_TRY(unmount_all());
    m_spec.lowers.insert(m_spec.lowers.begin(), directory);
    KILN_ASSIGN(m_mount, mount_overlay(m_spec, m_rootfs_path));
    return {};
}

Status StageOverlay::remount() {
    KILN_TRY(m_mount.unmount());
    KILN_ASSIGN(m_mount, mount_overlay(m_spec, m_rootfs_path));
    return {};
}

namespace {

// Base layers extracted at once: extraction is CPU-bound (decompression) and file-creation-bound, so a few
// threads keep both busy without swamping the disk.
constexpr size_t k_concurrent_extractions = 4;

class OverlayStage final : public StageFilesystem {
public:
    OverlayStage(const SnapshotPolicy& policy, LayerSink& sink, LayerDirectories& layers,
                 std::unique_ptr<StageOverlay> overlay, std::string path, RootFs root)
        : m_policy(policy), m_sink(sink), m_layers(layers), m_overlay(std::move(overlay)), m_path(std::move(path)),
          m_root(std::move(root)) {}

    const std::string& path() const override { return m_path; }
    const RootFs& root() const override { return m_root; }

    Result<std::optional<OverlayMountSpec>> prepare_run(const std::vector<std::string>&) override {
        // The step's own mount of the upper, if the sandbox makes one, needs a work directory of its own.
        OverlayMountSpec spec = m_overlay->spec();
        spec.work = m_overlay->step_dir() + "/" + k_run_work;
        KILN_TRY(make_directories(spec.work, 0700));
        return std::optional<OverlayMountSpec>(std::move(spec));
    }

    Result<std::optional<LayerPtr>> commit(const StepWrites& writes) override {
        if (m_policy.single_snapshot) {
            // The stage's one upper collects everything; a RUN may have written through a mount of its own,
            // and kiln's must not serve stale entries.
            if (writes.anything) KILN_TRY(remount([&] { return m_overlay->remount(); }));
            return std::nullopt;
        }
        std::vector<std::string> left_out = m_policy.ignored;
        left_out.insert(left_out.end(), writes.discarded.begin(), writes.discarded.end());
        KILN_ASSIGN(UpperChanges changes, m_overlay->changes(left_out));
        log_debug("overlay upper: ", changes.stats.entries, " entries, ", changes.stats.whiteouts, " whiteout(s), ",
                  changes.stats.opaque_directories, " opaque, ", changes.stats.unchanged_copy_ups,
                  " unchanged copy-up(s) left out");
        StepWrites kept = writes;
        if (!writes.anything) kept.paths.clear();  // the upper holds what a COPY wrote
        KILN_ASSIGN(RootFs upper, m_overlay->upper());
        Result<std::optional<LayerPtr>> layer =
            write_step_layer(m_sink, upper, layer_entries(std::move(changes.entries), m_policy.ignored, kept));
        if (!layer) return layer;
        // The upper joins the lowers and the rootfs is mounted again: every RootFs of the old mount is stale.
        KILN_TRY(remount([&] { return m_overlay->next_step(); }));
        return layer;
    }

    Status apply_layer(const Layer& layer) override {
        if (m_policy.single_snapshot)
            return fail("applying an existing layer is not supported with --single-snapshot and the overlay snapshotter");
        KILN_TRY(m_layers.extract(layer, m_policy.ownership));
        KILN_ASSIGN(std::string directory, m_layers.stacked_on(layer, m_overlay->spec().lowers, m_policy.ownership));
        return remount([&] { return m_overlay->push_lower(directory); });
    }

    Result<std::optional<LayerPtr>> finish() override {
        if (!m_policy.single_snapshot) return std::nullopt;
        KILN_ASSIGN(UpperChanges changes, m_overlay->changes(m_policy.ignored));
        if (changes.entries.empty()) return std::nullopt;
        KILN_ASSIGN(RootFs upper, m_overlay->upper());
        KILN_ASSIGN(LayerPtr layer, m_sink.write(upper, changes.entries));
        return layer;
    }

    std::vector<std::string> layer_directories() const override { return m_overlay->layer_directories(); }
    Result<bool> hand_over(const std::string&) override { return false; }
    Result<bool> spill_failed_step() override {
        KILN_ASSIGN(bool spilled, m_overlay->spill_failed_step());
        if (spilled) {
            KILN_ASSIGN(m_root, RootFs::open(m_path));
        }
        return spilled;
    }

private:
    // Runs `change` (which mounts the rootfs anew) and opens the new mount.
    template <class Change>
    Status remount(Change change) {
        KILN_TRY(change());
        KILN_ASSIGN(m_root, RootFs::open(m_path));
        return {};
    }

    const SnapshotPolicy& m_policy;
    LayerSink& m_sink;
    LayerDirectories& m_layers;
    std::unique_ptr<StageOverlay> m_overlay;
    std::string m_path;
    RootFs m_root;
};

}  // namespace

Result<std::vector<std::string>> OverlaySnapshotter::layer_directories_of(const std::vector<LayerPtr>& layers,
                                                                          const std::vector<std::string>& below) {
    // Each layer has a directory of its own, so they are fetched and extracted side by side; the stack is
    // topmost first.
    KILN_TRY(run_bounded(layers.size(), k_concurrent_extractions,
                         [&](size_t i) { return m_layers.extract(*layers[i], m_policy.ownership); }));
    // What a layer means depends on the layers below it (hardlinks into them, symlinks it goes through):
    // placed bottom to top.
    std::vector<std::string> stack = below;
    for (const LayerPtr& layer : layers) {
        KILN_ASSIGN(std::string directory, m_layers.stacked_on(*layer, stack, m_policy.ownership));
        // An opaque marker at a layer's root hides everything below it, as the walk's extraction applies it;
        // overlayfs ignores the opaque attribute on a layer's root, so the layers below leave the stack.
        if (has_overlay_opaque_xattr(directory)) stack.clear();
        // A layer the image lists again (the empty layer, often) is one directory, which overlayfs refuses to
        // take twice; its upper place says all that its lower one did.
        std::erase(stack, directory);
        stack.insert(stack.begin(), directory);
    }
    return stack;
}

Result<std::unique_ptr<StageFilesystem>> OverlaySnapshotter::prepare_stage(const StageStart& start) {
    std::string rootfs_path = start.directory + "/rootfs";
    // The parent's layer directories are stacked again, read-only; its mount stays for COPY --from.
    std::vector<std::string> lowers;
    if (start.parent) lowers = start.parent->layer_directories();
    std::vector<LayerPtr> layers;
    if (lowers.empty()) layers = start.base.layers();
    layers.insert(layers.end(), start.cached.begin(), start.cached.end());
    KILN_ASSIGN(lowers, layer_directories_of(layers, lowers));
    if (lowers.empty()) {
        // FROM scratch: overlay needs a lower, so an empty one.
        std::string empty = start.directory + "/empty-lower";
        KILN_TRY(make_directories(empty, 0755));
        lowers.push_back(empty);
    }
    std::string memory_stage_dir =
        m_memory_uppers && !m_memory.root().empty() ? str_cat(m_memory.root(), "/stages/", file_name(start.directory)) : "";
    KILN_ASSIGN(std::unique_ptr<StageOverlay> overlay,
                StageOverlay::mount(start.directory, std::move(lowers), rootfs_path, &m_memory, memory_stage_dir));
    KILN_ASSIGN(RootFs root, RootFs::open(rootfs_path));
    return std::unique_ptr<StageFilesystem>(
        std::make_unique<OverlayStage>(m_policy, m_sink, m_layers, std::move(overlay), rootfs_path, std::move(root)));
}

}  // namespace kiln
