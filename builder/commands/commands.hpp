#pragma once
// Executing a Step (plan/step.hpp) that changes files: RUN, COPY and ADD, WORKDIR. Each writes into the
// stage's filesystem and reports what it wrote; the snapshotter, not the command, turns that into a layer.
// Steps that change only the config have nothing to execute.

#include <map>
#include <string>

#include "builder/build_inputs.hpp"
#include "builder/plan/plan.hpp"
#include "builder/plan/step.hpp"
#include "builder/snapshot/snapshotter.hpp"
#include "builder/sources/source_directory.hpp"

namespace kiln {

// The finished stages a stage may read (its base stage and those its steps read), by Dockerfile index.
using StageReads = std::map<size_t, const StageFilesystem*>;

// What a step's execution sees.
struct StepContext {
    const BuildInputs& build;
    const PlannedStage& stage;
    const Step& step;
    StageFilesystem& filesystem;
    const StageReads& reads;
    std::string name;  // "step 3/7 of builder", for messages
};

// Executes `context.step`, which must change files.
Result<StepWrites> execute_step(StepContext& context);

Result<StepWrites> execute_run(StepContext& context, const RunStep& run);
Result<StepWrites> execute_copy(StepContext& context, const CopyStep& copy);
Result<StepWrites> execute_workdir(StepContext& context, const WorkdirStep& workdir);

// The directory `from` names: the build context (with its ignore rules), a finished stage this one may read,
// or an image's filesystem (extracted on first use).
Result<SourceDirectory> source_directory(const StepContext& context, const SourceRef& from);

}  // namespace kiln
