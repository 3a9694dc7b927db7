#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_maintainer(StageState& state, const dockerfile::MaintainerInstruction& instruction) {
    ImageConfig config = state.image.config();
    config.author = instruction.name;
    state.image = state.image.with_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
