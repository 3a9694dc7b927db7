#include "builder/commands/commands.hpp"

#include <fcntl.h>

#include "builder/run/user_db.hpp"

namespace kiln {

Status execute_workdir(StageState& state, const dockerfile::WorkdirInstruction& instruction) {
    KILN_ASSIGN(std::string path, state.expand(instruction.path, instruction));
    if (path.empty()) return std::unexpected(instruction_error(state, instruction, "WORKDIR needs a path"));
    RunConfig config = state.image.config().config;
    std::string current = config.working_dir.empty() ? "/" : config.working_dir;
    std::string absolute = "/" + clean_path(path.front() == '/' ? path : current + "/" + path);
    config.working_dir = absolute;
    std::string user = config.user.empty() ? "0" : config.user;
    state.image = state.image.with_run_config(std::move(config));

    if (state.rootfs.open(absolute, O_PATH | O_DIRECTORY)) {
        state.add_empty_history(instruction);
        return {};
    }
    // A directory WORKDIR creates belongs to the current USER, as BuildKit makes it, and needs a layer.
    KILN_ASSIGN(ResolvedUser owner, with_context(resolve_user(state.rootfs, user), state.where(instruction)));
    KILN_TRY_CONTEXT(state.rootfs.make_directories(absolute, 0755, owner.uid, owner.gid), state.where(instruction));
    return state.commit_layer({LayerEntry{.path = absolute}}, "WORKDIR " + absolute);
}

}  // namespace kiln
