#pragma once
// One stage: its filesystem prepared from its base, then each Step in order: a config step changes the image
// config, any other is executed and what it wrote committed as a layer by the snapshotter.

#include <memory>

#include "builder/build_inputs.hpp"
#include "builder/commands/commands.hpp"
#include "builder/plan/plan.hpp"
#include "builder/snapshot/snapshotter.hpp"
#include "images/image.hpp"

namespace kiln {

// A finished stage: its image, and its filesystem for later FROM, COPY --from and RUN --mount from=.
struct StageOutput {
    Image image = Image::empty(Platform{});
    std::unique_ptr<StageFilesystem> filesystem;
};

// What the scheduler hands a stage: the finished stage it is built FROM, if any (which it may take over when
// nothing else reads it), and the finished stages its steps read.
struct StageDependencies {
    StageOutput* base = nullptr;
    StageReads reads;
};

// Fetches the layers of the image that stage `index` is built on, down its FROM chain: what a stage whose
// parent never extracted its files, or a fully cached image, needs readable.
Status fetch_base_layers(const BuildPlan& plan, size_t index, ImageSource& images);

// Builds `stage`. Errors name the Dockerfile line of the step that failed.
Result<StageOutput> build_stage(const BuildInputs& build, const PlannedStage& stage, const StageDependencies& dependencies);

}  // namespace kiln
