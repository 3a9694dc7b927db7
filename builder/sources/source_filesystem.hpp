#pragma once
// The filesystem that a `from` names (COPY --from, RUN --mount=…,from=): an earlier stage's rootfs, or an
// image (a --build-context or a registry reference) extracted once into the build's work directory and shared
// by every instruction that names it.

#include <string>

#include "builder/session.hpp"
#include "dockerfile-parser/instructions.hpp"

namespace kiln {

// The directory holding the filesystem `from` (already expanded) names. An earlier stage must have been
// built and kept; errors name the instruction at `at`.
Result<std::string> source_filesystem(StageState& state, const dockerfile::InstructionBase& at,
                                      const std::string& from);

}  // namespace kiln
