#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_label(StageState& state, const dockerfile::LabelInstruction& instruction) {
    RunConfig config = state.image.config().config;
    for (const auto& pair : instruction.pairs) {
        KILN_ASSIGN(std::string key, state.expand(pair.key, instruction));
        KILN_ASSIGN(std::string value, state.expand(pair.value, instruction));
        if (key.empty()) return std::unexpected(instruction_error(state, instruction, "empty label name"));
        config.labels[key] = value;
    }
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
