#pragma once
// Builds one stage: resolve its base, materialize its rootfs, run its instructions in order.

#include "builder/session.hpp"

namespace kiln {

// Builds `planned` with the stages it depends on already in session.completed.
Result<StageResult> build_stage(BuildSession& session, const PlannedStage& planned);

}  // namespace kiln
