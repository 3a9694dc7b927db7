#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_entrypoint(StageState& state, const dockerfile::EntrypointInstruction& instruction) {
    RunConfig config = state.image.config().config;
    config.entrypoint = instruction.shell_form && !instruction.args.empty()
                            ? shell_command(config, instruction.args[0])
                            : instruction.args;
    // A new ENTRYPOINT makes an inherited CMD meaningless; one set in this stage stays (Docker's rule).
    if (!state.cmd_set) config.cmd.reset();
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
