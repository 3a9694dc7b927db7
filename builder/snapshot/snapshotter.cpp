#include "builder/snapshot/snapshotter.hpp"

#include "builder/snapshot/overlay_snapshotter.hpp"
#include "builder/snapshot/walk_snapshotter.hpp"
#include "common/strings.hpp"
#include "layers/snapshot_overlay.hpp"

namespace kiln {
namespace {

bool at_or_under(std::string_view path, const std::string& directory) {
    std::string cleaned = clean_path(directory);
    return clean_path(path) == cleaned || path_is_under(clean_path(path), cleaned);
}

}  // namespace

Result<std::optional<LayerPtr>> write_step_layer(LayerSink& sink, const RootFs& source,
                                                 const std::vector<LayerEntry>& entries) {
    if (entries.empty()) return std::nullopt;
    KILN_ASSIGN(LayerPtr layer, sink.write(source, entries));
    return layer;
}

std::vector<LayerEntry> layer_entries(std::vector<LayerEntry> entries, const std::vector<std::string>& ignored,
                                      const StepWrites& writes) {
    std::vector<std::string> left_out = ignored;
    left_out.insert(left_out.end(), writes.discarded.begin(), writes.discarded.end());
    entries = without_excluded(std::move(entries), left_out);
    for (const std::string& path : writes.paths) {
        bool discarded = false;
        for (const std::string& area : writes.discarded) discarded = discarded || at_or_under(path, area);
        bool ignored_path = false;
        for (const std::string& area : ignored) ignored_path = ignored_path || at_or_under(path, area);
        if (discarded && !ignored_path) entries.push_back(LayerEntry{.path = path});
    }
    return entries;
}

Result<SnapshotterChoice> choose_snapshotter(SnapshotterKind requested, const SnapshotterEnvironment& environment) {
    if (requested == SnapshotterKind::walk) return SnapshotterChoice{false, "--snapshotter=walk"};
    std::optional<std::string> unavailable;
    if (!environment.mount_namespace_error.empty()) {
        unavailable = str_cat("kiln has no mount namespace of its own: ", environment.mount_namespace_error);
    } else if (auto probed = probe_overlay(environment.work_dir); !probed) {
        unavailable = probed.error().message();
    } else if (std::string error = environment.overlay_run_error ? environment.overlay_run_error() : ""; !error.empty()) {
        unavailable = error;
    }
    if (!unavailable) {
        return SnapshotterChoice{true, requested == SnapshotterKind::overlay
                                           ? "--snapshotter=overlay"
                                           : str_cat("overlay mounts work under ", environment.work_dir)};
    }
    if (requested == SnapshotterKind::overlay)
        return fail(str_cat("--snapshotter=overlay: overlay is unavailable: ", *unavailable));
    return SnapshotterChoice{false, str_cat("overlay unavailable: ", *unavailable)};
}

std::unique_ptr<Snapshotter> make_snapshotter(const SnapshotterChoice& choice, const SnapshotPolicy& policy,
                                              LayerSink& sink, const std::string& work_dir,
                                              const ExtractionPlaces& places) {
    if (choice.overlay) return std::make_unique<OverlaySnapshotter>(policy, sink, work_dir, places);
    return std::make_unique<WalkSnapshotter>(policy, sink);
}

}  // namespace kiln
