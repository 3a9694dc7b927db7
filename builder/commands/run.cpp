#include "builder/commands/commands.hpp"

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "builder/run/run_command.hpp"
#include "builder/run/run_mounts.hpp"
#include "layers/snapshot_overlay.hpp"
#include "builder/run/user_db.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/snapshot_walk.hpp"

namespace kiln {
namespace {

std::string variable_name(const std::string& entry) {
    return entry.substr(0, entry.find('='));
}

// The step's environment with `overrides` ("NAME=value") replacing entries of the same name: the first of
// two equal names is the one a program's getenv sees.
std::vector<std::string> with_overrides(std::vector<std::string> environment,
                                        const std::vector<std::string>& overrides) {
    for (const std::string& entry : overrides) {
        std::string name = variable_name(entry);
        std::erase_if(environment,
                      [&](const std::string& existing) { return variable_name(existing) == name; });
        environment.push_back(entry);
    }
    return environment;
}

}  // namespace

std::vector<std::string> shell_command(const RunConfig& config, const std::string& command) {
    std::vector<std::string> argv = config.shell.value_or(std::vector<std::string>{"/bin/sh", "-c"});
    argv.push_back(command);
    return argv;
}

Status execute_run(StageState& state, const dockerfile::RunInstruction& instruction) {
    if (!instruction.security.empty() && instruction.security != "sandbox")
        return std::unexpected(
            instruction_error(state, instruction, "RUN --security=insecure is not supported"));
    NetworkMode network = NetworkMode::host;
    if (instruction.network == "none")
        network = NetworkMode::none;
    else if (!instruction.network.empty() && instruction.network != "default" &&
             instruction.network != "host")
        return std::unexpected(
            instruction_error(state, instruction, "unknown --network \"" + instruction.network + "\""));

    const RunConfig& config = state.image.config().config;
    auto command = run_command_line(instruction, config);
    if (!command) return std::unexpected(instruction_error(state, instruction, command.error().message()));
    // Held until the step's end: cache locks and throwaway copies.
    KILN_ASSIGN(RunMountSet mounts, prepare_run_mounts(state, instruction));

    RunSpec spec;
    spec.rootfs = state.rootfs_path;
    spec.argv = command->argv;
    spec.environment = with_overrides(state.args.run_environment(config), mounts.environment);
    spec.working_directory = config.working_dir.empty() ? "/" : config.working_dir;
    spec.network = network;
    spec.mounts = std::move(mounts.mounts);
    if (command->script) spec.mounts.push_back(std::move(*command->script));
    KILN_ASSIGN(ResolvedUser user,
                with_context(resolve_user(state.rootfs, config.user.empty() ? "0" : config.user),
                             state.where(instruction)));
    spec.uid = user.uid;
    spec.gid = user.gid;
    spec.supplementary_gids = user.supplementary_gids;
    // As Docker, Kaniko and buildah: a step without HOME gets the user's home from the image's passwd ("/"
    // when the user has no entry).
    bool has_home = std::any_of(spec.environment.begin(), spec.environment.end(),
                                [](const std::string& entry) { return entry.starts_with("HOME="); });
    if (!has_home) spec.environment.push_back("HOME=" + user.home);
    KILN_ASSIGN(const Sandbox* sandbox, state.session.sandbox());

    // With --single-snapshot the stage's one layer comes from its end, so a step needs no walk of its own;
    // nor does it with the overlay snapshotter, whose upper directory is the step's diff.
    bool snapshot = !state.session.options.single_snapshot && !state.overlay;
    if (state.overlay) spec.overlay = state.overlay->spec();
    ScanOptions scan_options = state.run_scan_options();
    std::optional<Snapshot> before;
    if (snapshot) {
        KILN_ASSIGN(before, with_context(state.walk_before(scan_options),
                                         "snapshot before " + state.where(instruction)));
    }
    // As runc does, a missing working directory is created for the step (and so lands in its layer).
    KILN_TRY_CONTEXT(state.rootfs.make_directories(spec.working_directory, 0755, 0, 0),
                     state.where(instruction));
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN(int exit_code, with_context(sandbox->run(spec), state.where(instruction)));
    double seconds = seconds_since(start);
    if (exit_code != 0) {
        Error error = instruction_error(state, instruction,
                                        str_cat("step ", state.step, "/", state.step_count, " of ",
                                                state.label, " exited with code ", exit_code));
        return std::unexpected(std::move(error).set_exit_code(exit_code));
    }
    if (state.overlay) {
        log_debug("RUN took ", seconds, " s");
        std::vector<std::string> volumes(config.volumes.begin(), config.volumes.end());
        KILN_TRY(state.commit_layer({}, run_created_by(state.args.declared(), config, command->argv), volumes));
        if (state.session.options.single_snapshot) {
            // The step may have written through a mount of its own: kiln's must not serve stale entries.
            KILN_TRY(state.overlay->remount());
            KILN_ASSIGN(state.rootfs, RootFs::open(state.rootfs_path));
        }
        return {};
    }
    if (!snapshot) {
        log_debug("RUN took ", seconds, " s");
        return state.commit_layer({}, run_created_by(state.args.declared(), config, command->argv));
    }
    scan_options.previous = &*before;  // --snapshot-mode=full: hash only what changed
    KILN_ASSIGN(Snapshot after,
                with_context(scan_snapshot(state.rootfs, scan_options), "snapshot after " + state.where(instruction)));
    std::vector<Change> changes = diff_snapshots(*before, after);
    log_debug("RUN took ", seconds, " s and changed ", changes.size(), " path(s)");
    KILN_TRY(state.commit_layer(layer_entries_from_changes(changes),
                                run_created_by(state.args.declared(), config, command->argv)));
    scan_options.previous = nullptr;
    state.keep_walk_state(std::move(after), scan_options);
    return {};
}

}  // namespace kiln
