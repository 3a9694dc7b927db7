#include "builder/stage_builder.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>

#include "builder/sources/image_source.hpp"
#include "builder/commands/commands.hpp"
#include "layers/snapshot_overlay.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/parallel.hpp"
#include "common/strings.hpp"
#include "layers/snapshot_walk.hpp"

namespace kiln {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

Status dispatch(StageState& state, const dockerfile::Instruction& instruction) {
    return std::visit(
        Overloaded{
            [&](const dockerfile::FromInstruction& from) -> Status {
                return std::unexpected(instruction_error(state, from, "FROM inside a stage"));
            },
            [&](const dockerfile::ArgInstruction& i) { return execute_arg(state, i); },
            [&](const dockerfile::EnvInstruction& i) { return execute_env(state, i); },
            [&](const dockerfile::LabelInstruction& i) { return execute_label(state, i); },
            [&](const dockerfile::RunInstruction& i) { return execute_run(state, i); },
            [&](const dockerfile::CopyInstruction& i) { return execute_copy(state, i); },
            [&](const dockerfile::AddInstruction& i) { return execute_add(state, i); },
            [&](const dockerfile::WorkdirInstruction& i) { return execute_workdir(state, i); },
            [&](const dockerfile::CmdInstruction& i) { return execute_cmd(state, i); },
            [&](const dockerfile::EntrypointInstruction& i) { return execute_entrypoint(state, i); },
            [&](const dockerfile::ShellInstruction& i) { return execute_shell(state, i); },
            [&](const dockerfile::UserInstruction& i) { return execute_user(state, i); },
            [&](const dockerfile::ExposeInstruction& i) { return execute_expose(state, i); },
            [&](const dockerfile::VolumeInstruction& i) { return execute_volume(state, i); },
            [&](const dockerfile::StopsignalInstruction& i) { return execute_stopsignal(state, i); },
            [&](const dockerfile::HealthcheckInstruction& i) { return execute_healthcheck(state, i); },
            [&](const dockerfile::OnbuildInstruction& i) { return execute_onbuild(state, i); },
            [&](const dockerfile::MaintainerInstruction& i) { return execute_maintainer(state, i); },
        },
        instruction);
}

// The base image's ONBUILD triggers, parsed as instructions of this Dockerfile.
Result<std::vector<dockerfile::Instruction>> onbuild_triggers(const Image& base, const std::string& base_name,
                                                              const dockerfile::Dockerfile& dockerfile) {
    std::vector<dockerfile::Instruction> triggers;
    for (const std::string& trigger : base.config().config.on_build) {
        std::string text = str_cat("# escape=", dockerfile.escape, "\nFROM scratch\n", trigger, "\n");
        KILN_ASSIGN(dockerfile::Dockerfile parsed,
                    dockerfile::parse_dockerfile(text, str_cat("ONBUILD trigger of ", base_name)));
        for (auto& instruction : parsed.stages.at(0).instructions) {
            std::string_view keyword = dockerfile::instruction_name(instruction);
            if (keyword == "ONBUILD" || keyword == "FROM" || keyword == "MAINTAINER")
                return fail(str_cat(base_name, ": ONBUILD ", keyword, " is not allowed as a trigger"));
            triggers.push_back(std::move(instruction));
        }
    }
    return triggers;
}

// --single-snapshot compares the stage's start with its end, in the build's --snapshot-mode and without
// the ignored paths.
ScanOptions single_snapshot_options(const StageState& state) {
    ScanOptions options;
    options.mode = state.session.options.snapshot_mode;
    options.excluded = state.ignored_paths();
    return options;
}

std::string stage_label(const dockerfile::Stage& stage) {
    return stage.name.empty() ? str_cat("stage ", stage.index) : stage.name;
}

// Base layers extracted at once by the overlay snapshotter: extraction is CPU-bound (decompression) and
// file-creation-bound, so a few threads keep both busy without swamping the disk.
constexpr size_t k_concurrent_extractions = 4;

// Overlay snapshotter: mounts the stage's rootfs from the base's layer directories (extracted on first use)
// or from the parent stage's.
Result<std::shared_ptr<StageOverlay>> mount_stage_overlay(BuildSession& session, const Image& base,
                                                          std::vector<std::string> lowers,
                                                          const std::string& stage_dir,
                                                          const std::string& rootfs_path) {
    if (lowers.empty()) {
        // Each layer has a directory of its own, so they are extracted side by side; the stack is topmost first.
        const std::vector<LayerPtr>& layers = base.layers();
        std::vector<std::string> directories(layers.size());
        KILN_TRY(run_bounded(layers.size(), k_concurrent_extractions, [&](size_t i) -> Status {
            KILN_ASSIGN(directories[i], session.layer_directories->directory_for(*layers[i], ownership_failure_policy()));
            return {};
        }));
        // Hardlinks into earlier layers need those layers in place: completed bottom to top.
        for (size_t i = 0; i < layers.size(); ++i)
            KILN_TRY(session.layer_directories->link_lower_layers(
                *layers[i], std::vector<std::string>(directories.rend() - static_cast<std::ptrdiff_t>(i), directories.rend())));
        lowers.assign(directories.rbegin(), directories.rend());
    }
    if (lowers.empty()) {
        // FROM scratch: overlay needs a lower, so an empty one.
        std::string empty = stage_dir + "/empty-lower";
        KILN_TRY(make_directories(empty, 0755));
        lowers.push_back(empty);
    }
    KILN_ASSIGN(std::unique_ptr<StageOverlay> overlay,
                StageOverlay::mount(stage_dir, std::move(lowers), rootfs_path));
    return std::shared_ptr<StageOverlay>(std::move(overlay));
}

}  // namespace

Result<StageResult> build_stage(BuildSession& session, const PlannedStage& planned) {
    const dockerfile::Stage& stage = session.dockerfile.stages.at(planned.index);
    std::string label = stage_label(stage);
    size_t step_count = stage.instructions.size() + 1;
    log_info("[", label, " 1/", step_count, "] ", stage.from.original);
    std::string where = str_cat(stage.from.location.file, ":", stage.from.location.start_line, ": ", stage.from.original);

    std::string rootfs_path = str_cat(session.work_dir, "/stages/", planned.index, "/rootfs");
    KILN_TRY(make_directories(parent_path(rootfs_path), 0700));
    Image base = Image::empty(session.platform);
    bool materialized = false;
    std::vector<std::string> parent_layer_directories;
    if (planned.base_stage) {
        StageResult& parent = session.completed.at(*planned.base_stage);
        base = parent.image;
        const PlannedStage* parent_plan = session.plan.find(*planned.base_stage);
        if (parent.overlay) {
            // The parent's layer directories are stacked again, read-only; its mount stays for COPY --from.
            parent_layer_directories = parent.overlay->layer_directories();
            materialized = true;
        } else if (parent_plan && parent_plan->readers == 1 && !parent.rootfs_path.empty()) {
            // A stage read by nobody else hands its filesystem over instead of having it extracted again.
            if (::rename(parent.rootfs_path.c_str(), rootfs_path.c_str()) != 0)
                return fail_errno(str_cat("rename ", parent.rootfs_path, " to ", rootfs_path));
            parent.rootfs_path.clear();
            materialized = true;
        }
    } else {
        Platform platform = session.platform;
        if (!stage.from.platform.empty()) {
            dockerfile::ShellExpander expander(session.dockerfile.escape);
            KILN_ASSIGN(std::string text, with_context(expander.process_word(stage.from.platform, session.meta_args.lookup()), where));
            KILN_ASSIGN(platform, with_context(Platform::parse(text), where));
        }
        KILN_ASSIGN(base, with_context(load_base_image(session, planned.base, platform), where));
    }
    std::shared_ptr<StageOverlay> overlay;
    if (session.snapshotter.overlay) {
        KILN_ASSIGN(overlay, with_context(mount_stage_overlay(session, base, std::move(parent_layer_directories),
                                                              parent_path(rootfs_path), rootfs_path),
                                          where));
    } else if (!materialized) {
        if (::mkdir(rootfs_path.c_str(), 0755) != 0) return fail_errno(str_cat("mkdir ", rootfs_path));
        KILN_ASSIGN(RootFs fresh, RootFs::open(rootfs_path));
        KILN_TRY_CONTEXT(materialize_rootfs(base, fresh, ownership_failure_policy()), where);
    }
    KILN_ASSIGN(RootFs rootfs, RootFs::open(rootfs_path));

    KILN_ASSIGN(auto triggers, with_context(onbuild_triggers(base, planned.base, session.dockerfile), where));
    RunConfig run_config = base.config().config;
    run_config.on_build.clear();  // triggers run once, in the first build that uses the image
    // Like BuildKit, every stage's image carries a PATH, so that what RUN saw is what containers get.
    if (!run_config.env_value("PATH")) run_config.set_env("PATH", k_default_path);
    base = base.with_run_config(std::move(run_config));

    StageState state{.session = session,
                     .stage = stage,
                     .planned = planned,
                     .image = std::move(base),
                     .rootfs_path = rootfs_path,
                     .rootfs = std::move(rootfs),
                     .args = {},
                     .expander = dockerfile::ShellExpander(session.dockerfile.escape),
                     .label = label,
                     .step = 1,
                     .step_count = step_count};
    state.overlay = overlay;

    state.args.set_proxy_environment(session.build_args.proxy_environment());
    if (session.options.single_snapshot && !overlay) {
        KILN_ASSIGN(state.stage_start,
                    with_context(scan_snapshot(state.rootfs, single_snapshot_options(state)),
                                 "snapshot of the stage's base"));
    }
    for (const dockerfile::Instruction& trigger : triggers) {
        log_info("[", label, " ONBUILD] ", dockerfile::instruction_base(trigger).original);
        KILN_TRY(dispatch(state, trigger));
    }
    for (const dockerfile::Instruction& instruction : stage.instructions) {
        ++state.step;
        log_info("[", label, " ", state.step, "/", step_count, "] ", dockerfile::instruction_base(instruction).original);
        auto start = std::chrono::steady_clock::now();
        KILN_TRY(dispatch(state, instruction));
        double seconds = seconds_since(start);
        if (seconds >= 0.05) {
            char text[32];
            std::snprintf(text, sizeof text, "%.2f", seconds);
            log_info("  done in ", text, " s");
        }
    }
    if (state.stage_start) {
        ScanOptions options = single_snapshot_options(state);
        options.previous = &*state.stage_start;
        KILN_ASSIGN(Snapshot end, with_context(scan_snapshot(state.rootfs, options), "snapshot of the stage"));
        std::vector<Change> changes = diff_snapshots(*state.stage_start, end);
        if (!changes.empty())
            KILN_TRY(state.write_layer_now(layer_entries_from_changes(changes), "single snapshot of stage " + label));
    }
    if (overlay && session.options.single_snapshot) {
        // The stage's one upper directory holds everything it changed.
        KILN_ASSIGN(UpperChanges changes, overlay->changes(state.ignored_paths()));
        KILN_ASSIGN(RootFs upper, overlay->upper());
        if (!changes.entries.empty())
            KILN_TRY(state.write_layer_from(upper, changes.entries, "single snapshot of stage " + label));
    }
    return StageResult{.index = planned.index,
                       .name = stage.name,
                       .image = std::move(state.image),
                       .rootfs_path = rootfs_path,
                       .overlay = std::move(overlay)};
}

}  // namespace kiln
