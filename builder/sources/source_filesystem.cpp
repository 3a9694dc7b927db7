#include "builder/sources/source_filesystem.hpp"

#include "builder/sources/image_source.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln {

Result<std::string> source_filesystem(StageState& state, const dockerfile::InstructionBase& at,
                                      const std::string& from) {
    BuildSession& session = state.session;
    if (auto stage =
            find_stage_reference(session.dockerfile, from, state.stage.index, /*allow_index=*/true)) {
        auto completed = session.completed.find(*stage);
        if (completed == session.completed.end())
            return fail(str_cat(state.where(at), ": stage ", from,
                                " is not available: the build plan did not build it"));
        if (completed->second.rootfs_path.empty())
            return fail(str_cat(state.where(at), ": stage ", from,
                                " is not available: its filesystem was handed to the stage built FROM it"));
        return completed->second.rootfs_path;
    }
    // Held while an image is pulled and extracted, so that two stages naming it share one copy.
    std::lock_guard lock(session.shared_state_mutex);
    if (auto cached = session.copy_source_images.find(from); cached != session.copy_source_images.end())
        return cached->second;
    KILN_ASSIGN(Image image, with_context(load_base_image(session, from, session.platform), state.where(at)));
    std::string dir = str_cat(session.work_dir, "/copy-sources/", session.copy_source_images.size());
    KILN_TRY(make_directories(dir, 0755));
    KILN_ASSIGN(RootFs root, RootFs::open(dir));
    KILN_TRY_CONTEXT(materialize_rootfs(image, root, ownership_failure_policy()),
                     str_cat("extracting ", from));
    session.copy_source_images.emplace(from, dir);
    return dir;
}

}  // namespace kiln
