#pragma once
// The parent's side of a RUN step's own mounts (RunSpec::mounts): targets checked and stubbed in the rootfs,
// bind sources cloned in kiln's process when it clones the rootfs itself, and the plan entries the sandbox
// child attaches (container_mounts.cpp).

#include <functional>
#include <string>
#include <vector>

#include "builder/sandbox/container_init.hpp"
#include "builder/sandbox/mount_stubs.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

class StepMounts {
public:
    // Checks the mounts (absolute targets other than "/", no target twice, at most k_max_run_mounts, bind
    // sources that exist), orders them parents first and creates their targets in `rootfs` as stubs, except
    // under /dev, whose tmpfs the child fills itself. Nothing is mounted yet.
    static Result<StepMounts> prepare(const std::vector<RunMount>& mounts, const RootFs& rootfs,
                                      MountStubs& stubs);

    StepMounts(StepMounts&&) noexcept = default;
    StepMounts& operator=(StepMounts&&) noexcept = default;
    StepMounts(const StepMounts&) = delete;
    StepMounts& operator=(const StepMounts&) = delete;

    // Clones every bind source here, with its attributes set (and idmapped through `userns_fd` unless it is
    // -1): for a root kiln in the initial namespace, whose sandbox child may not reach the sources itself.
    // A bind whose source has source_layers is cloned by `layered` (from a read-only overlay of the layers,
    // made to suit `userns_fd`, given the source's path in it) when it has several, or from its one layer
    // directory.
    using LayeredSource =
        std::function<Result<UniqueFd>(const std::vector<std::string>& layers, const std::string& source)>;
    Status clone_sources(int userns_fd, const LayeredSource& layered = {});
    // Closes the clones: after a failed idmap attempt, or once the child holds its own copies.
    void release_clones();

    // The child's entries, valid until this object is moved or destroyed: call right before the clone(2).
    const StepMountPlan* plan();
    size_t size() const { return m_entries.size(); }

private:
    struct Entry {
        RunMount mount;
        std::string relative_target;  // cleaned: "run/secrets/token"
        std::string display;          // "/run/secrets/token"
        bool target_is_directory = true;
        std::vector<std::string> prefixes;  // "run", "run/secrets", "run/secrets/token"
        std::vector<std::string> names;     // "run", "secrets", "token"
        std::string source;                 // cleaned, "." for the root
        std::string size_text;
        std::string scratch_name;
        UniqueFd tree;
        std::vector<const char*> prefix_pointers;
        std::vector<const char*> name_pointers;
    };
    StepMounts() = default;
    static Result<Entry> make_entry(const RunMount& mount, size_t index);

    std::vector<Entry> m_entries;
    std::vector<StepMountPlan> m_plan;
};

}  // namespace kiln
