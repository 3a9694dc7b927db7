#include "builder/plan/stage_names.hpp"

#include "common/strings.hpp"

namespace kiln {

StageNames::StageNames(const dockerfile::Dockerfile& dockerfile) {
    for (const dockerfile::Stage& stage : dockerfile.stages) {
        if (stage.name.empty()) continue;
        m_by_name.emplace(stage.name, stage.index);
        m_names.push_back(stage.name);
    }
}

std::optional<size_t> StageNames::find(std::string_view name, size_t before, bool allow_number) const {
    auto named = m_by_name.find(to_lower(name));
    if (named != m_by_name.end() && named->second < before) return named->second;
    std::uint64_t number = 0;
    if (allow_number && parse_uint64(name, number) && number < before) return static_cast<size_t>(number);
    return std::nullopt;
}

}  // namespace kiln
