#pragma once
// Drives the kiln binary and the tools that check what it produced (skopeo, umoci), for the integration tests.

#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/process.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/registry_process.hpp"

namespace kiln::test {

// The kiln executable this build made.
std::string kiln_binary();
// A path inside the source tree ("tests/integration/data/two-stage").
std::string source_path(const std::string& relative);

struct KilnRun {
    int exit_code = -1;
    std::string output;  // stdout and stderr
};

// Runs kiln with `args`; `prefix` (e.g. setpriv …) runs before it, `environment` replaces the environment.
KilnRun run_kiln(const std::vector<std::string>& args, const std::vector<std::string>& prefix = {},
                 const std::vector<std::string>& environment = {});

// The first thing a test needs that this machine lacks (skopeo, umoci, busybox, the registry), or nullopt.
std::optional<std::string> missing_tools();

// Copies `reference` from a plain-HTTP registry into the OCI layout `layout` under `tag`.
Status pull_to_layout(const std::string& reference, const std::string& layout, const std::string& tag);
// Unpacks `layout:tag` into `bundle` with umoci; the files are in bundle/rootfs.
Status unpack_layout(const std::string& layout, const std::string& tag, const std::string& bundle);
// `skopeo inspect docker://reference`, or with `config` the image config as pushed, as JSON.
Result<nlohmann::json> inspect_remote(const std::string& reference, bool config = false);

// lstat, or nullopt when the path does not exist.
std::optional<struct stat> lstat_path(const std::string& path);

// A busybox image made by kiln and pushed to `registry` as base/busybox:1; returns its reference.
Result<std::string> push_busybox_base(const RegistryProcess& registry, const std::string& work_dir);

// The number of mounts this process sees (mount leaks from a build show up here).
size_t mount_count();

// The names in `dir` that start with "kiln-": work directories, live or being deleted in the background.
std::vector<std::string> kiln_entries(const std::string& dir);
// Waits up to `limit` for `dir` to hold no kiln- entry (kiln deletes its work directory after it exits); returns
// what is left.
std::vector<std::string> wait_for_no_kiln_entries(const std::string& dir, std::chrono::seconds limit);

}  // namespace kiln::test
