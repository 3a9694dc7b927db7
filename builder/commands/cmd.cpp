#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_cmd(StageState& state, const dockerfile::CmdInstruction& instruction) {
    RunConfig config = state.image.config().config;
    config.cmd = instruction.shell_form && !instruction.args.empty() ? shell_command(config, instruction.args[0])
                                                                     : instruction.args;
    state.cmd_set = true;
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
