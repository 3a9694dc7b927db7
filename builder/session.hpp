#pragma once
// The state a build shares across its stages, and the state of the stage being built.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "builder/sources/context.hpp"
#include "builder/options.hpp"
#include "builder/snapshot/overlay_snapshotter.hpp"
#include "builder/plan/plan.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "builder/plan/variables.hpp"
#include "dockerfile-parser/stages.hpp"
#include "images/blob_store.hpp"
#include "images/image.hpp"
#include "layers/layer_writer.hpp"
#include "layers/rootfs.hpp"
#include "layers/snapshot_walk.hpp"
#include "registry/client.hpp"
#include "registry/mirrors.hpp"

namespace kiln {

// A finished stage: its image, and its filesystem for later FROM and COPY --from.
struct StageResult {
    size_t index = 0;
    std::string name;
    Image image = Image::empty(Platform{});
    std::string rootfs_path;
    // Overlay snapshotter: the stage's mount, kept for later FROM (its layer directories) and COPY --from.
    std::shared_ptr<StageOverlay> overlay;
};

struct BuildSession {
    const BuildOptions& options;
    const dockerfile::Dockerfile& dockerfile;
    const BuildPlan& plan;
    BuildArgs& build_args;
    const MetaArgs& meta_args;
    const BlobStore& store;
    const std::string& work_dir;  // kiln's private directory for this build
    RegistryClient& pull_client;
    // Where base images are pulled from: --registry-mirror and --registry-map, then the registry itself.
    const RegistryRoutes& routes;
    const BuildContext& context;
    Platform platform;                // of the base images and the result
    std::int64_t created_seconds = 0;  // the time written into the config and history
    std::optional<std::int64_t> layer_timestamp;  // every file's mtime in new layers, for --reproducible
    // One entry per planned stage, made before any stage starts; a stage fills only its own entry, and reads
    // another's only after it has finished (build.cpp's scheduler orders that).
    std::map<size_t, StageResult> completed;
    // Rootfs directories of images that COPY --from=<image> pulled, by reference.
    std::map<std::string, std::string> copy_source_images;

    // The snapshotter of every RUN, COPY and ADD of this build, chosen before the first stage starts.
    SnapshotterChoice snapshotter;
    // Overlay snapshotter: base layers extracted once each, for every stage.
    std::unique_ptr<LayerDirectories> layer_directories;

    std::optional<Sandbox> probed_sandbox;  // see sandbox()
    // Guards what concurrently built stages share: probed_sandbox and copy_source_images. It is held while a
    // COPY --from image is pulled, so pulls record their origins under a mutex of their own.
    std::mutex shared_state_mutex;
    // The repository each pulled base layer came from, by digest: a push to the same registry mounts it
    // from there instead of uploading it.
    std::map<std::string, Reference> pulled_from;
    std::mutex pulled_from_mutex;

    // Records that `blobs` were pulled from `repository`.
    void note_pulled(const Reference& repository, const std::vector<Descriptor>& blobs);
    // A copy of pulled_from.
    std::map<std::string, Reference> blob_origins();

    // The RUN sandbox, probed on first use (a build without RUN never probes).
    Result<const Sandbox*> sandbox();
    // The options new layers are written with.
    LayerWriteOptions layer_options() const;
};

// The stage being built.
struct StageState {
    BuildSession& session;
    const dockerfile::Stage& stage;
    const PlannedStage& planned;
    Image image;
    std::string rootfs_path;
    RootFs rootfs;
    StageArgs args;
    dockerfile::ShellExpander expander;
    bool cmd_set = false;  // CMD was given in this stage, so a later ENTRYPOINT keeps it
    std::string label;     // "builder" or "stage 1", for the log
    size_t step = 0;       // the instruction being executed, 1-based after FROM
    size_t step_count = 0;

    // The lookup that instruction words expand with: the image's ENV, then the stage's ARGs.
    dockerfile::EnvLookup lookup() const { return args.expansion_lookup(image.config().config); }
    // Expands one word; errors name the instruction's file and line.
    Result<std::string> expand(std::string_view word, const dockerfile::InstructionBase& at) const;
    // "Dockerfile:12: COPY a b" for error messages.
    std::string where(const dockerfile::InstructionBase& at) const;
    // Records a history entry for an instruction that produced no layer.
    void add_empty_history(const dockerfile::InstructionBase& at);
    void add_empty_history(std::string created_by);
    // Writes `entries` as a new layer and appends it with its history entry; with --single-snapshot it only
    // records the history entry, and build_stage() takes the stage's one layer at its end.
    // With the overlay snapshotter, `entries` are not needed: the layer is the step's upper directory, less
    // `excluded` (paths in the image).
    Status commit_layer(const std::vector<LayerEntry>& entries, std::string created_by,
                        const std::vector<std::string>& excluded = {});
    // Writes `entries` as a layer now, whatever the snapshot policy.
    Status write_layer_now(const std::vector<LayerEntry>& entries, std::string created_by);
    // Writes `entries` of `source` (the rootfs, or an overlay upper) as a layer and appends it.
    Status write_layer_from(const RootFs& source, const std::vector<LayerEntry>& entries, std::string created_by);

    std::optional<Snapshot> stage_start;  // the rootfs as the stage began, kept for --single-snapshot

    // Snapshots (snapshots.cpp).
    // Paths no layer of this build holds, with everything below them: --ignore-path and /var/run
    // (--ignore-var-run), as absolute paths in the image.
    std::vector<std::string> ignored_paths() const;
    // What a RUN's walk compares and leaves out: --snapshot-mode, ignored_paths() and the declared volumes.
    ScanOptions run_scan_options() const;
    // The rootfs as a walk with run_scan_options() sees it now. The last RUN's after-state is reused as long
    // as nothing else has touched the rootfs since (commit_layer() forgets it).
    Result<Snapshot> walk_before(const ScanOptions& options);
    // Keeps `after`, taken with `options`, as the next walk_before()'s answer.
    void keep_walk_state(Snapshot after, const ScanOptions& options);

    // Overlay snapshotter: the stage's mount at rootfs_path, whose upper holds the current step's changes.
    std::shared_ptr<StageOverlay> overlay;

    // The after-state of the last RUN while it is still the rootfs's state, and what it left out.
    std::optional<Snapshot> walk_state;
    std::vector<std::string> walk_state_excluded;
};

}  // namespace kiln
