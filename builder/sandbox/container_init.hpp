#pragma once
// The sandbox's PID 1: what runs in the cloned child between clone(2) and the RUN command's exec. It builds
// the container's mount tree (rootfs, /proc, /dev, /sys, /etc/hosts, /etc/resolv.conf), pivots into it,
// starts the command and reaps every process until the command ends. The child may be a copy of a
// multi-threaded process, so everything here is async-signal-safe: the parent prepares all strings, and the
// child reports through fixed-size records on a pipe instead of logging.

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace kiln {

struct RunSpec;

// The mount points inside the rootfs, as paths relative to its root.
enum class MountTarget : std::uint8_t { proc, dev, sys, hosts, resolv_conf };
inline constexpr std::array<const char*, 5> k_mount_target_paths = {"proc", "dev", "sys", "etc/hosts",
                                                                    "etc/resolv.conf"};

// The host paths the sandbox masks (mask_path's item indexes the two lists, masked first).
std::string masked_path_name(std::size_t index);

// The host device nodes bound into the container's /dev.
inline constexpr std::array<const char*, 6> k_dev_nodes = {"null",   "zero",    "full",
                                                           "random", "urandom", "tty"};

// A RUN --mount as the child attaches it, prepared by the parent (step_mounts.hpp).
enum class StepMountKind : std::uint8_t { tree, tmpfs, file };
struct StepMountPlan {
    StepMountKind kind = StepMountKind::tree;
    const char* display = "";  // the absolute target, for reports
    // "a", "a/b", …: the target and its parents, null-terminated; and the last component of each.
    const char* const* target_prefixes = nullptr;
    const char* const* target_names = nullptr;
    bool target_is_directory = true;
    int tree_fd = -1;  // tree: a detached clone made by the parent, or -1: clone it here
    // tree, cloned here: a host directory, with `source` resolved inside it.
    const char* source_root = nullptr;
    const char* source = ".";
    unsigned attributes = 0;           // MOUNT_ATTR_* the child sets (0 when the parent set them)
    const char* tmpfs_size = nullptr;  // tmpfs: the "size" option, or null for the default
    const char* content = nullptr;     // file
    size_t content_size = 0;
    mode_t mode = 0400;
    uid_t uid = 0;
    gid_t gid = 0;
    const char* scratch_name = nullptr;  // file: its name in the sandbox's /dev while it is written
};

// What the child was doing when it reports.
enum class InitStep : std::uint8_t {
    wait_for_parent,
    set_root_ids,
    make_mounts_private,
    clone_rootfs,
    attach_rootfs,
    resolve_target,
    mount_proc,
    bind_proc,
    mount_dev,
    bind_dev_node,
    mount_devpts,
    devpts_without_gid,
    mount_shm,
    mount_mqueue,
    make_dev_link,
    bind_sys,
    bind_host_file,
    set_hostname,
    loopback_up,
    pivot_root,
    chroot_fallback,
    chroot_rootfs,
    become_subreaper,
    detach_old_root,
    chdir_working_directory,
    fork_command,
    redirect_output,
    set_groups,
    set_gid,
    set_uid,
    exec_command,
    drop_capabilities,
    resolve_step_target,
    create_step_target,
    clone_step_source,
    set_step_attributes,
    mount_step_tmpfs,
    write_step_file,
    attach_step_mount,
    install_ownership_filter,
    join_session_keyring,
    set_rootfs_attributes,
    mask_path,
};

enum class ReportLevel : std::uint8_t { fatal, warning, info };

// The capabilities a RUN command may keep in its bounding set.
enum class CapabilitySet : std::uint8_t {
    all_but_sys_admin,  // in a user namespace of its own: they are that namespace's, not the host's
    docker_default,     // host root: Docker's default list (chown, dac_override, fowner, fsetid, kill, setgid,
                        // setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap)
};

// One record on the report pipe. `item` indexes k_mount_target_paths, k_dev_nodes or InitPlan::step_mounts
// when the step names one.
struct InitReport {
    InitStep step;
    ReportLevel level;
    std::uint16_t item;
    std::int32_t err;
};

// Everything the child needs, prepared by the parent. Pointers refer to strings the parent keeps alive; the
// child works on its copy of them.
struct InitPlan {
    int sync_fd = -1;         // read end: one byte once the id maps are written; EOF or hang-up: kiln died
    int report_fd = -1;       // write end of the report pipe (O_CLOEXEC)
    int rootfs_tree_fd = -1;  // a detached mount of the rootfs made by the parent, or -1: clone rootfs_path
    const char* rootfs_path = nullptr;
    const char* hostname = nullptr;
    bool private_network = false;  // a new network namespace, whose loopback must be brought up
    // A detached mount of the file to bind on /etc/resolv.conf instead of the host's (made by the parent), or -1.
    int resolv_conf_tree_fd = -1;
    std::array<bool, k_mount_target_paths.size()> mount_wanted{};
    const char* working_directory = "/";
    uid_t uid = 0;
    gid_t gid = 0;
    const gid_t* groups = nullptr;
    size_t group_count = 0;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    const char* const* exec_candidates = nullptr;  // argv[0] resolved against the RUN's PATH, null-terminated
    int stdin_fd = -1;  // the host's /dev/null, opened by kiln; -1: open the container's
    int stdout_fd = 2;
    int stderr_fd = 2;
    CapabilitySet capabilities = CapabilitySet::all_but_sys_admin;
    const StepMountPlan* step_mounts = nullptr;  // RUN --mount entries, parents first
    size_t step_mount_count = 0;
    // A socket to kiln's ownership supervisor (ownership_supervisor.hpp): the command installs the filter and
    // sends its listener there before it changes ids and execs. -1: no supervisor.
    int ownership_socket = -1;
};

// Child side: writes a report record; init_die also ends the child. Async-signal-safe.
void init_report(const InitPlan& plan, InitStep step, ReportLevel level, int err, std::size_t item = 0);
[[noreturn]] void init_die(const InitPlan& plan, InitStep step, int err, std::size_t item = 0);

// Child side: attaches the rootfs over this mount namespace's "/", mounts /proc, /dev, /sys, /etc/hosts,
// /etc/resolv.conf and the RUN's own mounts into it, and returns the fd of its root, ready for pivot_root
// (container_mounts.cpp).
int build_container_mounts(const InitPlan& plan);

// The child's entry point, a ClonedProcess::Entry taking an InitPlan*. Exits with the command's exit code
// (128+signal when killed); a fatal setup failure is reported on the pipe first.
int container_init_main(void* plan);

// The chroot sandbox's entry point (chroot_init.cpp), cloned into no new namespace: a subreaper that forks the
// command into a session of its own, chrooted into plan.rootfs_path, and once the command ends kills every
// process it left behind. Exits as container_init_main does.
int chroot_init_main(void* plan);

// Child side, shared by both entry points: closes every descriptor the plan does not name.
void close_unplanned_fds(const InitPlan& plan);
// Child side, shared by both entry points, once kiln has written the id maps: hides from the step what this
// copy of kiln holds (its command line and environment; its memory, descriptors and environ behind ptrace's
// rules, by making it non-dumpable) and gives the step a new, empty session keyring instead of the
// caller's, as runc does.
void seal_init(const InitPlan& plan);
// Child side: in the command's process, with "/" and the working directory already its own, sets up stdio,
// capabilities, groups and ids, and execs the command.
[[noreturn]] void exec_command(const InitPlan& plan);

// A report as a message fragment naming the operation and the path: "mount proc on /work/rootfs/proc".
std::string describe_init_report(const InitReport& report, const InitPlan& plan);

// Parent side: the command's argv, environment and exec candidates (argv[0] resolved against the RUN's own
// PATH, not kiln's, as the container's shell would) as the null-terminated arrays an InitPlan points at. They
// point into `spec` and into `candidate_paths`, which moving this keeps in place.
struct CommandArrays {
    std::vector<std::string> candidate_paths;
    std::vector<char*> argv;
    std::vector<char*> envp;
    std::vector<char*> candidates;
};
CommandArrays command_arrays(const RunSpec& spec);

// Parent side: every report the child wrote. The pipe reaches EOF once the init has forked the command and
// the command has exec'd (or failed to), so this returns before the command ends.
Result<std::vector<InitReport>> read_init_reports(int fd);

// Parent side: the step's exit code from the init's wait status, once the reports are logged; an Error for a
// fatal setup report or an init that did not exit.
Result<int> command_result(const std::vector<InitReport>& reports, int wait_status, const InitPlan& plan);

}  // namespace kiln
