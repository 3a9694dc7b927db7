#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_volume(StageState& state, const dockerfile::VolumeInstruction& instruction) {
    RunConfig config = state.image.config().config;
    for (const std::string& raw : instruction.paths) {
        KILN_ASSIGN(std::string path, state.expand(raw, instruction));
        if (path.empty()) return std::unexpected(instruction_error(state, instruction, "VOLUME path is empty"));
        config.volumes.insert(path);
    }
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
