#pragma once
// Executing a Step (plan/step.hpp) that changes files: RUN, COPY and ADD, WORKDIR. Each writes into the
// stage's filesystem and reports what it wrote; the snapshotter, not the command, turns that into a layer.
// Steps that change only the config have nothing to execute.

#include <map>
#include <optional>
#include <string>

#include "builder/build_inputs.hpp"
#include "builder/plan/plan.hpp"
#include "builder/plan/step.hpp"
#include "builder/snapshot/snapshotter.hpp"
#include "builder/sources/source_directory.hpp"
#include "dockerfile-parser/dockerignore.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// A finished stage that a stage's steps read: its filesystem, and its content (its image's diff_ids).
struct ReadableStage {
    const StageFilesystem* filesystem = nullptr;
    std::vector<Digest> diff_ids;
};
// The finished stages a stage's steps read, by Dockerfile index.
using StageReads = std::map<size_t, ReadableStage>;

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

// One thing a COPY or ADD copies once its patterns are matched: a path in the source's root, or a URL.
struct SelectedSource {
    std::string path;
    bool is_url = false;
    std::optional<std::string> pivot;  // --parents: lands at <destination>/<path below pivot>
};

// What a COPY or ADD selects from its source, before anything is written: also what its cache key covers.
struct CopySelection {
    RootFs root;
    const dockerfile::IgnoreMatcher* ignore = nullptr;  // the context's ignore rules
    std::optional<dockerfile::IgnoreMatcher> exclude;   // --exclude
    std::vector<SelectedSource> sources;
};

// Matches `copy`'s patterns against `from`. Errors name the step's line.
Result<CopySelection> select_copy_sources(const SourceDirectory& from, const CopyStep& copy, const SourceLocation& at);

}  // namespace kiln
