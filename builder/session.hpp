#pragma once
// The state a build shares across its stages, and the state of the stage being built.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "builder/context.hpp"
#include "builder/options.hpp"
#include "builder/plan.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "builder/variables.hpp"
#include "dockerfile-parser/stages.hpp"
#include "images/blob_store.hpp"
#include "images/image.hpp"
#include "layers/layer_writer.hpp"
#include "layers/rootfs.hpp"
#include "registry/client.hpp"

namespace kiln {

// A finished stage: its image, and its filesystem for later FROM and COPY --from.
struct StageResult {
    size_t index = 0;
    std::string name;
    Image image = Image::empty(Platform{});
    std::string rootfs_path;
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
    const BuildContext& context;
    Platform platform;                // of the base images and the result
    std::int64_t created_seconds = 0;  // the time written into the config and history
    std::optional<std::int64_t> layer_timestamp;  // every file's mtime in new layers, for --reproducible
    // One entry per planned stage, made before any stage starts; a stage fills only its own entry, and reads
    // another's only after it has finished (build.cpp's scheduler orders that).
    std::map<size_t, StageResult> completed;
    // Rootfs directories of images that COPY --from=<image> pulled, by reference.
    std::map<std::string, std::string> copy_source_images;

    std::optional<Sandbox> probed_sandbox;  // see sandbox()
    // Guards what concurrently built stages share: probed_sandbox and copy_source_images.
    std::mutex shared_state_mutex;

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
    Status commit_layer(const std::vector<LayerEntry>& entries, std::string created_by);
    // Writes `entries` as a layer now, whatever the snapshot policy.
    Status write_layer_now(const std::vector<LayerEntry>& entries, std::string created_by);

    std::optional<Snapshot> stage_start;  // the rootfs as the stage began, kept for --single-snapshot
};

}  // namespace kiln
