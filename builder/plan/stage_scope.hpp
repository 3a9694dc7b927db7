#pragma once
// What a stage's instructions see while they are planned: the runtime config so far (ENV, WORKDIR, USER,
// SHELL, …), the ARGs declared so far, and the build's arguments. Planning walks the instructions in order and
// turns each into a Step (plan_step), so every word is expanded in exactly the scope Docker gives it.

#include <optional>
#include <string>
#include <string_view>

#include "builder/plan/stage_names.hpp"
#include "builder/plan/step.hpp"
#include "builder/plan/variables.hpp"
#include "dockerfile-parser/instructions.hpp"
#include "dockerfile-parser/shell_expand.hpp"
#include "dockerfile-parser/stages.hpp"

namespace kiln {

class StageScope {
public:
    StageScope(const dockerfile::Dockerfile& dockerfile, size_t stage, RunConfig config, BuildArgs& build_args,
               const MetaArgs& meta_args, const StageNames& names);

    const RunConfig& config() const { return m_config; }
    RunConfig& config() { return m_config; }
    const std::optional<std::string>& author() const { return m_author; }
    void set_author(std::string author) { m_author = std::move(author); }
    StageArgs& args() { return m_args; }
    const StageArgs& args() const { return m_args; }
    bool cmd_set() const { return m_cmd_set; }
    void mark_cmd_set() { m_cmd_set = true; }

    // The lookup that instruction words expand with: the config's ENV, then the stage's ARGs.
    dockerfile::EnvLookup lookup() const { return m_args.expansion_lookup(m_config); }
    // Expands one word; errors are located at `at`.
    Result<std::string> expand(std::string_view word, const dockerfile::InstructionBase& at) const;
    // Declares ARG `name` with its default (already expanded).
    void declare_arg(const std::string& name, std::optional<std::string> default_value);
    // What an expanded `from` names: an earlier stage (by name or number), else an image.
    SourceRef resolve_from(const std::string& from) const;
    char escape() const { return m_dockerfile.escape; }
    size_t stage() const { return m_stage; }

private:
    const dockerfile::Dockerfile& m_dockerfile;
    size_t m_stage;
    RunConfig m_config;
    std::optional<std::string> m_author;
    StageArgs m_args;
    bool m_cmd_set = false;  // CMD was given in this stage, so a later ENTRYPOINT keeps it
    dockerfile::ShellExpander m_expander;
    BuildArgs& m_build_args;
    const MetaArgs& m_meta_args;
    const StageNames& m_names;
};

// The Step for one instruction of a stage, given the scope so far, which it updates (an ARG is declared, an ENV
// set, …). FROM is refused: it starts a stage rather than being one of its steps.
Result<Step> plan_step(StageScope& scope, const dockerfile::Instruction& instruction);

// The parts of plan_step that need more than a few lines, one per instruction kind.
Result<Step> plan_run(StageScope& scope, const dockerfile::RunInstruction& run);
Result<Step> plan_copy(StageScope& scope, const dockerfile::CopyInstruction& copy);
Result<Step> plan_add(StageScope& scope, const dockerfile::AddInstruction& add);
Result<Step> plan_healthcheck(StageScope& scope, const dockerfile::HealthcheckInstruction& healthcheck);
Result<Step> plan_expose(StageScope& scope, const dockerfile::ExposeInstruction& expose);
Result<Step> plan_stopsignal(StageScope& scope, const dockerfile::StopsignalInstruction& stopsignal);

// A Step for `at` with the scope's config as it stands, no action yet.
Step step_at(const StageScope& scope, const dockerfile::InstructionBase& at, std::string_view keyword);

}  // namespace kiln
