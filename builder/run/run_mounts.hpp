#pragma once
// RUN --mount, from the Dockerfile's words to the sandbox's mounts, with BuildKit's meaning:
//  - bind: the build context (default) or `from` (a stage or an image), at `source`, read-only unless rw;
//    writes to an rw bind go to a throwaway copy and are gone after the step, and a context with ignore
//    rules is bound as a filtered copy, so that the step sees what BuildKit would send it;
//  - cache: a directory under --cache-dir kept across builds (cache_mounts.hpp);
//  - tmpfs: a fresh tmpfs;
//  - secret: a --secret's value as a read-only file in the sandbox's memory, and/or an environment variable;
//  - ssh: refused, not supported yet.

#include <string>
#include <vector>

#include "builder/run/cache_mounts.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "builder/session.hpp"
#include "common/temp_dir.hpp"
#include "dockerfile-parser/instructions.hpp"

namespace kiln {

// What a RUN step's --mount flags need while it runs; the locks and copies behind them are released when
// this is destroyed, after the step.
class RunMountSet {
public:
    RunMountSet() = default;
    RunMountSet(RunMountSet&&) noexcept = default;
    RunMountSet& operator=(RunMountSet&&) noexcept = default;

    std::vector<RunMount> mounts;
    // "NAME=value" of secrets exposed as variables: they replace the same names in the step's environment.
    std::vector<std::string> environment;

private:
    friend Result<RunMountSet> prepare_run_mounts(StageState&, const dockerfile::RunInstruction&);
    std::vector<CacheMountLease> m_caches;
    std::vector<TempDir> m_copies;
};

// Parses and resolves every --mount of `run` (values expanded with the stage's ARG/ENV, relative targets
// against WORKDIR). Errors name the Dockerfile line and the --mount value, never a secret's value.
Result<RunMountSet> prepare_run_mounts(StageState& state, const dockerfile::RunInstruction& run);

}  // namespace kiln
