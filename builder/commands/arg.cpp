#include "builder/commands/commands.hpp"

namespace kiln {

Status execute_arg(StageState& state, const dockerfile::ArgInstruction& instruction) {
    for (const auto& arg : instruction.args) {
        // BuildKit expands the name as well as the default: `ARG ${src}=a` declares the ARG that ENV src names.
        KILN_ASSIGN(std::string name, state.expand(arg.name, instruction));
        if (name.empty()) return std::unexpected(instruction_error(state, instruction, "ARG name is empty after expansion"));
        std::optional<std::string> expanded;
        if (arg.default_value) {
            KILN_ASSIGN(expanded, state.expand(*arg.default_value, instruction));
        }
        state.args.declare(name, std::move(expanded), state.session.build_args, state.session.meta_args);
    }
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
