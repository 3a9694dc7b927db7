#pragma once
// How a stage's filesystem is kept and how what a step wrote becomes a layer. One Snapshotter is chosen per
// build (choose_snapshotter) and prepares each stage's StageFilesystem; commands only report what they wrote
// (StepWrites) and never decide how it is snapshotted.
//  - walk: the rootfs is a plain directory; a RUN's change is found by comparing lstat walks before and after.
//  - overlay: the rootfs is an overlay of extracted layer directories with a fresh upper directory per step;
//    the upper is the step's change.
// --single-snapshot is a mode of each: steps add no layer, and finish() returns the stage's one layer.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "builder/options.hpp"
#include "common/error.hpp"
#include "images/image.hpp"
#include "images/layer.hpp"
#include "layers/extract.hpp"
#include "layers/layer_writer.hpp"
#include "layers/overlay_mount.hpp"
#include "layers/rootfs.hpp"
#include "layers/snapshot_walk.hpp"

namespace kiln {

// What a step reports having written.
struct StepWrites {
    // Paths in the rootfs the step wrote (relative, symlinks resolved), each with everything below it.
    std::vector<std::string> paths;
    // A RUN: it may have changed anything, and the snapshotter finds out what.
    bool anything = false;
    // Paths (absolute, in the image) whose contents the step's layer leaves out, though it may keep the path
    // itself when listed in `paths`: a RUN's declared volumes.
    std::vector<std::string> discarded;
    // False for a step that changed nothing and has no layer to take (WORKDIR of an existing directory). One
    // whose layer turns out empty (a RUN that changed no file) adds none to the image either (stage_builder).
    bool makes_layer = true;

    static StepWrites nothing() {
        StepWrites writes;
        writes.makes_layer = false;
        return writes;
    }
};

// Where new layers go: written, compressed and stored, each logged with its size.
class LayerSink {
public:
    virtual ~LayerSink() = default;
    // Writes `entries` of `source` (a rootfs or an overlay upper directory) as a layer.
    virtual Result<LayerPtr> write(const RootFs& source, const std::vector<LayerEntry>& entries) = 0;
    // A layer that holds nothing, for a step that must have one (--force-build-metadata).
    virtual Result<LayerPtr> write_empty() = 0;
};

// What every layer of a build leaves out and how changes are found.
struct SnapshotPolicy {
    // Paths no layer holds, with everything below them: --ignore-path and /var/run (--ignore-var-run),
    // absolute, in the image.
    std::vector<std::string> ignored;
    SnapshotMode mode = SnapshotMode::metadata;  // --snapshot-mode, for the walk
    bool single_snapshot = false;                // --single-snapshot
    OwnershipFailure ownership = OwnershipFailure::error;  // for extracting layers
};

// One stage's filesystem under a snapshotter.
class StageFilesystem {
public:
    virtual ~StageFilesystem() = default;
    // The rootfs directory, and the same opened.
    virtual const std::string& path() const = 0;
    virtual const RootFs& root() const = 0;

    // Before a RUN: the overlay the sandbox must mount as the step's rootfs, when the rootfs is one.
    virtual Result<std::optional<OverlayMountSpec>> prepare_run(const std::vector<std::string>& discarded) = 0;
    // After a step: what it wrote, as a layer written to the sink, or nothing when it changed nothing (no entry
    // to write) and with --single-snapshot, where finish() takes the stage's one layer.
    virtual Result<std::optional<LayerPtr>> commit(const StepWrites& writes) = 0;
    // Applies an existing layer (a cached one) as if a step had written it.
    virtual Status apply_layer(const Layer& layer) = 0;
    // Ends the stage: its one layer with --single-snapshot, else nothing. The filesystem stays readable for
    // later stages (COPY --from, RUN --mount from=, FROM).
    virtual Result<std::optional<LayerPtr>> finish() = 0;

    // What a stage built FROM this one starts from, when it can share this one's layers read-only (overlay):
    // the directories, topmost first. Empty when it cannot.
    virtual std::vector<std::string> layer_directories() const = 0;
    // Hands the rootfs directory over to the one stage built FROM this one, which nobody else reads: it moves
    // to `rootfs_path`, and this filesystem is no longer readable. False when it cannot be handed over.
    virtual Result<bool> hand_over(const std::string& rootfs_path) = 0;
    // After a step failed: true when it may have failed for want of room in the memory budget's tmpfs, its
    // writes are discarded and its next attempt writes to the disk.
    virtual Result<bool> spill_failed_step() { return false; }
};

// `entries` (a step's changes) less those at or below an ignored or a discarded path, plus each path the step
// reported at or below a discarded one: a RUN keeps the volume mount points it made, not what it wrote below
// them.
std::vector<LayerEntry> layer_entries(std::vector<LayerEntry> entries, const std::vector<std::string>& ignored,
                                      const StepWrites& writes);

// A step's layer: `entries` of `source` written to `sink`, or none when there is no entry (the step changed
// nothing).
Result<std::optional<LayerPtr>> write_step_layer(LayerSink& sink, const RootFs& source,
                                                 const std::vector<LayerEntry>& entries);

// Where a stage starts.
struct StageStart {
    std::string directory;  // the stage's own directory, empty; its rootfs goes in it
    const Image& base;      // the base image, whose layers' blobs are readable
    // The stage it is built FROM, when it is: its filesystem, to share or take over.
    StageFilesystem* parent = nullptr;
    bool parent_has_other_readers = true;
    // Layers of the stage's first steps, from the layer cache, that go on top of the base (bottom first): with
    // the base's, they are fetched and extracted side by side where the snapshotter can.
    std::vector<LayerPtr> cached;
};

class Snapshotter {
public:
    virtual ~Snapshotter() = default;
    virtual const char* name() const = 0;
    // The stage's filesystem at `start.directory` + "/rootfs", holding its base.
    virtual Result<std::unique_ptr<StageFilesystem>> prepare_stage(const StageStart& start) = 0;
    // Whether prepare_stage() reads each base layer as it extracts it, so that the layers are better fetched
    // then, one by one, than all before it starts.
    virtual bool fetches_layers_as_it_extracts() const { return false; }
};

// What decides between the snapshotters.
struct SnapshotterEnvironment {
    std::string work_dir;               // where stages' files go
    std::string mount_namespace_error;  // empty when kiln has a mount namespace of its own
    // Why RUN steps cannot run on an overlay rootfs, empty when they can; asked only when everything else
    // allows the overlay snapshotter, since the sandbox mounts overlays to find out.
    std::function<std::string()> overlay_run_error;
};

// The snapshotter --snapshotter asks for, and why: "auto" takes overlay when kiln has a private mount
// namespace, overlay mounts work under the work directory and RUN steps can run on one; "overlay" fails naming
// what is missing; "walk" always walks.
struct SnapshotterChoice {
    bool overlay = false;
    std::string reason;
};
Result<SnapshotterChoice> choose_snapshotter(SnapshotterKind requested, const SnapshotterEnvironment& environment);

class ExtractedLayerStore;

// Where the overlay snapshotter puts base layers besides the work directory.
struct ExtractionPlaces {
    // A tmpfs within --memory-budget (empty for none): layers go there while they fit, to the work directory
    // past that.
    std::string memory_dir;
    // Steps' upper directories go to the tmpfs too, while it has room; a step that fills it runs again with its
    // upper on the disk.
    bool memory_takes_uppers = false;
    // Layers kept across builds (--cache-dir): taken first, and what it cannot keep goes to the places above.
    ExtractedLayerStore* store = nullptr;
};

// The chosen snapshotter, writing layers to `sink`.
std::unique_ptr<Snapshotter> make_snapshotter(const SnapshotterChoice& choice, const SnapshotPolicy& policy,
                                              LayerSink& sink, const std::string& work_dir,
                                              const ExtractionPlaces& places = {});

}  // namespace kiln
