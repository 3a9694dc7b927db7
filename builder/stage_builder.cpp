#include "builder/stage_builder.hpp"

#include <chrono>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

class StageBuild {
public:
    StageBuild(const BuildInputs& build, const PlannedStage& stage, const StageDependencies& dependencies)
        : m_build(build), m_stage(stage), m_dependencies(dependencies) {
        for (const Step& step : stage.steps) m_step_count += step.number > 0 ? 1 : 0;
    }

    Result<StageOutput> run() {
        log_info("[", m_stage.label, " 1/", m_step_count, "] ", m_stage.from.text);
        KILN_TRY(prepare());
        for (const Step& step : m_stage.steps) {
            if (step.number == 0)
                log_info("[", m_stage.label, " ONBUILD] ", step.location.text);
            else
                log_info("[", m_stage.label, " ", step.number, "/", m_step_count, "] ", step.location.text);
            auto start = std::chrono::steady_clock::now();
            if (step.number == 0)
                KILN_TRY_CONTEXT(run_step(step), str_cat("run by ", format_location(m_stage.from)));
            else
                KILN_TRY(run_step(step));
            double seconds = seconds_since(start);
            if (seconds >= 0.05) log_info("  done in ", format_seconds(seconds, 2), " s");
        }
        KILN_ASSIGN(std::optional<LayerPtr> layer, m_filesystem->finish());
        if (layer) m_image = m_image.with_layer(*layer, history("single snapshot of stage " + m_stage.label));
        return StageOutput{.image = std::move(m_image), .filesystem = std::move(m_filesystem)};
    }

private:
    // The stage's filesystem from its base: a finished stage, an image (its layers fetched now), or scratch.
    Status prepare() {
        std::string directory = str_cat(m_build.work_dir, "/stages/", m_stage.index);
        KILN_TRY(make_directories(directory, 0700));
        Image base = Image::empty(m_stage.platform);
        StageFilesystem* parent = nullptr;
        if (m_stage.base_stage) {
            if (!m_dependencies.base) return fail_at(m_stage.from, "internal error: the base stage was not handed over");
            base = m_dependencies.base->image;
            parent = m_dependencies.base->filesystem.get();
        } else if (m_stage.base_image) {
            KILN_TRY(with_location(m_build.images.fetch_layers(*m_stage.base_image), m_stage.from));
            base = m_stage.base_image->image;
        }
        bool shared = !m_stage.base_stage || m_build.plan.find(*m_stage.base_stage)->readers > 1;
        StageStart start{.directory = directory, .base = base, .parent = parent, .parent_has_other_readers = shared};
        KILN_ASSIGN(m_filesystem, with_location(m_build.snapshotter.prepare_stage(start), m_stage.from));
        m_image = base.with_run_config(m_stage.start_config);
        return {};
    }

    Status run_step(const Step& step) {
        if (step.author) {
            ImageConfig config = m_image.config();
            config.author = *step.author;
            m_image = m_image.with_config(std::move(config));
        }
        m_image = m_image.with_run_config(step.config);
        if (!step.changes_files()) {
            m_image = m_image.with_empty_layer_history(history(step.created_by));
            return {};
        }
        StepContext context{.build = m_build,
                            .stage = m_stage,
                            .step = step,
                            .filesystem = *m_filesystem,
                            .reads = m_dependencies.reads,
                            .name = step.number == 0
                                        ? str_cat("an ONBUILD trigger of ", m_stage.label)
                                        : str_cat("step ", step.number, "/", m_step_count, " of ", m_stage.label)};
        KILN_ASSIGN(StepWrites writes, execute_step(context));
        if (!writes.makes_layer) {
            m_image = m_image.with_empty_layer_history(history(step.created_by));
            return {};
        }
        KILN_ASSIGN(std::optional<LayerPtr> layer, with_location(m_filesystem->commit(writes), step.location));
        if (layer)
            m_image = m_image.with_layer(*layer, history(step.created_by));
        else
            m_image = m_image.with_empty_layer_history(history(step.created_by));
        return {};
    }

    History history(std::string created_by) const {
        return History{.created = format_rfc3339(m_build.created_seconds), .created_by = std::move(created_by)};
    }

    const BuildInputs& m_build;
    const PlannedStage& m_stage;
    const StageDependencies& m_dependencies;
    size_t m_step_count = 1;  // FROM is step 1
    std::unique_ptr<StageFilesystem> m_filesystem;
    Image m_image = Image::empty(Platform{});
};

}  // namespace

Result<StageOutput> build_stage(const BuildInputs& build, const PlannedStage& stage,
                                const StageDependencies& dependencies) {
    return StageBuild(build, stage, dependencies).run();
}

}  // namespace kiln
