// RUN, planned: its command line under the stage's SHELL, its environment, its user and working directory, and
// every --mount with its values expanded, its target made absolute and its `from` resolved to a stage or an
// image.

#include "builder/plan/stage_scope.hpp"
#include "builder/run/run_command.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

std::string basename_of(const std::string& path) { return file_name(clean_path(path)); }

// `target` made absolute against WORKDIR and cleaned; "/" itself is refused.
Result<std::string> absolute_target(const std::string& target, const std::string& working_dir) {
    std::string path = target;
    if (path.empty() || path[0] != '/') path = (working_dir.empty() ? "/" : working_dir) + "/" + path;
    std::string cleaned = clean_path(path);
    if (cleaned.empty()) return fail("invalid mount target \"/\"");
    return "/" + cleaned;
}

Result<PlannedMount> plan_mount(const StageScope& scope, const dockerfile::RunInstruction& run,
                                const std::string& raw) {
    auto expand = [&](std::string_view word) { return scope.expand(word, run); };
    KILN_ASSIGN(RunMountRequest request, parse_run_mount(raw, expand));
    PlannedMount mount{.text = raw, .request = std::move(request), .target = {}, .from = SourceRef::context()};
    const RunMountRequest& parsed = mount.request;
    const std::string& working_dir = scope.config().working_dir;
    switch (parsed.type) {
        case RunMountType::ssh:
            return fail("RUN --mount=type=ssh is not supported yet");
        case RunMountType::secret: {
            std::string id = !parsed.source.empty() ? parsed.source
                             : !parsed.id.empty()   ? parsed.id
                                                    : basename_of(parsed.target);
            mount.request.id = id;
            std::string target = parsed.target;
            if (target.empty() && !parsed.env) target = "/run/secrets/" + basename_of(id);
            if (!target.empty()) {
                KILN_ASSIGN(mount.target, absolute_target(target, working_dir));
            }
            return mount;
        }
        case RunMountType::tmpfs: {
            KILN_ASSIGN(mount.target, absolute_target(parsed.target, working_dir));
            return mount;
        }
        case RunMountType::cache:
            if (parsed.from.empty() && !clean_path(parsed.source).empty())
                return fail("source without from on a cache mount is not supported yet");
            [[fallthrough]];
        case RunMountType::bind: {
            KILN_ASSIGN(mount.target, absolute_target(parsed.target, working_dir));
            if (!parsed.from.empty()) mount.from = scope.resolve_from(parsed.from);
            return mount;
        }
    }
    return mount;
}

}  // namespace

Result<Step> plan_run(StageScope& scope, const dockerfile::RunInstruction& instruction) {
    SourceLocation at = instruction.source_location();
    if (!instruction.security.empty() && instruction.security != "sandbox")
        return fail_at(at, "RUN --security=insecure is not supported");
    RunStep run;
    if (instruction.network == "none")
        run.network = NetworkMode::none;
    else if (!instruction.network.empty() && instruction.network != "default" && instruction.network != "host")
        return fail_at(at, "unknown --network \"" + instruction.network + "\"");

    const RunConfig& config = scope.config();
    KILN_ASSIGN(RunCommandLine command, with_location(run_command_line(instruction, config), at));
    run.argv = std::move(command.argv);
    run.script = std::move(command.script);
    run.environment = scope.args().run_environment(config);
    run.user = config.user;
    run.working_directory = config.working_dir.empty() ? "/" : config.working_dir;
    for (const std::string& raw : instruction.mounts) {
        KILN_ASSIGN(PlannedMount mount,
                    with_location(with_context(plan_mount(scope, instruction, raw), "--mount=" + raw), at));
        run.mounts.push_back(std::move(mount));
    }
    run.volumes.assign(config.volumes.begin(), config.volumes.end());

    Step step = step_at(scope, instruction, "RUN");
    step.created_by = run_created_by(scope.args().declared(), config, run.argv);
    step.action = std::move(run);
    return step;
}

}  // namespace kiln
