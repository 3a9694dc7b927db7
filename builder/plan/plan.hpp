#pragma once
// Which stages a build runs, and in what order: the target (--target, else the last stage) and every stage it
// needs through FROM or COPY --from, transitively. Stages it does not need are never built.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "builder/plan/variables.hpp"
#include "dockerfile-parser/stages.hpp"

namespace kiln {

struct PlannedStage {
    size_t index = 0;
    std::string base;                  // the FROM image after expanding meta ARGs
    std::optional<size_t> base_stage;  // set when FROM names an earlier stage
    std::vector<size_t> copy_sources;  // earlier stages that COPY --from or RUN --mount=from= read
    size_t readers = 0;                // later planned stages that use this one (FROM or COPY --from)
};

struct BuildPlan {
    size_t target = 0;
    std::vector<PlannedStage> stages;  // the needed stages, in Dockerfile order
    const PlannedStage* find(size_t index) const;
};

// The earlier stage (before `before`) that `name` names: a stage name (case-insensitive) or, when
// `allow_index`, a stage number. nullopt when it names no stage (then it is an image).
std::optional<size_t> find_stage_reference(const dockerfile::Dockerfile& dockerfile, std::string_view name,
                                           size_t before, bool allow_index);

// Plans the build. An unknown --target is an error listing the stage names.
Result<BuildPlan> plan_build(const dockerfile::Dockerfile& dockerfile, const MetaArgs& meta,
                             const std::string& target);

}  // namespace kiln
