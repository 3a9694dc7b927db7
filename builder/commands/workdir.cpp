#include <fcntl.h>

#include "builder/commands/commands.hpp"
#include "builder/run/user_db.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// A directory WORKDIR creates belongs to the current USER, as BuildKit makes it, and needs a layer; an existing
// one needs nothing.
Result<StepWrites> execute_workdir(StepContext& context, const WorkdirStep& workdir) {
    const RootFs& rootfs = context.filesystem.root();
    if (rootfs.open(workdir.path, O_PATH | O_DIRECTORY)) return StepWrites::nothing();
    const SourceLocation& at = context.step.location;
    KILN_ASSIGN(ResolvedUser owner, with_location(resolve_user(rootfs, workdir.user.empty() ? "0" : workdir.user), at));
    KILN_TRY(with_location(rootfs.make_directories(workdir.path, 0755, owner.uid, owner.gid), at));
    return StepWrites{.paths = {clean_path(workdir.path)}};
}

}  // namespace kiln
