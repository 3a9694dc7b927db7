#pragma once
// A Step: one Dockerfile instruction with every word expanded in its scope, ready to execute. Planning a stage
// produces its Steps before any of them runs, so that a Step can be printed and hashed (the layer cache's key)
// and so that the stages a Step reads (COPY --from, RUN --mount from=) are known to the scheduler.

#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "builder/run/run_mount_spec.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "builder/sources/file_mode.hpp"
#include "builder/sources/source_directory.hpp"
#include "common/error.hpp"
#include "dockerfile-parser/instructions.hpp"
#include "images/digest.hpp"
#include "images/image_config.hpp"

namespace kiln {

struct RunStep {
    std::vector<std::string> argv;
    std::optional<RunMount> script;        // a heredoc that RUN executes as a file
    std::vector<std::string> environment;  // ENV, the ARGs in scope and proxy build args; HOME is added at run
    std::string user;                      // USER as expanded ("" for root); resolved against the rootfs at run
    std::string working_directory;         // absolute
    NetworkMode network = NetworkMode::host;
    std::vector<PlannedMount> mounts;
    // Declared volumes: a missing mount point is created in the step's layer, what the step writes below
    // one is discarded (as buildah does).
    std::vector<std::string> volumes;
};

// COPY and ADD.
enum class CopyCommand { copy, add };

struct CopyStep {
    CopyCommand command = CopyCommand::copy;
    SourceRef from;
    std::vector<std::string> sources;                     // patterns and URLs, expanded
    std::vector<dockerfile::HeredocFile> inline_sources;  // bodies expanded where the heredoc asks for it
    std::string destination;                              // cleaned, relative to the rootfs ("" for "/")
    // Spelt as a directory ("dir/", ".", --parents); an existing directory is one too, decided at execution.
    bool destination_is_directory = false;
    std::string chown;                 // expanded; resolved against the rootfs at execution
    std::string chmod;                 // expanded, as written
    std::optional<ModeChange> mode;    // chmod, parsed
    std::vector<std::string> excludes;  // --exclude patterns, expanded
    bool parents = false;
    std::string checksum;  // ADD --checksum, validated
};

struct WorkdirStep {
    std::string path;  // absolute
    std::string user;  // the owner of a directory WORKDIR creates, as USER had it
};

// A step that changes only the image config (ENV, LABEL, CMD, …) carries no action.
using StepAction = std::variant<std::monostate, RunStep, CopyStep, WorkdirStep>;

struct Step {
    size_t number = 0;     // 2.. within the stage (FROM is 1); 0 for a base image's ONBUILD trigger
    SourceLocation location;  // the instruction's file, line and text
    std::string keyword;      // "RUN", "COPY", …
    std::string created_by;   // the history entry
    RunConfig config;         // the image's runtime config once this step is done
    std::optional<std::string> author;  // MAINTAINER
    StepAction action;

    bool changes_files() const { return !std::holds_alternative<std::monostate>(action); }
};

// The step's expanded inputs as (name, JSON value) pairs, in a fixed order: "instruction", then the action's
// ("argv", "environment", "user", … for RUN; "sources", "destination", … for COPY).
std::vector<std::pair<std::string, std::string>> step_fields(const Step& step);

// The step as stable text: its instruction and every expanded input, one "key: value" line each. Two steps
// print the same exactly when they would do the same given the same filesystem.
std::string describe_step(const Step& step);

// The sha256 of describe_step(): the step's part of a cache key.
Digest step_digest(const Step& step);

}  // namespace kiln
