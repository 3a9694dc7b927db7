#pragma once
// The --sandbox modes (sandbox.hpp picks and runs them).

#include <string_view>

#include "common/error.hpp"

namespace kiln {

// How RUN steps are isolated (--sandbox), strongest first.
enum class SandboxMode {
    automatic,  // the strongest of the three below that works here, probed once
    // New user, mount, pid, ipc and uts namespaces with pivot_root: RUN root is not host root.
    userns,
    // Root with CAP_SYS_ADMIN but no user namespace (an LSM or sysctl forbids them): new mount, pid, ipc and
    // uts namespaces with pivot_root, and Docker's default capabilities. Image ids are the host's ids.
    rootns,
    // Root that may neither mount nor unshare (a default Docker or containerd pod): fork, chroot into the
    // stage's filesystem and drop to the step's user, with /dev nodes made by mknod, the host's /etc/hosts
    // and /etc/resolv.conf copied in for the step, and no /proc. Root can leave a chroot: this mode trusts
    // the Dockerfile, as Kaniko does.
    chroot,
};

// "auto", "userns", "rootns" or "chroot".
Result<SandboxMode> parse_sandbox_mode(std::string_view text);
const char* sandbox_mode_name(SandboxMode mode);

}  // namespace kiln
