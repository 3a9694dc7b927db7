#include "builder/commands/commands.hpp"

namespace kiln {

// ADD is COPY plus downloads of http(s) URLs and unpacking of local archives (see copy.cpp). Git sources are
// refused there: kiln does not clone repositories.
Status execute_add(StageState& state, const dockerfile::AddInstruction& instruction) {
    return copy_into_stage(state, instruction,
                           CopyRequest{.sources = instruction.sources,
                                       .inline_sources = instruction.inline_sources,
                                       .destination = instruction.destination,
                                       .chown = instruction.chown,
                                       .chmod = instruction.chmod,
                                       .excludes = instruction.excludes,
                                       .checksum = instruction.checksum,
                                       .command = CopyCommand::add});
}

}  // namespace kiln
