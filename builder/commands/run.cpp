#include "builder/commands/commands.hpp"

#include <fcntl.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "builder/user_db.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/snapshot_walk.hpp"

namespace kiln {

std::vector<std::string> shell_command(const RunConfig& config, const std::string& command) {
    std::vector<std::string> argv = config.shell.value_or(std::vector<std::string>{"/bin/sh", "-c"});
    argv.push_back(command);
    return argv;
}

Status execute_run(StageState& state, const dockerfile::RunInstruction& instruction) {
    if (!instruction.mounts.empty())
        return std::unexpected(instruction_error(state, instruction, "RUN --mount is not supported yet"));
    if (!instruction.security.empty() && instruction.security != "sandbox")
        return std::unexpected(instruction_error(state, instruction, "RUN --security=insecure is not supported"));
    if (!instruction.heredocs.empty())
        return std::unexpected(instruction_error(state, instruction, "RUN with a heredoc is not supported yet"));
    NetworkMode network = NetworkMode::host;
    if (instruction.network == "none")
        network = NetworkMode::none;
    else if (!instruction.network.empty() && instruction.network != "default" && instruction.network != "host")
        return std::unexpected(instruction_error(state, instruction, "unknown --network \"" + instruction.network + "\""));
    if (instruction.args.empty()) return std::unexpected(instruction_error(state, instruction, "RUN needs a command"));

    const RunConfig& config = state.image.config().config;
    RunSpec spec;
    spec.rootfs = state.rootfs_path;
    spec.argv = instruction.shell_form ? shell_command(config, instruction.args[0]) : instruction.args;
    spec.environment = state.args.run_environment(config);
    spec.working_directory = config.working_dir.empty() ? "/" : config.working_dir;
    spec.network = network;
    KILN_ASSIGN(ResolvedUser user,
                with_context(resolve_user(state.rootfs, config.user.empty() ? "0" : config.user), state.where(instruction)));
    spec.uid = user.uid;
    spec.gid = user.gid;
    spec.supplementary_gids = user.supplementary_gids;
    KILN_ASSIGN(const Sandbox* sandbox, state.session.sandbox());

    KILN_ASSIGN(Snapshot before, with_context(scan_snapshot(state.rootfs), "snapshot before " + state.where(instruction)));
    // As runc does, a missing working directory is created for the step (and so lands in its layer).
    KILN_TRY_CONTEXT(state.rootfs.make_directories(spec.working_directory, 0755, 0, 0), state.where(instruction));
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN(int exit_code, with_context(sandbox->run(spec), state.where(instruction)));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (exit_code != 0) {
        Error error = instruction_error(
            state, instruction,
            str_cat("step ", state.step, "/", state.step_count, " of ", state.label, " exited with code ", exit_code));
        return std::unexpected(std::move(error).set_exit_code(exit_code));
    }
    KILN_ASSIGN(Snapshot after, with_context(scan_snapshot(state.rootfs), "snapshot after " + state.where(instruction)));
    std::vector<Change> changes = diff_snapshots(before, after);
    log_debug("RUN took ", seconds, " s and changed ", changes.size(), " path(s)");
    std::string created_by = "RUN " + (instruction.shell_form ? join(spec.argv, " ") : nlohmann::json(spec.argv).dump());
    return state.commit_layer(layer_entries_from_changes(changes), created_by);
}

}  // namespace kiln
