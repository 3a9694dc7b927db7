// Picking the sandbox mode (sandbox.hpp, SandboxMode): each mode's probe does, once, the operations that mode
// needs, in a child process, so that a build learns before its first pull whether its RUN steps can run.

#include <sched.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "builder/sandbox/cloned_process.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

constexpr int k_rootns_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;

// Children of the probes: they return 0, or the errno of the first operation that failed.
int probe_private_mounts(void* directory) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
    // What the sandbox mounts with: a clone of a tree (the rootfs, the RUN's bind sources).
    int tree = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, static_cast<const char*>(directory),
                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (tree < 0) return errno;
    ::close(tree);
    return 0;
}

int probe_chroot(void* directory) {
    if (::chroot(static_cast<const char*>(directory)) != 0) return errno;
    return 0;
}

// Runs `entry` in a child cloned with `flags`; `what` names the operations for the error.
Status run_probe(int flags, ClonedProcess::Entry entry, void* argument, const std::string& what) {
    auto child = ClonedProcess::spawn(flags, entry, argument);
    if (!child) return fail(std::move(child).error().context(what));
    KILN_ASSIGN(int status, child->wait());
    if (!WIFEXITED(status)) return fail(str_cat(what, ": the probe ended with status ", status));
    if (int err = WEXITSTATUS(status); err != 0) return fail(Error::from_errno(what, err));
    return {};
}

Status require_root(const char* mode) {
    if (::geteuid() == 0) return {};
    return fail(str_cat("kiln runs as uid ", ::geteuid(), ", and the ", mode, " sandbox needs root"));
}

std::string probe_directory(const SandboxOptions& options) {
    return options.probe_directory.empty() ? default_temp_parent() : options.probe_directory;
}

// What would let RUN steps run where no mode works: the error's last sentence.
constexpr const char* k_settings_that_work =
    "RUN steps need one of: user namespaces (seccompProfile Unconfined, or a Localhost profile that allows "
    "unshare, mount and pivot_root as CRI-O's default does; no AppArmor profile that denies mount; "
    "user.max_user_namespaces above 0; for a non-root user, subordinate ids in /etc/subuid and /etc/subgid "
    "and allowPrivilegeEscalation left true, else a single id), root with CAP_SYS_ADMIN, or root with "
    "CAP_SYS_CHROOT (the default capabilities of a Docker or containerd pod). A Dockerfile without RUN "
    "builds anywhere";

}  // namespace

Result<SandboxMode> parse_sandbox_mode(std::string_view text) {
    for (SandboxMode mode : {SandboxMode::automatic, SandboxMode::userns, SandboxMode::rootns, SandboxMode::chroot})
        if (text == sandbox_mode_name(mode)) return mode;
    return fail(str_cat("--sandbox: expected auto, userns, rootns or chroot, got \"", text, "\""));
}

const char* sandbox_mode_name(SandboxMode mode) {
    switch (mode) {
        case SandboxMode::automatic:
            return "auto";
        case SandboxMode::userns:
            return "userns";
        case SandboxMode::rootns:
            return "rootns";
        case SandboxMode::chroot:
            return "chroot";
    }
    return "?";
}

Result<Sandbox> Sandbox::detect_rootns(const SandboxOptions& options) {
    KILN_TRY(require_root("rootns"));
    std::string directory = probe_directory(options);
    KILN_TRY(run_probe(k_rootns_flags, probe_private_mounts, directory.data(),
                       str_cat("clone(CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWIPC|CLONE_NEWUTS), mount --make-rprivate / "
                               "and open_tree(OPEN_TREE_CLONE) ", directory,
                               " (these need CAP_SYS_ADMIN and a seccomp profile that allows them)")));
    Sandbox sandbox;
    sandbox.m_mode = SandboxMode::rootns;
    sandbox.m_description =
        "rootns sandbox: RUN steps run with the host's ids in new mount, pid, ipc and uts namespaces, with "
        "Docker's default capabilities (no user namespace: RUN root is kiln's root)";
    return sandbox;
}

Result<Sandbox> Sandbox::detect_chroot(const SandboxOptions& options) {
    KILN_TRY(require_root("chroot"));
    std::string directory = probe_directory(options);
    KILN_TRY(run_probe(0, probe_chroot, directory.data(), str_cat("chroot ", directory, " (this needs CAP_SYS_CHROOT)")));
    // The step's init finds what a step left running through /proc: it must be this pid namespace's.
    auto stat = read_file("/proc/self/stat");
    if (!stat || !stat->starts_with(str_cat(::getpid(), " (")))
        return fail("/proc is not this process's own, and the chroot sandbox needs it to end what a step leaves running");
    Sandbox sandbox;
    sandbox.m_mode = SandboxMode::chroot;
    sandbox.m_description =
        "chroot sandbox: RUN steps run chrooted into the stage's filesystem with the host's ids and Docker's "
        "default capabilities, without /proc, with /dev nodes made by mknod and the host's /etc/hosts and "
        "/etc/resolv.conf copied in for each step. Root can leave a chroot: this mode trusts the Dockerfile, as "
        "Kaniko does";
    return sandbox;
}

Result<Sandbox> Sandbox::detect(const SandboxOptions& options) {
    auto detect_mode = [&options](SandboxMode mode) -> Result<Sandbox> {
        switch (mode) {
            case SandboxMode::userns:
                return detect_userns(options);
            case SandboxMode::rootns:
                return detect_rootns(options);
            case SandboxMode::chroot:
            case SandboxMode::automatic:
                break;
        }
        return detect_chroot(options);
    };
    if (options.mode != SandboxMode::automatic)
        return with_context(detect_mode(options.mode),
                            str_cat("--sandbox=", sandbox_mode_name(options.mode), " cannot work here"));
    std::vector<std::string> ruled_out;
    for (SandboxMode mode : {SandboxMode::userns, SandboxMode::rootns, SandboxMode::chroot}) {
        auto sandbox = detect_mode(mode);
        if (sandbox) {
            sandbox->m_ruled_out = std::move(ruled_out);
            return sandbox;
        }
        ruled_out.push_back(str_cat(sandbox_mode_name(mode), ": ", sandbox.error().message()));
    }
    return fail(str_cat("no RUN sandbox works here (", join(ruled_out, "; "), "). ", k_settings_that_work));
}

}  // namespace kiln
