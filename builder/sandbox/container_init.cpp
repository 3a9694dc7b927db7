#include "builder/sandbox/container_init.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "builder/sandbox/ownership_filter.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/log.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// PID 1's exit status when setup failed; the parent goes by the fatal report, this only has to be distinct.
constexpr int k_setup_failed_exit = 125;

// Raw syscalls: glibc's wrappers would try to change the ids of every thread of kiln, whose bookkeeping this
// copy of its memory still holds, though this process has a single thread.
long set_ids(long syscall_number, unsigned id) {
    return ::syscall(syscall_number, id, id, id);
}
long set_groups(size_t count, const gid_t* groups) {
    return ::syscall(SYS_setgroups, count, groups);
}

}  // namespace

// Closes every descriptor but the plan's own: a concurrent sandbox's pipe ends copied into this process would
// otherwise hold that sandbox's report pipe open until this RUN ends.
void close_unplanned_fds(const InitPlan& plan) {
    std::array<int, 11 + k_max_run_mounts> keep{};
    size_t count = 0;
    for (int fd : {0, 1, 2, plan.sync_fd, plan.report_fd, plan.rootfs_tree_fd, plan.stdin_fd, plan.stdout_fd,
                   plan.stderr_fd, plan.ownership_socket, plan.resolv_conf_tree_fd})
        keep[count++] = fd;
    for (size_t i = 0; i < plan.step_mount_count && count < keep.size(); ++i)
        keep[count++] = plan.step_mounts[i].tree_fd;
    for (size_t i = 1; i < count; ++i)
        for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
    unsigned next = 0;
    for (size_t i = 0; i < count; ++i) {
        int fd = keep[i];
        if (fd < 0 || static_cast<unsigned>(fd) < next) continue;
        if (static_cast<unsigned>(fd) > next) ::close_range(next, static_cast<unsigned>(fd) - 1, 0);
        next = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(next, ~0U, 0);
}

void seal_init(const InitPlan& plan) {
    replace_exec_strings("init");
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    // KEYCTL_JOIN_SESSION_KEYRING with no name: a new anonymous keyring. Where seccomp refuses keyctl (Docker's
    // default profile does), the step cannot reach a keyring either.
    if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr) < 0) {
        if (errno != EPERM && errno != ENOSYS && errno != EACCES) init_die(plan, InitStep::join_session_keyring, errno);
        init_report(plan, InitStep::join_session_keyring, ReportLevel::info, errno);
    }
}

namespace {

void bring_loopback_up(const InitPlan& plan) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq request{};
    std::memcpy(request.ifr_name, "lo", 3);
    if (sock < 0 || ::ioctl(sock, SIOCGIFFLAGS, &request) != 0) {
        init_report(plan, InitStep::loopback_up, ReportLevel::warning, errno);
    } else {
        request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
        if (::ioctl(sock, SIOCSIFFLAGS, &request) != 0)
            init_report(plan, InitStep::loopback_up, ReportLevel::warning, errno);
    }
    if (sock >= 0) ::close(sock);
}

// Builds the container's mount tree and makes it "/" (and the working directory current).
void enter_rootfs(const InitPlan& plan) {
    int root = build_container_mounts(plan);
    if (::fchdir(root) != 0) init_die(plan, InitStep::pivot_root, errno);
    if (::syscall(SYS_pivot_root, ".", ".") == 0) {
        // The old root is stacked on the new one; detaching it leaves the host's mounts unreachable.
        if (::umount2(".", MNT_DETACH) != 0) init_die(plan, InitStep::detach_old_root, errno);
    } else {
        init_report(plan, InitStep::pivot_root, ReportLevel::warning, errno);
        if (::chroot(".") != 0) init_die(plan, InitStep::chroot_fallback, errno);
    }
    ::close(root);
    if (::chdir("/") != 0 || ::chdir(plan.working_directory) != 0)
        init_die(plan, InitStep::chdir_working_directory, errno);
}

bool in_docker_default_set(int capability) {
    switch (capability) {
        case CAP_CHOWN: case CAP_DAC_OVERRIDE: case CAP_FOWNER: case CAP_FSETID: case CAP_KILL: case CAP_SETGID:
        case CAP_SETUID: case CAP_SETPCAP: case CAP_NET_BIND_SERVICE: case CAP_NET_RAW: case CAP_SYS_CHROOT:
        case CAP_MKNOD: case CAP_AUDIT_WRITE: case CAP_SETFCAP:
            return true;
        default:
            return false;
    }
}

// Drops from the bounding set what the step may not have; root's exec then keeps only what is left.
void limit_capabilities(const InitPlan& plan) {
    if (plan.capabilities == CapabilitySet::all_but_sys_admin) {
        // As in Docker's RUN steps: without it the command can neither unmount nor remount writable what
        // kiln mounted read-only (the build context, a stage's files, secrets).
        if (::prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0)
            init_die(plan, InitStep::drop_capabilities, errno);
        return;
    }
    for (int capability = 0; capability < 64; ++capability) {
        if (in_docker_default_set(capability) || ::prctl(PR_CAPBSET_READ, capability, 0, 0, 0) != 1) continue;
        if (::prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0)
            init_die(plan, InitStep::drop_capabilities, errno);
    }
    // exec keeps what is inheritable or ambient besides the bounding set: neither may carry more.
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        init_die(plan, InitStep::drop_capabilities, errno);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) init_die(plan, InitStep::drop_capabilities, errno);
    data[0].inheritable = 0;
    data[1].inheritable = 0;
    if (::syscall(SYS_capset, &header, data) != 0) init_die(plan, InitStep::drop_capabilities, errno);
}

}  // namespace

[[noreturn]] void exec_command(const InitPlan& plan) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; ++signal) ::sigaction(signal, &default_action, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    int out = ::fcntl(plan.stdout_fd, F_DUPFD_CLOEXEC, 3);
    int err = ::fcntl(plan.stderr_fd, F_DUPFD_CLOEXEC, 3);
    int in = plan.stdin_fd >= 0 ? ::fcntl(plan.stdin_fd, F_DUPFD_CLOEXEC, 3) : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || err < 0 || in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0)
        init_die(plan, InitStep::redirect_output, errno);

    limit_capabilities(plan);
    // Before the ids change: the supervisor pretends that change, and those of every process the command makes.
    if (plan.ownership_socket >= 0) {
        if (int failed = install_ownership_filter(plan.ownership_socket); failed != 0)
            init_die(plan, InitStep::install_ownership_filter, failed);
    }
    // An empty group list cannot be set where setgroups is denied (a single-id namespace), and needs not be.
    if (set_groups(plan.group_count, plan.groups) != 0 && !(plan.group_count == 0 && errno == EPERM))
        init_die(plan, InitStep::set_groups, errno);
    if (set_ids(SYS_setresgid, plan.gid) != 0) init_die(plan, InitStep::set_gid, errno);
    if (set_ids(SYS_setresuid, plan.uid) != 0) init_die(plan, InitStep::set_uid, errno);
    ::umask(022);
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

    int exec_errno = ENOENT;
    for (const char* const* candidate = plan.exec_candidates; *candidate; ++candidate) {
        ::execve(*candidate, plan.argv, plan.envp);
        // As execvp: a candidate that exists but cannot run is the better error than a later ENOENT.
        if (errno != ENOENT && errno != ENOTDIR) exec_errno = errno;
    }
    init_report(plan, InitStep::exec_command, ReportLevel::warning, exec_errno);
    ::_exit(exec_errno == ENOENT ? 127 : 126);
}

void init_report(const InitPlan& plan, InitStep step, ReportLevel level, int err, std::size_t item) {
    InitReport record{step, level, static_cast<std::uint16_t>(item), err};
    // A record is far below PIPE_BUF, so the write is atomic; if the parent is gone there is no one to tell.
    [[maybe_unused]] ssize_t ignored = ::write(plan.report_fd, &record, sizeof record);
}

[[noreturn]] void init_die(const InitPlan& plan, InitStep step, int err, std::size_t item) {
    init_report(plan, step, ReportLevel::fatal, err, item);
    ::_exit(k_setup_failed_exit);
}

int container_init_main(void* argument) {
    const InitPlan& plan = *static_cast<const InitPlan*>(argument);
    close_unplanned_fds(plan);
    char go = 0;
    if (::read(plan.sync_fd, &go, 1) != 1) init_die(plan, InitStep::wait_for_parent, errno);
    if (set_ids(SYS_setresgid, 0) != 0) init_die(plan, InitStep::set_root_ids, errno);
    set_groups(0, nullptr);  // EPERM where setgroups is denied; there are no groups to drop then
    if (set_ids(SYS_setresuid, 0) != 0) init_die(plan, InitStep::set_root_ids, errno);
    // Die with kiln, and so end the whole pid namespace. Set only now: changing ids clears it. kiln keeps the
    // sync pipe open while it waits, so a hang-up means it died before this line.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    pollfd sync{plan.sync_fd, POLLIN, 0};
    if (::poll(&sync, 1, 0) != 0) ::_exit(k_setup_failed_exit);
    ::close(plan.sync_fd);
    seal_init(plan);

    if (::sethostname(plan.hostname, std::strlen(plan.hostname)) != 0)
        init_report(plan, InitStep::set_hostname, ReportLevel::info, errno);
    if (plan.private_network) bring_loopback_up(plan);
    enter_rootfs(plan);

    // _Fork, not fork: fork's atfork handlers would take locks that another thread of kiln may have held when
    // this process was cloned.
    pid_t command = ::_Fork();
    if (command < 0) init_die(plan, InitStep::fork_command, errno);
    if (command == 0) exec_command(plan);
    ::close(plan.report_fd);
    // Only the command sends on it; a step that took PID 1's copy could queue more for kiln.
    if (plan.ownership_socket >= 0) ::close(plan.ownership_socket);

    // PID 1 of the namespace: reap everything; once the command is done, end whatever it left running.
    int command_status = 0;
    while (true) {
        int status = 0;
        pid_t reaped = ::waitpid(-1, &status, __WALL);
        if (reaped < 0) {
            if (errno == EINTR) continue;
            break;  // ECHILD: nothing is left
        }
        if (reaped == command) {
            command_status = status;
            ::kill(-1, SIGKILL);
        }
    }
    return exit_code_from_wait_status(command_status);  // pure arithmetic: safe here
}

namespace {

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (const std::string& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
    pointers.push_back(nullptr);
    return pointers;
}

std::vector<std::string> exec_candidates(const RunSpec& spec) {
    const std::string& program = spec.argv[0];
    if (program.find('/') != std::string::npos) return {program};
    std::string path = k_default_path;
    for (const std::string& entry : spec.environment) {
        if (entry.starts_with("PATH=")) {
            path = entry.substr(5);
            break;
        }
    }
    std::vector<std::string> candidates;
    for (const std::string& dir : split(path, ':'))
        candidates.push_back(str_cat(dir.empty() ? "." : dir, "/", program));
    return candidates;
}

}  // namespace

Result<std::vector<InitReport>> read_init_reports(int fd) {
    std::vector<InitReport> reports;
    InitReport report;
    while (true) {
        ssize_t n = ::read(fd, &report, sizeof report);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read the sandbox's report pipe");
        if (n == 0) return reports;
        if (static_cast<size_t>(n) != sizeof report) return fail("short record on the sandbox's report pipe");
        reports.push_back(report);
    }
}


CommandArrays command_arrays(const RunSpec& spec) {
    CommandArrays arrays;
    arrays.candidate_paths = exec_candidates(spec);
    arrays.argv = c_strings(spec.argv);
    arrays.envp = c_strings(spec.environment);
    arrays.candidates = c_strings(arrays.candidate_paths);
    return arrays;
}

Result<int> command_result(const std::vector<InitReport>& reports, int wait_status, const InitPlan& plan) {
    std::optional<Error> setup_failure;
    for (const InitReport& report : reports) {
        std::string what = describe_init_report(report, plan);
        if (report.level == ReportLevel::fatal && !setup_failure)
            setup_failure = Error::from_errno(what, report.err).context("setting up the RUN sandbox");
        else if (report.step == InitStep::exec_command)
            log_warn("RUN: cannot ", what, ": ", std::strerror(report.err));
        else if (report.level == ReportLevel::warning)
            log_warn("RUN sandbox: ", what, ": ", std::strerror(report.err));
        else
            log_debug("RUN sandbox: ", what, ": ", std::strerror(report.err));
    }
    if (setup_failure) return fail(std::move(*setup_failure));
    if (WIFSIGNALED(wait_status))
        return fail(str_cat("the RUN sandbox's init process was killed by signal ", WTERMSIG(wait_status)));
    if (!WIFEXITED(wait_status))
        return fail(str_cat("the RUN sandbox's init process ended with status ", wait_status));
    return WEXITSTATUS(wait_status);
}

std::string describe_init_report(const InitReport& report, const InitPlan& plan) {
    std::string rootfs = plan.rootfs_path;
    auto target = [&](std::size_t index) {
        return index < k_mount_target_paths.size() ? str_cat(rootfs, "/", k_mount_target_paths[index])
                                                   : rootfs;
    };
    auto node = [&](std::size_t index) { return index < k_dev_nodes.size() ? k_dev_nodes[index] : "?"; };
    auto step_target = [&](std::size_t index) -> std::string {
        return index < plan.step_mount_count ? str_cat(rootfs, plan.step_mounts[index].display) : rootfs;
    };
    auto step_source = [&](std::size_t index) -> std::string {
        if (index >= plan.step_mount_count || !plan.step_mounts[index].source_root)
            return "the mount's source";
        const StepMountPlan& mount = plan.step_mounts[index];
        return str_cat(mount.source_root, "/", mount.source);
    };
    switch (report.step) {
        case InitStep::wait_for_parent:
            return "waiting for kiln to map the sandbox's ids";
        case InitStep::set_root_ids:
            return "setresuid/setresgid(0) in the sandbox's user namespace";
        case InitStep::make_mounts_private:
            return "mount --make-rprivate / in the sandbox's mount namespace";
        case InitStep::clone_rootfs:
            return str_cat("open_tree(OPEN_TREE_CLONE) ", rootfs);
        case InitStep::attach_rootfs:
            return str_cat("move_mount ", rootfs, " into the sandbox");
        case InitStep::resolve_target:
            return str_cat("openat2(RESOLVE_IN_ROOT) ", target(report.item));
        case InitStep::mount_proc:
            return str_cat("mount proc on ", target(0),
                           " (so the host's /proc is bound there instead, as where a ",
                           "container runtime masks /proc)");
        case InitStep::bind_proc:
            return str_cat("bind-mount /proc on ", target(0));
        case InitStep::mount_dev:
            return str_cat("mount tmpfs on ", target(1));
        case InitStep::bind_dev_node:
            return str_cat("bind-mount /dev/", node(report.item), " on ", target(1), "/", node(report.item));
        case InitStep::mount_devpts:
            return str_cat("mount devpts on ", target(1), "/pts");
        case InitStep::devpts_without_gid:
            return "devpts refused gid=5 (tty is not mapped); mounted without it";
        case InitStep::mount_shm:
            return str_cat("mount tmpfs on ", target(1), "/shm");
        case InitStep::mount_mqueue:
            return str_cat("mount mqueue on ", target(1), "/mqueue");
        case InitStep::make_dev_link:
            return str_cat("symlink in ", target(1));
        case InitStep::bind_sys:
            return str_cat("bind-mount /sys read-only on ", target(2));
        case InitStep::bind_host_file:
            return str_cat("bind-mount the host's ", target(report.item).substr(rootfs.size()),
                           " read-only on ", target(report.item));
        case InitStep::set_hostname:
            return str_cat("sethostname ", plan.hostname);
        case InitStep::loopback_up:
            return "bring up lo in the sandbox's network namespace";
        case InitStep::pivot_root:
            return str_cat("pivot_root into ", rootfs,
                           " (so the RUN is chrooted instead, which root can escape)");
        case InitStep::chroot_fallback:
            return str_cat("chroot into ", rootfs);
        case InitStep::chroot_rootfs:
            return str_cat("chroot into ", rootfs, " (does kiln have CAP_SYS_CHROOT?)");
        case InitStep::become_subreaper:
            return "prctl(PR_SET_CHILD_SUBREAPER) for the RUN's processes";
        case InitStep::detach_old_root:
            return "umount2(MNT_DETACH) of the host's root after pivot_root";
        case InitStep::chdir_working_directory:
            return str_cat("chdir to the working directory ", plan.working_directory, " inside ", rootfs);
        case InitStep::fork_command:
            return "fork the RUN command";
        case InitStep::redirect_output:
            return "set up the RUN command's stdin, stdout and stderr";
        case InitStep::set_groups:
            return "setgroups for the RUN command (is every group mapped?)";
        case InitStep::set_gid:
            return str_cat("setresgid(", plan.gid, ") for the RUN command (is the gid mapped?)");
        case InitStep::set_uid:
            return str_cat("setresuid(", plan.uid, ") for the RUN command (is the uid mapped?)");
        case InitStep::exec_command:
            return str_cat("exec ", plan.argv && plan.argv[0] ? plan.argv[0] : "?");
        case InitStep::drop_capabilities:
            return plan.capabilities == CapabilitySet::all_but_sys_admin
                       ? "drop CAP_SYS_ADMIN from the RUN command's bounding set"
                       : "drop what Docker's default capabilities leave out from the RUN command's bounding set "
                         "(does kiln have CAP_SETPCAP?)";
        case InitStep::resolve_step_target:
            return str_cat("openat2(RESOLVE_IN_ROOT) the RUN mount point ", step_target(report.item));
        case InitStep::create_step_target:
            return str_cat("create the RUN mount point ", step_target(report.item),
                           " (is its parent inside a read-only mount?)");
        case InitStep::clone_step_source:
            return str_cat("open_tree(OPEN_TREE_CLONE) ", step_source(report.item), " for ",
                           step_target(report.item));
        case InitStep::set_step_attributes:
            return str_cat("mount_setattr on the RUN mount for ", step_target(report.item));
        case InitStep::mount_step_tmpfs:
            return str_cat("mount tmpfs on ", step_target(report.item));
        case InitStep::write_step_file:
            return str_cat("write the file for the RUN mount ", step_target(report.item),
                           " into the sandbox's /dev (is it large?)");
        case InitStep::attach_step_mount:
            return str_cat("move_mount onto the RUN mount point ", step_target(report.item),
                           " (a directory mounted on a file, or the reverse?)");
        case InitStep::install_ownership_filter:
            return "installing the ownership supervisor's seccomp filter";
        case InitStep::join_session_keyring:
            return "keyctl(KEYCTL_JOIN_SESSION_KEYRING) for a session keyring of the RUN's own";
        case InitStep::mask_path:
            return str_cat("mask or make read-only ", rootfs, "/", masked_path_name(report.item),
                           " (as Docker does, so that a step sees no host-wide state)");
        case InitStep::set_rootfs_attributes:
            return str_cat("mount_setattr(MOUNT_ATTR_NODEV) ", rootfs, " (device nodes of an image must not open)");
    }
    return "sandbox setup";
}

}  // namespace kiln
