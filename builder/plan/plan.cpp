#include "builder/plan/plan.hpp"

#include <algorithm>
#include <set>

#include "builder/run/run_mount_spec.hpp"
#include "common/strings.hpp"

namespace kiln {

const PlannedStage* BuildPlan::find(size_t index) const {
    for (const PlannedStage& stage : stages)
        if (stage.index == index) return &stage;
    return nullptr;
}

std::optional<size_t> find_stage_reference(const dockerfile::Dockerfile& dockerfile, std::string_view name,
                                           size_t before, bool allow_index) {
    std::string lower = to_lower(name);
    for (size_t i = 0; i < before && i < dockerfile.stages.size(); ++i)
        if (!dockerfile.stages[i].name.empty() && dockerfile.stages[i].name == lower) return i;
    std::uint64_t number = 0;
    if (allow_index && parse_uint64(name, number) && number < before) return static_cast<size_t>(number);
    return std::nullopt;
}

Result<BuildPlan> plan_build(const dockerfile::Dockerfile& dockerfile, const MetaArgs& meta,
                             const std::string& target) {
    BuildPlan plan;
    if (dockerfile.stages.empty()) return fail(str_cat(dockerfile.file_name, ": no build stages"));
    plan.target = dockerfile.stages.size() - 1;
    if (!target.empty()) {
        auto found = find_stage_reference(dockerfile, target, dockerfile.stages.size(), /*allow_index=*/false);
        if (!found) {
            std::vector<std::string> names;
            for (const auto& stage : dockerfile.stages)
                if (!stage.name.empty()) names.push_back(stage.name);
            return fail(str_cat("target stage \"", target, "\" could not be found in ", dockerfile.file_name,
                                " (stages: ", names.empty() ? "none named" : join(names, ", "), ")"));
        }
        plan.target = *found;
    }

    dockerfile::ShellExpander expander(dockerfile.escape);
    std::vector<PlannedStage> all(dockerfile.stages.size());
    for (size_t i = 0; i < dockerfile.stages.size(); ++i) {
        const dockerfile::Stage& stage = dockerfile.stages[i];
        PlannedStage& planned = all[i];
        planned.index = i;
        const auto& from = stage.from;
        KILN_ASSIGN(planned.base,
                    with_context(expander.process_word(from.image, meta.lookup()),
                                 str_cat(from.location.file, ":", from.location.start_line, ": ", from.original)));
        if (planned.base.empty())
            return fail(str_cat(from.location.file, ":", from.location.start_line, ": ", from.original,
                                ": the base image name is empty after expanding build arguments"));
        planned.base_stage = find_stage_reference(dockerfile, planned.base, i, /*allow_index=*/false);
        for (const dockerfile::Instruction& instruction : stage.instructions) {
            // RUN --mount=from=<stage> reads that stage as COPY --from does.
            if (const auto* run = std::get_if<dockerfile::RunInstruction>(&instruction)) {
                for (const std::string& mount_from : run_mount_sources(*run))
                    if (auto referenced = find_stage_reference(dockerfile, mount_from, i, /*allow_index=*/true))
                        planned.copy_sources.push_back(*referenced);
                continue;
            }
            const auto* copy = std::get_if<dockerfile::CopyInstruction>(&instruction);
            if (!copy || copy->from.empty()) continue;
            // --from may use build arguments; stage-level ARGs are resolved at dispatch, meta ARGs here.
            auto expanded = expander.process_word(copy->from, meta.lookup());
            std::string source = expanded ? *expanded : copy->from;
            if (auto referenced = find_stage_reference(dockerfile, source, i, /*allow_index=*/true)) {
                planned.copy_sources.push_back(*referenced);
                continue;
            }
            // A number is a stage index, never an image name (as in buildkit).
            std::uint64_t index = 0;
            if (parse_uint64(source, index))
                return fail(str_cat(copy->location.file, ":", copy->location.start_line, ": ", copy->original,
                                    ": --from=", source, " names no stage before this one (stages are numbered from 0)"));
        }
    }

    std::set<size_t> needed;
    std::vector<size_t> pending = {plan.target};
    while (!pending.empty()) {
        size_t index = pending.back();
        pending.pop_back();
        if (!needed.insert(index).second) continue;
        if (all[index].base_stage) pending.push_back(*all[index].base_stage);
        for (size_t source : all[index].copy_sources) pending.push_back(source);
    }
    for (size_t index : needed) {
        if (all[index].base_stage) ++all[*all[index].base_stage].readers;
        std::set<size_t> distinct(all[index].copy_sources.begin(), all[index].copy_sources.end());
        for (size_t source : distinct) ++all[source].readers;
    }
    for (size_t index : needed) plan.stages.push_back(all[index]);
    return plan;
}

}  // namespace kiln
