#include "builder/snapshot/walk_snapshotter.hpp"

#include <sys/stat.h>

#include <cstdio>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/apply_image.hpp"
#include "layers/snapshot_overlay.hpp"

namespace kiln {
namespace {

class WalkStage final : public StageFilesystem {
public:
    WalkStage(const SnapshotPolicy& policy, LayerSink& sink, std::string path, RootFs root)
        : m_policy(policy), m_sink(sink), m_path(std::move(path)), m_root(std::move(root)) {}

    const std::string& path() const override { return m_path; }
    const RootFs& root() const override { return m_root; }

    Status start() {
        if (!m_policy.single_snapshot) return {};
        KILN_ASSIGN(m_stage_start, with_context(scan_snapshot(m_root, scan_options({})), "snapshot of the stage's base"));
        return {};
    }

    Result<std::optional<OverlayMountSpec>> prepare_run(const std::vector<std::string>& discarded) override {
        // With --single-snapshot the stage's one layer comes from its end: a step needs no walk of its own.
        if (m_policy.single_snapshot) return std::nullopt;
        ScanOptions options = scan_options(discarded);
        std::optional<Snapshot> kept = std::move(m_kept);
        m_kept.reset();
        // A VOLUME since then changes what is left out, without touching the rootfs.
        if (kept && kept->mode() == options.mode && m_kept_excluded == options.excluded) {
            m_before = std::move(*kept);
        } else {
            KILN_ASSIGN(m_before, with_context(scan_snapshot(m_root, options), "snapshot before the RUN"));
        }
        return std::nullopt;
    }

    Result<std::optional<LayerPtr>> commit(const StepWrites& writes) override {
        if (m_policy.single_snapshot) return std::nullopt;
        if (!writes.anything) {
            m_kept.reset();  // whoever wrote has changed the rootfs
            std::vector<LayerEntry> entries;
            for (const std::string& path : writes.paths) entries.push_back(LayerEntry{.path = path});
            return write_step_layer(m_sink, m_root, layer_entries(std::move(entries), m_policy.ignored, writes));
        }
        if (!m_before) return fail("internal error: a RUN was committed without a snapshot before it");
        ScanOptions options = scan_options(writes.discarded);
        options.previous = &*m_before;  // --snapshot-mode=full: hash only what changed
        KILN_ASSIGN(Snapshot after, with_context(scan_snapshot(m_root, options), "snapshot after the RUN"));
        std::vector<Change> changes = diff_snapshots(*m_before, after);
        log_debug("the RUN changed ", changes.size(), " path(s)");
        m_before.reset();
        Result<std::optional<LayerPtr>> layer = write_step_layer(
            m_sink, m_root, layer_entries(layer_entries_from_changes(changes), m_policy.ignored, writes));
        if (!layer) return layer;
        m_kept = std::move(after);
        m_kept_excluded = options.excluded;
        return layer;
    }


    Status apply_layer(const Layer& layer) override {
        m_kept.reset();
        KILN_TRY(extract_layer(layer, m_root, m_policy.ownership));
        return {};
    }

    Result<std::optional<LayerPtr>> finish() override {
        if (!m_stage_start) return std::nullopt;
        ScanOptions options = scan_options({});
        options.previous = &*m_stage_start;
        KILN_ASSIGN(Snapshot end, with_context(scan_snapshot(m_root, options), "snapshot of the stage"));
        std::vector<Change> changes = diff_snapshots(*m_stage_start, end);
        m_stage_start.reset();
        if (changes.empty()) return std::nullopt;
        KILN_ASSIGN(LayerPtr layer, m_sink.write(m_root, without_excluded(layer_entries_from_changes(changes),
                                                                           m_policy.ignored)));
        return layer;
    }

    std::vector<std::string> layer_directories() const override { return {}; }

    Result<bool> hand_over(const std::string& rootfs_path) override {
        if (::rename(m_path.c_str(), rootfs_path.c_str()) != 0)
            return fail_errno(str_cat("rename ", m_path, " to ", rootfs_path));
        m_path.clear();
        return true;
    }

private:
    ScanOptions scan_options(const std::vector<std::string>& discarded) const {
        ScanOptions options;
        options.mode = m_policy.mode;
        options.excluded = m_policy.ignored;
        for (const std::string& path : discarded)
            if (!clean_path(path).empty()) options.excluded.push_back(path);
        return options;
    }

    const SnapshotPolicy& m_policy;
    LayerSink& m_sink;
    std::string m_path;
    RootFs m_root;
    std::optional<Snapshot> m_stage_start;  // --single-snapshot: the rootfs as the stage began
    std::optional<Snapshot> m_before;       // the rootfs before the RUN being run
    // The after-state of the last RUN while it is still the rootfs's state, and what it left out.
    std::optional<Snapshot> m_kept;
    std::vector<std::string> m_kept_excluded;
};

}  // namespace

Result<std::unique_ptr<StageFilesystem>> WalkSnapshotter::prepare_stage(const StageStart& start) {
    std::string rootfs_path = start.directory + "/rootfs";
    bool handed_over = false;
    if (start.parent && !start.parent_has_other_readers) {
        // A stage read by nobody else hands its filesystem over instead of having it extracted again.
        KILN_ASSIGN(handed_over, start.parent->hand_over(rootfs_path));
    }
    if (!handed_over) {
        if (::mkdir(rootfs_path.c_str(), 0755) != 0) return fail_errno(str_cat("mkdir ", rootfs_path));
        KILN_ASSIGN(RootFs fresh, RootFs::open(rootfs_path));
        KILN_TRY(extract_image(start.base, fresh, m_policy.ownership));
    }
    KILN_ASSIGN(RootFs root, RootFs::open(rootfs_path));
    auto stage = std::make_unique<WalkStage>(m_policy, m_sink, rootfs_path, std::move(root));
    KILN_TRY(stage->start());
    for (const LayerPtr& layer : start.cached)
        KILN_TRY_CONTEXT(stage->apply_layer(*layer), str_cat("applying the cached layer ", layer->descriptor().digest.str()));
    return std::unique_ptr<StageFilesystem>(std::move(stage));
}

}  // namespace kiln
