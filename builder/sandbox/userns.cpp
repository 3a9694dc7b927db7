#include "builder/sandbox/userns.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "builder/sandbox/cloned_process.hpp"
#include "builder/sandbox/id_map.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/proc_files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr std::uint32_t k_subordinate_ids_wanted = 65535;  // ids 1..65535; 0 is the caller itself
constexpr const char k_exec_failed[] = "kiln: cannot re-execute /proc/self/exe in its user namespace\n";

struct ReexecPlan {
    int sync_read_fd = -1;
    int sync_write_fd = -1;
    pid_t parent = 0;
    sigset_t original_mask{};
    char* const* argv = nullptr;
    char* const* envp = nullptr;
};

// The child: waits until its ids are mapped, then becomes kiln again, as uid 0 of the new namespace.
int reexec_main(void* argument) {
    const ReexecPlan& plan = *static_cast<const ReexecPlan*>(argument);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != plan.parent) ::_exit(1);
    ::close(plan.sync_write_fd);
    char go = 0;
    if (::read(plan.sync_read_fd, &go, 1) != 1) ::_exit(1);
    ::close(plan.sync_read_fd);
    // Root's own host ids are not in its namespace's map: become the namespace's root. (A non-root caller's
    // are: it is already uid 0 there, and setgroups may be denied.) Raw calls, as a cloned child's must be.
    ::syscall(SYS_setgroups, 0, nullptr);
    if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) ::_exit(1);
    ::sigprocmask(SIG_SETMASK, &plan.original_mask, nullptr);
    ::execve("/proc/self/exe", plan.argv, plan.envp);
    [[maybe_unused]] ssize_t ignored = ::write(2, k_exec_failed, sizeof k_exec_failed - 1);
    ::_exit(127);
}

bool no_new_privs() { return own_status_field("NoNewPrivs") == "1"; }

// Runs newuidmap or newgidmap for `pid`: 0 → `own_id`, 1.. → the subordinate range. The reason on failure.
std::optional<std::string> run_id_helper(const char* helper, pid_t pid, std::uint32_t own_id,
                                         const SubordinateRange& range) {
    std::uint32_t count = std::min(range.count, k_subordinate_ids_wanted);
    auto result = run_process(
        {helper, str_cat(pid), "0", str_cat(own_id), "1", "1", str_cat(range.start), str_cat(count)});
    if (!result) return result.error().message();
    if (result->exit_code != 0)
        return str_cat(helper, " exited with ", result->exit_code, ": ", trim(result->stderr_bytes));
    return std::nullopt;
}

// Maps the child's ids: the full range where /etc/subuid and the setuid helpers allow, else the caller's own
// id.
Status map_ids(pid_t pid, const std::string& user, uid_t uid, gid_t gid) {
    KILN_ASSIGN(auto uid_range, find_subordinate_range("/etc/subuid", user, uid));
    KILN_ASSIGN(auto gid_range, find_subordinate_range("/etc/subgid", user, gid));
    std::optional<std::string> uid_problem;
    if (no_new_privs())
        uid_problem =
            "no_new_privs is set (allowPrivilegeEscalation: false), so the setuid newuidmap cannot work";
    else if (!uid_range)
        uid_problem = str_cat("/etc/subuid has no range for ", user);
    else
        uid_problem = run_id_helper("newuidmap", pid, uid, *uid_range);

    const char* collapse =
        "; files are owned by that one id on disk, and other owners only recorded (the sandbox line says whether "
        "RUN steps' chown and user switches can be pretended)";
    if (uid_problem) {
        log_warn("single-id user namespace (only uid ", uid, " as 0): ", *uid_problem, collapse);
        IdMapping single{{{0, uid, 1}}, {{0, gid, 1}}, SetGroups::deny};
        return write_id_maps(pid, single);
    }
    if (uid_range->count < k_subordinate_ids_wanted)
        log_warn("/etc/subuid gives ", user, " only ", uid_range->count,
                 " ids: RUN steps cannot use uids above ", uid_range->count);

    std::optional<std::string> gid_problem =
        gid_range ? run_id_helper("newgidmap", pid, gid, *gid_range)
                  : std::optional<std::string>(str_cat("/etc/subgid has no range for ", user));
    if (gid_problem) {
        log_warn("single-gid user namespace (only gid ", gid, " as 0): ", *gid_problem, collapse);
        return write_id_maps(pid, {{}, {{0, gid, 1}}, SetGroups::deny});
    }
    if (gid_range->count < k_subordinate_ids_wanted)
        log_warn("/etc/subgid gives ", user, " only ", gid_range->count,
                 " ids: RUN steps cannot use gids above ", gid_range->count);
    log_debug("user namespace: uid 0 → ", uid, ", 1.. → ", uid_range->start, "; gid 0 → ", gid, ", 1.. → ",
              gid_range->start);
    return {};
}

// Blocks the signals the parent forwards (and SIGCHLD) for its lifetime; the child restores the original
// mask.
class BlockedSignals {
public:
    BlockedSignals() {
        ::sigemptyset(&m_set);
        for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaddset(&m_set, signal);
        ::sigprocmask(SIG_BLOCK, &m_set, &m_original);
    }
    ~BlockedSignals() { ::sigprocmask(SIG_SETMASK, &m_original, nullptr); }
    BlockedSignals(const BlockedSignals&) = delete;
    BlockedSignals& operator=(const BlockedSignals&) = delete;
    const sigset_t& set() const { return m_set; }
    const sigset_t& original() const { return m_original; }

private:
    sigset_t m_set{};
    sigset_t m_original{};
};

// Waits for the child, passing on the signals that would otherwise end only this process.
Result<int> wait_forwarding_signals(ClonedProcess& child, const BlockedSignals& signals) {
    while (true) {
        KILN_ASSIGN(std::optional<int> status, child.try_wait());
        if (status) return *status;
        siginfo_t info{};
        int signal = ::sigwaitinfo(&signals.set(), &info);
        if (signal < 0) {
            if (errno == EINTR) continue;
            return fail_errno("sigwaitinfo");
        }
        if (signal != SIGCHLD) ::kill(child.pid(), signal);
    }
}

// The effective capability set, from /proc/self/status; nullopt where it cannot be read.
std::optional<std::uint64_t> effective_capabilities() {
    std::optional<std::string> hex = own_status_field("CapEff");
    if (!hex || hex->empty()) return std::nullopt;
    char* end = nullptr;
    std::uint64_t value = std::strtoull(hex->c_str(), &end, 16);
    if (*end != '\0') return std::nullopt;
    return value;
}

// Why root in the host's user namespace builds inside one of its own, or nullopt. Without CAP_SETFCAP and
// CAP_SYS_ADMIN (CRI-O's default capabilities), no user namespace root creates may map host uid 0 (Linux 5.12
// and later) and no mount can be idmapped, so a RUN's root could not write the rootfs's root-owned files.
std::optional<std::string> root_needs_own_namespace(SandboxMode mode) {
    if (mode != SandboxMode::automatic && mode != SandboxMode::userns) return std::nullopt;
    auto map = read_own_id_map("uid_map");
    if (!map || !is_initial_id_map(*map)) return std::nullopt;
    std::optional<std::uint64_t> effective = effective_capabilities();
    if (!effective || (*effective & (1ull << CAP_SETFCAP)) || (*effective & (1ull << CAP_SYS_ADMIN)))
        return std::nullopt;
    return std::string("root has neither CAP_SETFCAP, which a user namespace mapping host uid 0 needs, nor "
                       "CAP_SYS_ADMIN, which idmapped mounts need");
}

// What re-executing kiln in a new user namespace came to.
struct Reexec {
    bool started = false;    // false: the namespace could not be made (`error` says why)
    int exit_code = 0;       // the child's, when it started
    std::optional<Error> error;
};

// Re-executes kiln (argv, the environment plus the marker) in a new user namespace whose ids `map` writes, and
// waits for it, forwarding signals.
Result<Reexec> reexec_in_user_namespace(char** argv, char** envp, const std::function<Status(pid_t)>& map,
                                        const std::vector<std::string>& extra_environment = {}) {
    std::vector<std::string> environment;
    for (char** variable = envp; variable && *variable; ++variable) environment.emplace_back(*variable);
    environment.push_back(str_cat(k_build_userns_marker, "=", ::getpid()));
    environment.insert(environment.end(), extra_environment.begin(), extra_environment.end());
    std::vector<char*> child_envp;
    for (std::string& variable : environment) child_envp.push_back(variable.data());
    child_envp.push_back(nullptr);

    KILN_ASSIGN(auto sync, make_pipe());
    auto& [sync_read, sync_write] = sync;
    BlockedSignals signals;
    ReexecPlan plan{sync_read.get(), sync_write.get(), ::getpid(), signals.original(), argv, child_envp.data()};
    auto child = ClonedProcess::spawn(CLONE_NEWUSER, reexec_main, &plan);
    if (!child)
        return Reexec{.error = user_namespace_error(child.error().errno_value()).context("entering kiln's user namespace")};
    sync_read.reset();
    // Without its map, the child reads end-of-file on the pipe and exits.
    if (Status mapped = map(child->pid()); !mapped) return Reexec{.error = std::move(mapped).error()};
    if (::write(sync_write.get(), "g", 1) != 1) return fail_errno("start kiln in its user namespace");
    sync_write.reset();
    KILN_ASSIGN(int status, wait_forwarding_signals(*child, signals));
    return Reexec{.started = true, .exit_code = exit_code_from_wait_status(status)};
}

// Root's ids 0..65535 as the host range its RUN steps would get (sandbox.hpp's root_host_range).
Result<IdMapping> root_range_mapping() {
    KILN_ASSIGN(HostRange uids, root_host_range("/etc/subuid"));
    KILN_ASSIGN(HostRange gids, root_host_range("/etc/subgid"));
    return IdMapping{{{0, uids.start, k_container_id_count}}, {{0, gids.start, k_container_id_count}}, SetGroups::leave};
}

}  // namespace

Result<std::optional<int>> enter_build_user_namespace(char** argv, char** envp, SandboxMode mode,
                                                      const std::vector<std::string>& hand_in) {
    std::string marker_prefix = str_cat(k_build_userns_marker, "=");
    const char* marker = nullptr;
    for (char** variable = envp; variable && *variable; ++variable)
        if (std::string_view(*variable).starts_with(marker_prefix)) marker = *variable + marker_prefix.size();
    if (::geteuid() == 0 && marker) {
        // This is the re-executed kiln: die with the outer process, which may have died before this line.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        std::uint64_t outer = 0;
        if (parse_uint64(marker, outer) && ::getppid() != static_cast<pid_t>(outer))
            return fail(str_cat("kiln's outer process (pid ", outer, ") ended before this one started"));
        return std::optional<int>();
    }
    if (::geteuid() == 0) {
        std::optional<std::string> reason = root_needs_own_namespace(mode);
        if (!reason) return std::optional<int>();
        KILN_ASSIGN(IdMapping mapping, root_range_mapping());
        log_info("kiln builds in a user namespace of its own whose ids 0-65535 are host uids from ",
                 mapping.uids[0].outside, " and gids from ", mapping.gids[0].outside, ": ", *reason,
                 "; it reads and writes files outside its build as that unprivileged uid does");
        // Inherited by the child (and closed there once read): a descriptor opened by root reads as root's.
        UniqueFd handed;
        std::vector<std::string> extra_environment;
        std::string handed_value(k_handed_nothing);
        for (const std::string& path : hand_in) {
            int fd = ::open(path.c_str(), O_RDONLY);
            if (fd >= 0) {
                handed.reset(fd);
                handed_value = str_cat(fd, ":", path);
                break;
            }
            // Any other error: the re-executed kiln meets it too, and reports it.
            if (errno != ENOENT && errno != ENOTDIR) handed_value.clear();
            if (handed_value.empty()) break;
        }
        if (!hand_in.empty() && !handed_value.empty())
            extra_environment.push_back(str_cat(k_handed_file_variable, "=", handed_value));
        KILN_ASSIGN(Reexec reexec, reexec_in_user_namespace(
                                       argv, envp, [&mapping](pid_t pid) { return write_id_maps(pid, mapping); },
                                       extra_environment));
        if (reexec.started) return std::optional<int>(reexec.exit_code);
        // Root builds here instead, in a mode that needs no user namespace, or fails saying why.
        log_info("kiln stays in the host's user namespace: ", reexec.error->message());
        return std::optional<int>();
    }
    if (marker)
        return fail(str_cat("kiln was re-executed into a user namespace but runs as uid ", ::geteuid(),
                            ": the namespace's id map was not applied"));

    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    const passwd* entry = ::getpwuid(uid);
    std::string user = entry ? entry->pw_name : str_cat(uid);
    KILN_ASSIGN(Reexec reexec, reexec_in_user_namespace(argv, envp, [&](pid_t pid) {
                    return with_context(map_ids(pid, user, uid, gid), "mapping ids for kiln's user namespace");
                }));
    if (!reexec.started) return fail(std::move(*reexec.error));
    return std::optional<int>(reexec.exit_code);
}

}  // namespace kiln

namespace kiln {

Status enter_private_mount_namespace() {
    if (::unshare(CLONE_NEWNS) != 0) return fail_errno("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return fail_errno("making kiln's mounts private (mount MS_REC|MS_PRIVATE /)");
    return {};
}

}  // namespace kiln
