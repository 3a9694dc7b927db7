#include "builder/commands/commands.hpp"

#include "common/strings.hpp"

namespace kiln {

Result<StepWrites> execute_step(StepContext& context) {
    const StepAction& action = context.step.action;
    if (const auto* run = std::get_if<RunStep>(&action)) return execute_run(context, *run);
    if (const auto* copy = std::get_if<CopyStep>(&action)) return execute_copy(context, *copy);
    if (const auto* workdir = std::get_if<WorkdirStep>(&action)) return execute_workdir(context, *workdir);
    return fail_at(context.step.location, "internal error: a config step has nothing to execute");
}

Result<SourceDirectory> source_directory(const StepContext& context, const SourceRef& from) {
    switch (from.kind) {
        case SourceRef::Kind::context:
            return SourceDirectory{.path = context.build.context.root().path(),
                                   .ignore = context.build.context.ignore(),
                                   .layers = {},
                                   .is_context = true};
        case SourceRef::Kind::stage: {
            auto found = context.reads.find(from.stage);
            if (found == context.reads.end() || !found->second.filesystem)
                return fail(str_cat("internal error: stage ", from.stage, " was not handed to ", context.stage.label));
            const StageFilesystem& stage = *found->second.filesystem;
            if (stage.path().empty())
                return fail(str_cat("stage ", from.stage, " is not available: its filesystem was handed to the stage "
                                    "built FROM it"));
            return SourceDirectory{.path = stage.path(), .ignore = nullptr, .layers = stage.layer_directories(),
                                   .is_context = false};
        }
        case SourceRef::Kind::image: {
            KILN_ASSIGN(std::string path, context.build.image_filesystems.directory_of(from.image, context.build.platform));
            return SourceDirectory{.path = path, .ignore = nullptr, .layers = {}, .is_context = false};
        }
    }
    return fail("internal error: an unknown source");
}

}  // namespace kiln
