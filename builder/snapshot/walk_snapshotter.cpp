// The snapshot policy of a stage: what RUN steps walk and what every layer leaves out.

#include "builder/session.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

std::vector<std::string> StageState::ignored_paths() const {
    std::vector<std::string> paths;
    for (const std::string& path : session.options.ignore_paths) paths.push_back("/" + clean_path(path));
    if (session.options.ignore_var_run) paths.emplace_back("/var/run");
    return paths;
}

ScanOptions StageState::run_scan_options() const {
    ScanOptions options;
    options.mode = session.options.snapshot_mode;
    options.excluded = ignored_paths();
    // What a step writes under a declared volume is not kept, as in Docker's builder, Kaniko and buildah.
    for (const std::string& volume : image.config().config.volumes)
        if (!clean_path(volume).empty()) options.excluded.push_back(volume);
    return options;
}

Result<Snapshot> StageState::walk_before(const ScanOptions& options) {
    std::optional<Snapshot> kept = std::move(walk_state);
    walk_state.reset();
    // A VOLUME since then changes what is left out, without touching the rootfs.
    if (kept && kept->mode() == options.mode && walk_state_excluded == options.excluded)
        return std::move(*kept);
    return scan_snapshot(rootfs, options);
}

void StageState::keep_walk_state(Snapshot after, const ScanOptions& options) {
    walk_state = std::move(after);
    walk_state_excluded = options.excluded;
}

}  // namespace kiln
