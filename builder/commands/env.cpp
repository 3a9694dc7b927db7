#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_env(StageState& state, const dockerfile::EnvInstruction& instruction) {
    RunConfig config = state.image.config().config;
    // Every pair expands against the environment from before this instruction, as Docker does.
    for (const auto& pair : instruction.pairs) {
        KILN_ASSIGN(std::string key, state.expand(pair.key, instruction));
        KILN_ASSIGN(std::string value, state.expand(pair.value, instruction));
        if (key.empty() || key.find('=') != std::string::npos)
            return std::unexpected(instruction_error(state, instruction, "invalid environment variable name \"" + key + "\""));
        config.set_env(key, value);
    }
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
