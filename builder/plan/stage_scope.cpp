#include "builder/plan/stage_scope.hpp"

#include "builder/run/run_command.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

Result<Step> plan_arg(StageScope& scope, const dockerfile::ArgInstruction& instruction) {
    for (const auto& arg : instruction.args) {
        // BuildKit expands the name as well as the default: `ARG ${src}=a` declares the ARG that ENV src names.
        KILN_ASSIGN(std::string name, scope.expand(arg.name, instruction));
        if (name.empty()) return fail_at(instruction.source_location(), "ARG name is empty after expansion");
        std::optional<std::string> expanded;
        if (arg.default_value) {
            KILN_ASSIGN(expanded, scope.expand(*arg.default_value, instruction));
        }
        scope.declare_arg(name, std::move(expanded));
    }
    return step_at(scope, instruction, "ARG");
}

// ENV's and LABEL's pairs, each key and value expanded in the scope from before the instruction, as Docker
// expands them.
Result<std::vector<std::pair<std::string, std::string>>> expand_pairs(const StageScope& scope,
                                                                       const std::vector<dockerfile::KeyValue>& pairs,
                                                                       const dockerfile::InstructionBase& at) {
    std::vector<std::pair<std::string, std::string>> expanded;
    for (const auto& pair : pairs) {
        KILN_ASSIGN(std::string key, scope.expand(pair.key, at));
        KILN_ASSIGN(std::string value, scope.expand(pair.value, at));
        expanded.emplace_back(std::move(key), std::move(value));
    }
    return expanded;
}

Result<Step> plan_env(StageScope& scope, const dockerfile::EnvInstruction& instruction) {
    KILN_ASSIGN(auto pairs, expand_pairs(scope, instruction.pairs, instruction));
    for (const auto& [key, value] : pairs) {
        if (key.empty() || key.find('=') != std::string::npos)
            return fail_at(instruction.source_location(), "invalid environment variable name \"" + key + "\"");
        scope.config().set_env(key, value);
    }
    return step_at(scope, instruction, "ENV");
}

Result<Step> plan_label(StageScope& scope, const dockerfile::LabelInstruction& instruction) {
    KILN_ASSIGN(auto pairs, expand_pairs(scope, instruction.pairs, instruction));
    for (const auto& [key, value] : pairs) {
        if (key.empty()) return fail_at(instruction.source_location(), "empty label name");
        scope.config().labels[key] = value;
    }
    return step_at(scope, instruction, "LABEL");
}

Result<Step> plan_cmd(StageScope& scope, const dockerfile::CmdInstruction& instruction) {
    RunConfig& config = scope.config();
    config.cmd = instruction.shell_form && !instruction.args.empty() ? shell_command(config, instruction.args[0])
                                                                     : instruction.args;
    scope.mark_cmd_set();
    return step_at(scope, instruction, "CMD");
}

Result<Step> plan_entrypoint(StageScope& scope, const dockerfile::EntrypointInstruction& instruction) {
    RunConfig& config = scope.config();
    config.entrypoint = instruction.shell_form && !instruction.args.empty()
                            ? shell_command(config, instruction.args[0])
                            : instruction.args;
    // A new ENTRYPOINT makes an inherited CMD meaningless; one set in this stage stays (Docker's rule).
    if (!scope.cmd_set()) config.cmd.reset();
    return step_at(scope, instruction, "ENTRYPOINT");
}

Result<Step> plan_shell(StageScope& scope, const dockerfile::ShellInstruction& instruction) {
    if (instruction.shell_form || instruction.args.empty())
        return fail_at(instruction.source_location(),
                       "SHELL needs a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]");
    scope.config().shell = instruction.args;
    return step_at(scope, instruction, "SHELL");
}

// The user is only recorded here; RUN resolves it against the image's /etc/passwd when it needs the ids, as
// Docker does (a later RUN may create the user).
Result<Step> plan_user(StageScope& scope, const dockerfile::UserInstruction& instruction) {
    KILN_ASSIGN(std::string user, scope.expand(instruction.user, instruction));
    if (user.empty()) return fail_at(instruction.source_location(), "USER needs a user name or id");
    scope.config().user = user;
    return step_at(scope, instruction, "USER");
}

// A volume is only declared: its directory is made by the first RUN after it (run.cpp), as buildah does, and
// never by VOLUME itself, which adds no layer (BuildKit and Kaniko never put the directory in the image).
Result<Step> plan_volume(StageScope& scope, const dockerfile::VolumeInstruction& instruction) {
    for (const std::string& raw : instruction.paths) {
        KILN_ASSIGN(std::string path, scope.expand(raw, instruction));
        if (path.empty()) return fail_at(instruction.source_location(), "VOLUME path is empty");
        scope.config().volumes.insert(path);
    }
    return step_at(scope, instruction, "VOLUME");
}

// Stored in the config; a later build that starts FROM this image runs the trigger first.
Result<Step> plan_onbuild(StageScope& scope, const dockerfile::OnbuildInstruction& instruction) {
    scope.config().on_build.push_back(instruction.trigger);
    return step_at(scope, instruction, "ONBUILD");
}

Result<Step> plan_maintainer(StageScope& scope, const dockerfile::MaintainerInstruction& instruction) {
    scope.set_author(instruction.name);
    return step_at(scope, instruction, "MAINTAINER");
}

Result<Step> plan_workdir(StageScope& scope, const dockerfile::WorkdirInstruction& instruction) {
    KILN_ASSIGN(std::string path, scope.expand(instruction.path, instruction));
    if (path.empty()) return fail_at(instruction.source_location(), "WORKDIR needs a path");
    RunConfig& config = scope.config();
    std::string current = config.working_dir.empty() ? "/" : config.working_dir;
    std::string absolute = "/" + clean_path(path.front() == '/' ? path : current + "/" + path);
    config.working_dir = absolute;
    Step step = step_at(scope, instruction, "WORKDIR");
    step.created_by = "WORKDIR " + absolute;
    step.action = WorkdirStep{.path = absolute, .user = config.user};
    return step;
}

}  // namespace

StageScope::StageScope(const dockerfile::Dockerfile& dockerfile, size_t stage, RunConfig config,
                       BuildArgs& build_args, const MetaArgs& meta_args, const StageNames& names)
    : m_dockerfile(dockerfile), m_stage(stage), m_config(std::move(config)), m_expander(dockerfile.escape),
      m_build_args(build_args), m_meta_args(meta_args), m_names(names) {
    m_args.set_proxy_environment(build_args.proxy_environment());
}

Result<std::string> StageScope::expand(std::string_view word, const dockerfile::InstructionBase& at) const {
    return with_location(m_expander.process_word(word, lookup()), at.source_location());
}

void StageScope::declare_arg(const std::string& name, std::optional<std::string> default_value) {
    m_args.declare(name, std::move(default_value), m_build_args, m_meta_args);
}

SourceRef StageScope::resolve_from(const std::string& from) const {
    if (auto stage = m_names.find(from, m_stage, /*allow_number=*/true)) return SourceRef::of_stage(*stage);
    return SourceRef::of_image(from);
}

Step step_at(const StageScope& scope, const dockerfile::InstructionBase& at, std::string_view keyword) {
    return Step{.number = 0,
                .location = at.source_location(),
                .keyword = std::string(keyword),
                .created_by = at.original,
                .config = scope.config(),
                .author = scope.author(),
                .action = {}};
}

Result<Step> plan_step(StageScope& scope, const dockerfile::Instruction& instruction) {
    return std::visit(
        Overloaded{
            [&](const dockerfile::FromInstruction& from) -> Result<Step> {
                return fail_at(from.source_location(), "FROM inside a stage");
            },
            [&](const dockerfile::ArgInstruction& i) { return plan_arg(scope, i); },
            [&](const dockerfile::EnvInstruction& i) { return plan_env(scope, i); },
            [&](const dockerfile::LabelInstruction& i) { return plan_label(scope, i); },
            [&](const dockerfile::RunInstruction& i) { return plan_run(scope, i); },
            [&](const dockerfile::CopyInstruction& i) { return plan_copy(scope, i); },
            [&](const dockerfile::AddInstruction& i) { return plan_add(scope, i); },
            [&](const dockerfile::WorkdirInstruction& i) { return plan_workdir(scope, i); },
            [&](const dockerfile::CmdInstruction& i) { return plan_cmd(scope, i); },
            [&](const dockerfile::EntrypointInstruction& i) { return plan_entrypoint(scope, i); },
            [&](const dockerfile::ShellInstruction& i) { return plan_shell(scope, i); },
            [&](const dockerfile::UserInstruction& i) { return plan_user(scope, i); },
            [&](const dockerfile::ExposeInstruction& i) { return plan_expose(scope, i); },
            [&](const dockerfile::VolumeInstruction& i) { return plan_volume(scope, i); },
            [&](const dockerfile::StopsignalInstruction& i) { return plan_stopsignal(scope, i); },
            [&](const dockerfile::HealthcheckInstruction& i) { return plan_healthcheck(scope, i); },
            [&](const dockerfile::OnbuildInstruction& i) { return plan_onbuild(scope, i); },
            [&](const dockerfile::MaintainerInstruction& i) { return plan_maintainer(scope, i); },
        },
        instruction);
}

}  // namespace kiln
