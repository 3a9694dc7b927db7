#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_shell(StageState& state, const dockerfile::ShellInstruction& instruction) {
    if (instruction.shell_form || instruction.args.empty())
        return std::unexpected(instruction_error(state, instruction, "SHELL needs a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]"));
    RunConfig config = state.image.config().config;
    config.shell = instruction.args;
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
