#include "builder/commands/commands.hpp"

#include <fcntl.h>

namespace kiln {

// As Docker's builder, Kaniko and buildah do, a volume's directory is created (into a layer) when the image
// lacks it; later RUN steps then discard what they write under it (see run.cpp).
Status execute_volume(StageState& state, const dockerfile::VolumeInstruction& instruction) {
    RunConfig config = state.image.config().config;
    std::vector<LayerEntry> created;
    for (const std::string& raw : instruction.paths) {
        KILN_ASSIGN(std::string path, state.expand(raw, instruction));
        if (path.empty()) return std::unexpected(instruction_error(state, instruction, "VOLUME path is empty"));
        config.volumes.insert(path);
        std::string absolute = "/" + clean_path(path);
        if (absolute == "/" || state.rootfs.open(absolute, O_PATH | O_DIRECTORY)) continue;
        KILN_TRY_CONTEXT(state.rootfs.make_directories(absolute, 0755, 0, 0), state.where(instruction));
        created.push_back(LayerEntry{.path = absolute});
    }
    state.image = state.image.with_run_config(std::move(config));
    if (created.empty()) {
        state.add_empty_history(instruction);
        return {};
    }
    return state.commit_layer(created, instruction.original);
}

}  // namespace kiln
