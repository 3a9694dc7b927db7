#pragma once
// A whole build: parse → plan → stages (resolve base, materialize, execute) → assemble → output.

#include "builder/host.hpp"
#include "builder/options.hpp"
#include "common/error.hpp"
#include "images/digest.hpp"

namespace kiln {

struct BuildResult {
    Digest manifest_digest;
};

// Runs the build `options` describe, on a host whose environment the CLI read into `environment`. Every phase
// is timed in the log. Failures name the file and line, or the registry and digest, and carry the exit code
// kiln should end with.
Result<BuildResult> run_build(const BuildOptions& options, const HostEnvironment& environment);

}  // namespace kiln
