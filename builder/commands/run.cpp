#include <algorithm>
#include <chrono>
#include <fcntl.h>
#include <optional>

#include "builder/commands/commands.hpp"
#include "builder/run/run_mounts.hpp"
#include "builder/run/user_db.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

std::string variable_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// The step's environment with `overrides` ("NAME=value") replacing entries of the same name: the first of
// two equal names is the one a program's getenv sees.
std::vector<std::string> with_overrides(std::vector<std::string> environment,
                                        const std::vector<std::string>& overrides) {
    for (const std::string& entry : overrides) {
        std::string name = variable_name(entry);
        std::erase_if(environment, [&](const std::string& existing) { return variable_name(existing) == name; });
        environment.push_back(entry);
    }
    return environment;
}

// Makes the mount point of each declared volume the image lacks, as buildah does for a RUN after VOLUME; the
// paths made join the step's layer, and what the step writes below them does not.
Result<StepWrites> make_volume_mount_points(const RootFs& rootfs, const std::vector<std::string>& volumes) {
    StepWrites writes{.paths = {}, .anything = true, .discarded = volumes};
    for (const std::string& volume : volumes) {
        std::string path = clean_path(volume);
        if (path.empty() || rootfs.open(path, O_PATH | O_DIRECTORY)) continue;
        KILN_TRY(rootfs.make_directories(path, 0755, 0, 0));
        writes.paths.push_back(path);
    }
    return writes;
}

}  // namespace

Result<StepWrites> execute_run(StepContext& context, const RunStep& run) {
    const SourceLocation& at = context.step.location;
    const BuildInputs& build = context.build;
    if (!build.host.sandbox) return fail_at(at, str_cat("setting up the RUN sandbox: ", build.host.sandbox_error));
    StageFilesystem& filesystem = context.filesystem;

    RunMountInputs mount_inputs{
        .source_directory = [&](const SourceRef& from) { return source_directory(context, from); },
        .work_dir = build.work_dir,
        .cache_root = build.cache_dir,
        .secrets = &build.options.secrets,
        .environment = [&](std::string_view name) { return build.environment.variable(name); },
        .at = at};
    // Held until the step's end: cache locks and throwaway copies.
    KILN_ASSIGN(RunMountSet mounts, prepare_run_mounts(mount_inputs, run.mounts));

    RunSpec spec;
    spec.rootfs = filesystem.path();
    spec.argv = run.argv;
    spec.environment = with_overrides(run.environment, mounts.environment);
    spec.working_directory = run.working_directory;
    // --run-network=private holds for RUN --network=host too: a Dockerfile may not reach the host's loopback.
    spec.network = run.network == NetworkMode::none ? NetworkMode::none
                   : build.options.private_run_network ? NetworkMode::isolated
                                                       : NetworkMode::host;
    spec.mounts = std::move(mounts.mounts);
    if (run.script) spec.mounts.push_back(*run.script);
    KILN_ASSIGN(ResolvedUser user,
                with_location(resolve_user(filesystem.root(), run.user.empty() ? "0" : run.user), at));
    spec.uid = user.uid;
    spec.gid = user.gid;
    spec.supplementary_gids = user.supplementary_gids;
    // As Docker, Kaniko and buildah: a step without HOME gets the user's home from the image's passwd ("/"
    // when the user has no entry).
    bool has_home = std::any_of(spec.environment.begin(), spec.environment.end(),
                                [](const std::string& entry) { return entry.starts_with("HOME="); });
    if (!has_home) spec.environment.push_back("HOME=" + user.home);

    KILN_ASSIGN(spec.overlay, with_location(filesystem.prepare_run(run.volumes), at));
    // As runc does, a missing working directory is created for the step (and so lands in its layer).
    KILN_TRY(with_location(filesystem.root().make_directories(spec.working_directory, 0755, 0, 0), at));
    KILN_ASSIGN(StepWrites writes, with_location(make_volume_mount_points(filesystem.root(), run.volumes), at));
    writes.discarded.insert(writes.discarded.end(), build.host.run_left_out.begin(), build.host.run_left_out.end());
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN(int exit_code, with_location(build.host.sandbox->run(spec), at));
    double seconds = seconds_since(start);
    log_event(LogLevel::debug, LogEvent::run_done, str_cat("RUN took ", format_seconds(seconds), " s"),
              {{"seconds", seconds}});
    if (exit_code != 0) {
        Error error = Error(str_cat(context.name, " exited with code ", exit_code)).at(at);
        return std::unexpected(std::move(error).set_exit_code(exit_code));
    }
    return writes;
}

}  // namespace kiln
