#pragma once
// The cache key of a step about to run: what it starts from, the step itself, what it reads, and the build's
// layer options (key_inputs.hpp says what each covers).

#include <optional>
#include <string>

#include "builder/build_inputs.hpp"
#include "builder/cache/key_inputs.hpp"
#include "builder/commands/commands.hpp"
#include "builder/plan/plan.hpp"
#include "builder/plan/step.hpp"
#include "images/image.hpp"

namespace kiln {

struct StepKey {
    std::optional<KeyInputs> inputs;  // empty when the step is not cached
    std::string not_cached;           // then, why
    // The step's name across builds (Dockerfile, stage, step number and instruction), under which what it
    // read is recorded to explain a later miss.
    Digest identity;
};

// The key of `step` in `stage`, whose image so far is `image`; `reads` are the finished stages its steps read.
// Reading the build context's files is the only costly part: stages and images count by their content
// digests, so neither has to be extracted.
Result<StepKey> step_key(const BuildInputs& build, const PlannedStage& stage, const StageReads& reads, const Step& step,
                         const Image& image);

}  // namespace kiln
