#include "builder/commands/commands.hpp"

namespace kiln {

// Stored in the config; a later build that starts FROM this image runs the trigger first.
Status execute_onbuild(StageState& state, const dockerfile::OnbuildInstruction& instruction) {
    RunConfig config = state.image.config().config;
    config.on_build.push_back(instruction.trigger);
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
