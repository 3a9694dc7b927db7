#pragma once
// RUN --mount, from a planned step's mounts to the sandbox's, with BuildKit's meaning:
//  - bind: the build context (default) or `from` (a stage or an image), at `source`, read-only unless rw;
//    writes to an rw bind go to a throwaway copy and are gone after the step, and a context with ignore
//    rules is bound as a filtered copy, so that the step sees what BuildKit would send it;
//  - cache: a directory under the cache directory kept across builds (cache_mounts.hpp);
//  - tmpfs: a fresh tmpfs;
//  - secret: a --secret's value as a read-only file in the sandbox's memory, and/or an environment variable;
//  - ssh: refused when the step is planned.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/options.hpp"
#include "builder/run/run_mount_spec.hpp"
#include "builder/run/cache_mounts.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "builder/sources/source_directory.hpp"
#include "common/temp_dir.hpp"

namespace kiln {

// What resolving a step's mounts needs from the build.
struct RunMountInputs {
    // The directory a mount's `from` names (the context when it names nothing).
    std::function<Result<SourceDirectory>(const SourceRef&)> source_directory;
    std::string work_dir;    // throwaway copies go below it
    std::string cache_root;  // cache mounts live below it
    const std::vector<SecretSource>* secrets = nullptr;  // --secret, in flag order
    // An environment variable of kiln's, for secrets read from the environment.
    std::function<std::optional<std::string>(std::string_view)> environment;
    SourceLocation at;  // the RUN, for errors
};

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
    friend class MountResolver;
    std::vector<CacheMountLease> m_caches;
    std::vector<TempDir> m_copies;
};

// Resolves the step's mounts. Errors name the Dockerfile line and the --mount value, never a secret's value.
Result<RunMountSet> prepare_run_mounts(const RunMountInputs& inputs, const std::vector<PlannedMount>& mounts);

}  // namespace kiln
