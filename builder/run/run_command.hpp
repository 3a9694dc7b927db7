#pragma once
// What a RUN instruction executes and how its history entry reads, as BuildKit's Dockerfile frontend has
// them: shell form wrapped in the stage's SHELL, heredocs turned into a script (or a shebang file), and "RUN
// |N K=V … argv" as created_by.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/sandbox/sandbox.hpp"
#include "common/error.hpp"
#include "dockerfile-parser/instructions.hpp"
#include "images/image_config.hpp"

namespace kiln {

// Where a shebang heredoc is put for the step to run, as in BuildKit.
inline constexpr const char* k_heredoc_script_directory = "/dev/pipes";

// The argv a shell-form command runs as: the stage's SHELL (default /bin/sh -c) followed by the command.
std::vector<std::string> shell_command(const RunConfig& config, const std::string& command);

struct RunCommandLine {
    std::vector<std::string> argv;
    // A heredoc starting with "#!", as the file (mode 0755, read-only) that argv runs.
    std::optional<RunMount> script;
};

// The argv of `run` under `config`'s SHELL (default /bin/sh -c):
//  - `RUN <<EOF` alone: a body starting with "#!" becomes the file /dev/pipes/EOF, which the shell runs;
//    any other body is the shell's command string;
//  - any other heredoc use (`RUN <<EOF sh`, `RUN cat <<A <<B`): the line and each body with its delimiter,
//    joined by newlines, for the shell to read its heredocs itself;
//  - exec form as written.
// A heredoc's expand flag is ignored, as BuildKit does: the shell or the interpreter expands at run time.
Result<RunCommandLine> run_command_line(const dockerfile::RunInstruction& run, const RunConfig& config);

// BuildKit's created_by for a RUN: "RUN " + "|N K1=V1 … " when the stage declared ARGs (in declaration order,
// each valued from the image's ENV when it has that name, else the ARG's value, "" when unset) + the argv,
// joined by spaces.
std::string run_created_by(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& declared_args,
    const RunConfig& config, const std::vector<std::string>& argv);

}  // namespace kiln
