#include "builder/commands/commands.hpp"

namespace kiln {

// The user is only recorded here; RUN resolves it against the image's /etc/passwd when it needs the ids, as
// Docker does (a later RUN may create the user).
Status execute_user(StageState& state, const dockerfile::UserInstruction& instruction) {
    KILN_ASSIGN(std::string user, state.expand(instruction.user, instruction));
    if (user.empty()) return std::unexpected(instruction_error(state, instruction, "USER needs a user name or id"));
    RunConfig config = state.image.config().config;
    config.user = user;
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
