#include "builder/plan/plan.hpp"

#include <algorithm>
#include <set>

#include "builder/plan/stage_names.hpp"
#include "builder/plan/stage_scope.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// The base image's ONBUILD triggers, parsed as instructions of this Dockerfile.
Result<std::vector<dockerfile::Instruction>> onbuild_triggers(const RunConfig& base, const std::string& base_name,
                                                              char escape) {
    std::vector<dockerfile::Instruction> triggers;
    for (const std::string& trigger : base.on_build) {
        std::string text = str_cat("# escape=", escape, "\nFROM scratch\n", trigger, "\n");
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

void add_read(std::vector<size_t>& reads, const SourceRef& from) {
    if (from.kind == SourceRef::Kind::stage) reads.push_back(from.stage);
}

// Plans stages on demand: a stage is planned after the stage it is built FROM, whose final config it starts
// with, and only when the target needs it.
// A FROM line with its meta ARGs expanded: the base's name, the earlier stage it names if any, the platform.
struct FromLine {
    std::string base;
    std::optional<size_t> base_stage;
    Platform platform;
};

Result<FromLine> expand_from(const dockerfile::Dockerfile& dockerfile, size_t index, const MetaArgs& meta_args,
                             const StageNames& names, const Platform& platform) {
    const dockerfile::FromInstruction& from = dockerfile.stages[index].from;
    SourceLocation location = from.source_location();
    dockerfile::ShellExpander expander(dockerfile.escape);
    FromLine line{.base = {}, .base_stage = std::nullopt, .platform = platform};
    KILN_ASSIGN(line.base, with_location(expander.process_word(from.image, meta_args.lookup()), location));
    if (line.base.empty()) return fail_at(location, "the base image name is empty after expanding build arguments");
    line.base_stage = names.find(line.base, index, /*allow_number=*/false);
    if (!line.base_stage && !from.platform.empty()) {
        KILN_ASSIGN(std::string text, with_location(expander.process_word(from.platform, meta_args.lookup()), location));
        KILN_ASSIGN(line.platform, with_location(Platform::parse(text), location));
    }
    return line;
}

class Planner {
public:
    explicit Planner(const PlanInputs& inputs)
        : m_in(inputs), m_names(inputs.dockerfile), m_stages(inputs.dockerfile.stages.size()),
          m_planned(m_stages.size(), false) {}

    Result<BuildPlan> run() {
        const dockerfile::Dockerfile& dockerfile = m_in.dockerfile;
        if (dockerfile.stages.empty()) return fail(str_cat(dockerfile.file_name, ": no build stages"));
        BuildPlan plan;
        KILN_ASSIGN(plan.target, target_stage());
        std::vector<bool> needed(m_stages.size(), false);
        std::vector<size_t> pending = {plan.target};
        while (!pending.empty()) {
            size_t index = pending.back();
            pending.pop_back();
            if (needed[index]) continue;
            needed[index] = true;
            KILN_TRY(plan_with_bases(index));
            const PlannedStage& stage = m_stages[index];
            if (stage.base_stage) pending.push_back(*stage.base_stage);
            pending.insert(pending.end(), stage.reads.begin(), stage.reads.end());
        }
        // A stage that both starts FROM a stage and reads it counts twice: it cannot take that stage's
        // filesystem over while still reading it.
        for (size_t index = 0; index < m_stages.size(); ++index) {
            if (!needed[index]) continue;
            if (m_stages[index].base_stage) ++m_stages[*m_stages[index].base_stage].readers;
            for (size_t read : m_stages[index].reads) {
                ++m_stages[read].readers;
                ++m_stages[read].step_readers;
            }
        }
        for (size_t index = 0; index < m_stages.size(); ++index)
            if (needed[index]) plan.stages.push_back(std::move(m_stages[index]));
        return plan;
    }

private:
    Result<size_t> target_stage() const {
        const dockerfile::Dockerfile& dockerfile = m_in.dockerfile;
        if (m_in.target.empty()) return dockerfile.stages.size() - 1;
        if (auto found = m_names.find(m_in.target, dockerfile.stages.size(), /*allow_number=*/false)) return *found;
        const std::vector<std::string>& names = m_names.names();
        return fail(str_cat("target stage \"", m_in.target, "\" could not be found in ", dockerfile.file_name,
                            " (stages: ", names.empty() ? "none named" : join(names, ", "), ")"));
    }

    // Plans `index` after every stage down its FROM chain, bottom first, without recursion: chains of
    // thousands of stages are fine.
    Status plan_with_bases(size_t index) {
        std::vector<size_t> chain;
        for (std::optional<size_t> next = index; next && !m_planned[*next];) {
            chain.push_back(*next);
            KILN_TRY(read_from(*next));
            next = m_stages[*next].base_stage;
        }
        for (auto stage = chain.rbegin(); stage != chain.rend(); ++stage) KILN_TRY(plan_stage(*stage));
        return {};
    }

    // The FROM line alone: the base's name (meta ARGs expanded), whether it is a stage, the platform.
    Status read_from(size_t index) {
        const dockerfile::Stage& stage = m_in.dockerfile.stages[index];
        const dockerfile::FromInstruction& from = stage.from;
        PlannedStage& planned = m_stages[index];
        planned.index = index;
        planned.name = stage.name;
        planned.label = stage.name.empty() ? str_cat("stage ", index) : stage.name;
        planned.from = from.source_location();
        KILN_ASSIGN(FromLine line, expand_from(m_in.dockerfile, index, m_in.meta_args, m_names, m_in.platform));
        planned.base = std::move(line.base);
        planned.base_stage = line.base_stage;
        planned.platform = line.platform;
        return {};
    }

    // The stage's base config (resolving its image), then its Steps.
    Status plan_stage(size_t index) {
        PlannedStage& planned = m_stages[index];
        RunConfig base_config;
        if (planned.base_stage) {
            const PlannedStage& parent = m_stages[*planned.base_stage];
            base_config = parent.steps.empty() ? parent.start_config : parent.steps.back().config;
            planned.platform = parent.platform;
        } else if (planned.base != "scratch") {
            KILN_ASSIGN(SourceImage image, with_location(m_in.images.resolve(planned.base, planned.platform), planned.from));
            base_config = image.image.config().config;
            planned.base_image = std::move(image);
        }
        KILN_ASSIGN(auto triggers,
                    with_location(onbuild_triggers(base_config, planned.base, m_in.dockerfile.escape), planned.from));
        planned.start_config = std::move(base_config);
        planned.start_config.on_build.clear();  // triggers run once, in the first build that uses the image
        // Like BuildKit, every stage's image carries a PATH, so that what RUN saw is what containers get.
        if (!planned.start_config.env_value("PATH")) planned.start_config.set_env("PATH", k_default_path);

        StageScope scope(m_in.dockerfile, index, planned.start_config, m_in.build_args, m_in.meta_args, m_names);
        for (const dockerfile::Instruction& trigger : triggers) {
            // The trigger's own location comes first; the FROM that inherited it follows.
            KILN_ASSIGN(Step step, with_context(plan_step(scope, trigger),
                                                str_cat("run by ", format_location(planned.from))));
            planned.steps.push_back(std::move(step));
        }
        size_t number = 1;
        for (const dockerfile::Instruction& instruction : m_in.dockerfile.stages[index].instructions) {
            KILN_ASSIGN(Step step, plan_step(scope, instruction));
            step.number = ++number;
            planned.steps.push_back(std::move(step));
        }
        for (const Step& step : planned.steps) {
            if (const auto* copy = std::get_if<CopyStep>(&step.action)) add_read(planned.reads, copy->from);
            if (const auto* run = std::get_if<RunStep>(&step.action))
                for (const PlannedMount& mount : run->mounts) add_read(planned.reads, mount.from);
        }
        std::sort(planned.reads.begin(), planned.reads.end());
        planned.reads.erase(std::unique(planned.reads.begin(), planned.reads.end()), planned.reads.end());
        m_planned[index] = true;
        return {};
    }

    const PlanInputs& m_in;
    StageNames m_names;
    std::vector<PlannedStage> m_stages;  // by Dockerfile index; filled for the stages planned
    std::vector<bool> m_planned;
};

}  // namespace

std::vector<size_t> PlannedStage::dependencies() const {
    std::vector<size_t> dependencies = reads;
    if (base_stage && !std::binary_search(reads.begin(), reads.end(), *base_stage))
        dependencies.push_back(*base_stage);
    return dependencies;
}

const PlannedStage* BuildPlan::find(size_t index) const {
    auto found = std::lower_bound(stages.begin(), stages.end(), index,
                                  [](const PlannedStage& stage, size_t wanted) { return stage.index < wanted; });
    return found != stages.end() && found->index == index ? &*found : nullptr;
}

bool BuildPlan::has_parallel_stages() const {
    // In Dockerfile order, a stage can only wait for earlier ones: the stages form one chain, and never run at
    // once, exactly when each depends directly on the one before it.
    for (size_t i = 1; i < stages.size(); ++i) {
        std::vector<size_t> dependencies = stages[i].dependencies();
        if (std::find(dependencies.begin(), dependencies.end(), stages[i - 1].index) == dependencies.end())
            return true;
    }
    return false;
}

bool BuildPlan::in_target_image(size_t index) const {
    for (const PlannedStage* stage = find(target); stage;
         stage = stage->base_stage ? find(*stage->base_stage) : nullptr) {
        if (stage->index == index) return true;
    }
    return false;
}

bool BuildPlan::runs_commands() const {
    for (const PlannedStage& stage : stages)
        for (const Step& step : stage.steps)
            if (std::holds_alternative<RunStep>(step.action)) return true;
    return false;
}

Result<BuildPlan> plan_build(const PlanInputs& inputs) { return Planner(inputs).run(); }

Result<std::vector<std::pair<std::string, Platform>>> base_images(const dockerfile::Dockerfile& dockerfile,
                                                                 const MetaArgs& meta_args, const Platform& platform) {
    StageNames names(dockerfile);
    std::vector<std::pair<std::string, Platform>> images;
    for (size_t index = 0; index < dockerfile.stages.size(); ++index) {
        KILN_ASSIGN(FromLine line, expand_from(dockerfile, index, meta_args, names, platform));
        if (line.base_stage || line.base == "scratch") continue;
        std::pair<std::string, Platform> image{line.base, line.platform};
        if (std::find(images.begin(), images.end(), image) == images.end()) images.push_back(std::move(image));
    }
    return images;
}

}  // namespace kiln
