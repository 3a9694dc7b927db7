#pragma once
// The RUN-step sandbox: a command runs with a stage's rootfs as "/". In the strongest mode that works here
// (SandboxMode), it runs in new user, mount, pid, ipc and uts namespaces (and a network namespace on request),
// as PID 1's only child, so that every process it starts dies with the step. See
// ../shared/research/sandbox.md §2, §5 and §7 for the syscall sequence and the modes.

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/sandbox/id_map.hpp"
#include "builder/sandbox/sandbox_mode.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "layers/overlay_mount.hpp"

namespace kiln {

class StepMounts;

enum class NetworkMode {
    host,  // share kiln's network, as docker build does by default
    none,  // a private network namespace with only a loopback interface
    // A private network namespace with outbound connectivity through slirp4netns, and no way to the host's
    // loopback (--run-network=private; slirp_network.hpp).
    isolated,
};

// What a RUN --mount adds to the container.
enum class RunMountKind {
    bind,   // the tree at `source` inside the directory `source_root`
    tmpfs,  // a fresh, empty tmpfs
    file,   // a read-only file holding `content`, which only ever exists in the sandbox's memory
};

enum class MountAccess { read_only, read_write };

// One RUN --mount. Its target and any missing parent are created as stubs that never reach a layer (inside
// the sandbox's own tmpfs for a target under /dev), and what the command writes below the target stays in the
// mount.
struct RunMount {
    RunMountKind kind = RunMountKind::bind;
    std::string target;  // absolute path inside the container, not "/"
    // bind: an absolute directory on the host, resolved like a rootfs (its symlinks stay inside it), and the
    // path inside it ("" for its root); a file there gives a file target.
    std::string source_root;
    std::string source;
    MountAccess access = MountAccess::read_only;  // bind
    std::uint64_t tmpfs_size = 0;                 // tmpfs: bytes; 0 for the kernel's default
    // bind from a stage whose filesystem is an overlay snapshotter's mount (which cannot be idmapped): its
    // layer directories, topmost first, that an idmapped sandbox mounts from idmapped clones instead.
    std::vector<std::string> source_layers;
    std::string content;                          // file: never logged, nor named in errors
    mode_t mode = 0400;                           // file: executable when any x bit is set
    uid_t uid = 0;
    gid_t gid = 0;
};

// The most RUN --mount entries one step may have.
inline constexpr size_t k_max_run_mounts = 64;

// What a RUN step executes.
struct RunSpec {
    std::string rootfs;             // absolute path of the stage's filesystem on disk
    std::vector<std::string> argv;  // argv[0] is looked up in the PATH of `environment` unless it has a '/'
    std::vector<std::string> environment;  // "K=V" entries, used as they are
    std::string working_directory = "/";   // inside the rootfs; must already exist
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> supplementary_gids;
    NetworkMode network = NetworkMode::host;
    std::string hostname = "kiln";
    // Where the command writes (its stdin is /dev/null): kiln's stderr by default, so RUN output is build
    // log, never kiln's stdout. A pipe must be drained by another thread, as run() blocks until the command
    // ends.
    int stdout_fd = STDERR_FILENO;
    int stderr_fd = STDERR_FILENO;
    std::vector<RunMount> mounts;  // attached parents first, whatever their order here
    // Set by the overlay snapshotter: `rootfs` is a mount of this overlay. Where the rootfs must be idmapped
    // (an overlay mount cannot be), the sandbox mounts the same layers from idmapped clones of each lower
    // directory and of the upper's parent, which holds the upper and `work`, a work directory for the step's
    // own mount (not the one of kiln's mount of the same upper).
    std::optional<OverlayMountSpec> overlay;
};

// Whether a root caller may expose the rootfs to RUN steps through an idmapped mount.
enum class IdmappedMounts {
    automatic,  // when the filesystem supports them; otherwise the identity map, with a warning
    disabled,   // always the identity map
};

// The paths a RUN's layer leaves out in chroot mode (absolute, in the image), where the step's /etc/hosts and
// /etc/resolv.conf are the host's, put in place for the step instead of mounted over the image's: what the
// step writes there is lost, as with the other modes' read-only mounts.
std::vector<std::string> chroot_sandbox_run_paths();

struct SandboxOptions {
    SandboxMode mode = SandboxMode::automatic;
    // Why a non-root kiln runs outside a user namespace of its own (enter_build_user_namespace failed): the
    // userns mode's reason, where it has none of its own to give.
    std::string build_user_namespace_error;
    // A directory on the filesystem that will hold the rootfs directories, where idmapped mounts are probed.
    // Empty: default_temp_parent().
    std::string probe_directory;
    IdmappedMounts idmapped_mounts = IdmappedMounts::automatic;
    // Where a root caller's host id range comes from (the "root" entry).
    std::string subuid_file = "/etc/subuid";
    std::string subgid_file = "/etc/subgid";
};

// The host range a root caller maps RUN ids 0..65535 to when /etc/subuid has no "root" entry of 65536 ids:
// 0x70000000, the start of the block systemd leaves unused, far above useradd's subordinate ids (100000 to
// 600100000) and ordinary users.
inline constexpr std::uint32_t k_default_host_id_base = 0x70000000;
inline constexpr std::uint32_t k_container_id_count = 65536;

// The first host id of the range that a root caller's RUN ids 0..65535 become.
struct HostRange {
    std::uint32_t start = k_default_host_id_base;
    std::string source;  // where it came from, for the log
};

// Root's range from the "root" entry of `file` (/etc/subuid or /etc/subgid) when it has a full 65536 ids, else
// k_default_host_id_base.
Result<HostRange> root_host_range(const std::string& file);

// The PATH a command runs with when its environment has none: Docker's default.
inline constexpr const char* k_default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// A clone (detached, recursive) of `source` inside the detached mount `detached_mount`, which is attached for
// that moment in a fresh directory below `staging_parent` and detached again on every path, failures
// included.
Result<UniqueFd> clone_inside(int detached_mount, const std::string& staging_parent, const std::string& source);

// What runs a RUN step: the sandbox, or a stand-in in tests of the builder's orchestration.
class StepRunner {
public:
    virtual ~StepRunner() = default;
    // Runs spec.argv to completion and returns its exit code (128+signal when killed); an Error means the step
    // could not be started.
    virtual Result<int> run(const RunSpec& spec) const = 0;
};

class Sandbox final : public StepRunner {
public:
    // Probes once what this process may do and picks options.mode, or with `automatic` the strongest mode
    // that works. In userns mode:
    //  - root in the initial user namespace: RUN ids 0..65535 map to a host range, and the rootfs is an
    //    idmapped mount so files keep their image ids on disk; the identity map where idmapped mounts are
    //    unsupported;
    //  - uid 0 inside a user namespace (after enter_build_user_namespace): a nested namespace with the
    //    identity map of the ids this one has, and a plain bind mount of the rootfs.
    // Fails when the mode asked for (every mode, for `automatic`) cannot work here, naming for each mode the
    // operation that failed and its errno's meaning.
    static Result<Sandbox> detect(const SandboxOptions& options = {});

    SandboxMode mode() const { return m_mode; }
    // One line on the chosen mode and why, for the build log.
    const std::string& description() const { return m_description; }
    // Why each stronger mode than mode() was ruled out (empty when a mode was asked for), for the build log.
    const std::vector<std::string>& ruled_out() const { return m_ruled_out; }

    // Runs spec.argv to completion in a fresh sandbox and returns its exit code (128+signal when killed).
    // Every process it started is dead, and every mount point stub removed, when this returns. An Error means
    // the sandbox could not be set up, and names the failing operation and path. The command runs without
    // CAP_SYS_ADMIN, as Docker's do, so it can neither unmount nor remount writable what kiln mounted.
    Result<int> run(const RunSpec& spec) const override;

    // Whether run() can give a step an overlay rootfs (RunSpec::overlay) with layers stored under
    // `store_dir`, with no loss of isolation; the error says why not.
    Status probe_overlay_rootfs(const std::string& store_dir) const;

private:
    enum class RootfsMount { idmapped, bind };
    Sandbox() = default;
    static Result<Sandbox> detect_userns(const SandboxOptions& options);
    static Result<Sandbox> detect_rootns(const SandboxOptions& options);
    static Result<Sandbox> detect_chroot(const SandboxOptions& options);
    // run() in chroot mode (chroot_run.cpp).
    Result<int> run_chroot(const RunSpec& spec) const;
    Result<IdMapping> mapping_for_run(const RunSpec& spec, UniqueFd& rootfs_tree,
                                      StepMounts& step_mounts) const;
    // The overlay `spec` assembled from idmapped clones of its directories, detached.
    Result<UniqueFd> idmapped_overlay(const OverlayMountSpec& spec) const;
    // A detached clone of `source` inside a read-only overlay of `layers` made from idmapped clones.
    Result<UniqueFd> clone_from_layers(const std::vector<std::string>& layers, const std::string& source) const;

    IdMapping m_mapping;           // the RUN's user namespace, as seen from kiln's
    IdMapping m_identity_mapping;  // the fallback when an idmapped mount of a particular rootfs fails
    RootfsMount m_rootfs_mount = RootfsMount::bind;
    bool m_parent_clones_rootfs = false;  // root in the initial namespace clones the rootfs mount itself
    UniqueFd m_idmap_userns;              // carries m_mapping for MOUNT_ATTR_IDMAP
    bool m_pretend_ownership = false;     // a single-id namespace with an ownership supervisor
    SandboxMode m_mode = SandboxMode::userns;
    std::string m_description;
    std::vector<std::string> m_ruled_out;
};

}  // namespace kiln
