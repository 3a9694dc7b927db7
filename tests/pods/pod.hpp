#pragma once
// A Kubernetes pod's security context, emulated with runc (what containerd runs under a kubelet): an OCI bundle
// whose config.json carries the capability set, a seccomp profile, noNewPrivileges, the user, runc's masked and
// read-only /proc paths and, for `hostUsers: false`, a user namespace. The pod shares the host's network, so kiln
// inside it reaches the tests' registry on 127.0.0.1.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace kiln::test {

enum class PodCapabilities {
    docker_default,  // Docker's and containerd's default list: CHOWN … SYS_CHROOT, MKNOD, SETFCAP
    // CRI-O's default list: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
    // KILL; no SYS_CHROOT, MKNOD or SETFCAP
    crio_default,
    none,  // drop: [ALL]
};

enum class PodSeccomp {
    unconfined,
    // RuntimeDefault as containerd and Docker have it, for a pod without CAP_SYS_ADMIN: unshare, setns, mount,
    // umount2, pivot_root, the new mount API and namespace-creating clone are refused (EPERM), clone3 gives
    // ENOSYS so that the C library falls back to clone.
    runtime_default,
    // RuntimeDefault as CRI-O has it (the containers/common profile): unshare, mount, pivot_root and namespace
    // flags are allowed, chroot is refused without CAP_SYS_CHROOT and sethostname without CAP_SYS_ADMIN.
    crio_default,
    // A Localhost profile: PodSpec::localhost_profile, a JSON file in the kubelet's (and OCI's) format.
    localhost,
};

struct PodSpec {
    PodCapabilities capabilities = PodCapabilities::docker_default;
    PodSeccomp seccomp = PodSeccomp::runtime_default;
    std::string localhost_profile;
    bool no_new_privileges = false;  // allowPrivilegeEscalation: false
    uid_t uid = 0;                   // runAsUser
    gid_t gid = 0;
    // hostUsers: false: the pod's ids 0..65535 are host ids from `host_id_base` on.
    bool user_namespace = false;
    uid_t host_id_base = 0;
    // Host directories bound read-write into the pod (host path, pod path): its emptyDir volumes.
    std::vector<std::pair<std::string, std::string>> volumes;
    std::vector<std::string> args;  // the container's command, argv[0] inside the rootfs
    std::vector<std::string> environment;
    std::string working_directory = "/workspace";
};

// The OCI runtime config of a pod running `spec` on the root filesystem `rootfs` (an absolute path). Fails when
// the Localhost seccomp profile cannot be read.
Result<nlohmann::json> pod_config(const PodSpec& spec, const std::string& rootfs);

struct PodRun {
    int exit_code = -1;
    std::string output;  // stdout and stderr
};

// Writes `bundle`/config.json for `spec` on the root filesystem `rootfs` (absolute, not a symlink; pods may share
// it) and runs the container to its end with runc, under a state directory of its own; the container is deleted
// afterwards, whatever happened. A run longer than `timeout_seconds` is killed and reported as an error.
Result<PodRun> run_pod(const std::string& bundle, const std::string& rootfs, const PodSpec& spec,
                       int timeout_seconds = 600);

// Why pods cannot run here (no runc, not root), or the empty string.
std::string pods_unavailable();

}  // namespace kiln::test
