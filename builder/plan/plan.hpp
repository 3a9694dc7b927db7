#pragma once
// The build plan: which stages a build runs (the target, --target or the last stage, and every stage it needs
// through FROM, COPY --from or RUN --mount from=, transitively), where each starts from (scratch, an image
// resolved to its manifest digest, or an earlier stage), and each stage's Steps, with every word expanded in
// its scope. Everything here is decided before the first step runs; stages the target does not need are never
// resolved, pulled or built.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "builder/plan/step.hpp"
#include "builder/plan/variables.hpp"
#include "builder/sources/image_source.hpp"
#include "dockerfile-parser/stages.hpp"

namespace kiln {

struct PlannedStage {
    size_t index = 0;
    std::string name;   // as AS gave it, lower-cased; empty when unnamed
    std::string label;  // the name, or "stage N": how the log names the stage
    SourceLocation from;  // the FROM line
    std::string base;     // the FROM image after expanding meta ARGs
    std::optional<size_t> base_stage;       // FROM an earlier stage
    std::optional<SourceImage> base_image;  // FROM an image (not scratch, not a stage)
    Platform platform;                      // of the base and of what the stage makes
    // The runtime config the stage starts with: its base's, without ONBUILD triggers (they run once, as this
    // stage's first steps) and with a PATH.
    RunConfig start_config;
    std::vector<Step> steps;  // the base's ONBUILD triggers (number 0), then the stage's instructions
    std::vector<size_t> reads;  // earlier stages its steps read (COPY --from, RUN --mount from=), sorted
    size_t readers = 0;         // later planned stages that use this one (FROM, or a read)
    size_t step_readers = 0;    // later planned stages whose steps read this one's files

    // Every stage this one needs finished before it starts: its base stage and the stages it reads.
    std::vector<size_t> dependencies() const;
};

struct BuildPlan {
    size_t target = 0;
    std::vector<PlannedStage> stages;  // the needed stages, in Dockerfile order
    // The planned stage with Dockerfile index `index`, or null.
    const PlannedStage* find(size_t index) const;
    // True when two stages may run at once: the stages do not form a single chain.
    bool has_parallel_stages() const;
    // True when some step is a RUN.
    bool runs_commands() const;
    // True when the layers that stage `index` adds end up in the target's image: it is the target, or the
    // target is built FROM it (directly or not).
    bool in_target_image(size_t index) const;
};

struct PlanInputs {
    const dockerfile::Dockerfile& dockerfile;
    const MetaArgs& meta_args;
    BuildArgs& build_args;
    std::string target;  // --target; empty for the last stage
    Platform platform;   // the build's target platform
    ImageSource& images;  // resolves base images (manifest and config; no layer is fetched)
};

// Plans the build. An unknown --target is an error listing the stage names; an error in a stage's
// instructions names the file and line.
Result<BuildPlan> plan_build(const PlanInputs& inputs);

// The images every stage's FROM names (stages and scratch left out), each once, with its platform: what
// `kiln warm --dockerfile` fetches.
Result<std::vector<std::pair<std::string, Platform>>> base_images(const dockerfile::Dockerfile& dockerfile,
                                                                 const MetaArgs& meta_args, const Platform& platform);

}  // namespace kiln
