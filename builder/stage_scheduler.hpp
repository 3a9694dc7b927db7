#pragma once
// Builds the planned stages concurrently where the Dockerfile allows: a stage starts as soon as every stage it
// reads (FROM, COPY --from, RUN --mount from=) is built.

#include <cstddef>

#include "builder/session.hpp"

namespace kiln {

// Builds every stage of session.plan into session.completed, at most `max_parallel` at once. A stage whose
// dependency failed is not started. The error returned is the lowest-numbered failing stage's, so that the
// same Dockerfile always reports the same failure.
Status build_stages(BuildSession& session, size_t max_parallel);

}  // namespace kiln
