#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_arg(StageState& state, const dockerfile::ArgInstruction& instruction) {
    for (const auto& arg : instruction.args) {
        std::optional<std::string> expanded;
        if (arg.default_value) {
            KILN_ASSIGN(expanded, state.expand(*arg.default_value, instruction));
        }
        state.args.declare(arg.name, std::move(expanded), state.session.build_args, state.session.meta_args);
    }
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
