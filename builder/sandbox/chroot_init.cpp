// The chroot sandbox's init: a process in kiln's own namespaces that starts the RUN command chrooted into the
// stage's filesystem and, as a child subreaper, inherits whatever the command leaves behind, so that it can end
// all of it. Everything here is async-signal-safe (see container_init.hpp): no allocation, no stdio.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "builder/sandbox/container_init.hpp"
#include "common/process.hpp"

namespace kiln {
namespace {

constexpr int k_setup_failed_exit = 125;

// getdents64's record header (linux_dirent64): the NUL-terminated name follows it.
struct LinuxDirent64 {
    std::uint64_t inode;
    std::int64_t offset;
    unsigned short record_length;
    unsigned char type;
};
constexpr size_t k_dirent_name_offset = 19;  // offsetof(linux_dirent64, d_name)

bool parse_decimal(const char* text, long& value) {
    if (*text < '0' || *text > '9') return false;
    value = 0;
    for (; *text; ++text) {
        if (*text < '0' || *text > '9') return false;
        value = value * 10 + (*text - '0');
        if (value > (1L << 30)) return false;
    }
    return true;
}

// The parent pid from /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces and parentheses).
long parent_of(int proc_fd, const char* pid_name) {
    char path[64] = {};
    size_t length = 0;
    for (const char* c = pid_name; *c && length < 40; ++c) path[length++] = *c;
    const char suffix[] = "/stat";
    for (size_t i = 0; i < sizeof suffix; ++i) path[length++] = suffix[i];
    int fd = ::openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buffer[512];
    ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (n <= 0) return -1;
    buffer[n] = '\0';
    char* close_paren = nullptr;
    for (char* c = buffer; *c; ++c)
        if (*c == ')') close_paren = c;
    if (!close_paren || close_paren[1] != ' ' || !close_paren[2] || close_paren[3] != ' ') return -1;
    long ppid = 0;
    const char* digits = close_paren + 4;
    char number[24] = {};
    for (size_t i = 0; i + 1 < sizeof number && digits[i] >= '0' && digits[i] <= '9'; ++i) number[i] = digits[i];
    return parse_decimal(number, ppid) ? ppid : -1;
}

// SIGKILLs every process whose parent is this one: what the command started and left, reparented here.
void kill_children() {
    int proc_fd = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd < 0) return;
    long self = ::getpid();
    alignas(8) char buffer[4096];
    while (true) {
        long n = ::syscall(SYS_getdents64, proc_fd, buffer, sizeof buffer);
        if (n <= 0) break;
        for (long offset = 0; offset < n;) {
            const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
            const char* name = buffer + offset + k_dirent_name_offset;
            offset += entry->record_length;
            long pid = 0;
            if (parse_decimal(name, pid) && pid != self && parent_of(proc_fd, name) == self)
                ::kill(static_cast<pid_t>(pid), SIGKILL);
        }
    }
    ::close(proc_fd);
}

}  // namespace

int chroot_init_main(void* argument) {
    const InitPlan& plan = *static_cast<const InitPlan*>(argument);
    close_unplanned_fds(plan);
    char go = 0;
    if (::read(plan.sync_fd, &go, 1) != 1) init_die(plan, InitStep::wait_for_parent, errno);
    seal_init(plan);
    // Signals meant for kiln (a terminal's, the pod's SIGTERM) must not end this process before the step's: it
    // learns of kiln's end from the sync pipe instead, and ends them first. The command gets default handlers
    // back (exec_command).
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE})
        ::sigaction(signal, &ignore, nullptr);
    // Orphans of the command become this process's children, not those of kiln's parent.
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) init_die(plan, InitStep::become_subreaper, errno);

    pid_t command = ::_Fork();
    if (command < 0) init_die(plan, InitStep::fork_command, errno);
    if (command == 0) {
        ::setsid();  // a process group of its own, ended as a whole
        if (::chroot(plan.rootfs_path) != 0) init_die(plan, InitStep::chroot_rootfs, errno);
        if (::chdir("/") != 0 || ::chdir(plan.working_directory) != 0)
            init_die(plan, InitStep::chdir_working_directory, errno);
        exec_command(plan);
    }
    ::close(plan.report_fd);

    // Everything the step left running ends with it, as in a pid namespace: its process group (killed while
    // the command's zombie still holds the group's id, so that the id cannot name another group), then whatever
    // was reparented here (daemons that left the group, orphans of the processes killed). The same happens when
    // kiln goes away (its end of the sync pipe closes) before the step is over.
    int command_status = 0;
    bool command_reaped = false;
    bool ending = false;
    while (true) {
        siginfo_t exited{};
        if (::waitid(P_ALL, 0, &exited, WEXITED | WNOHANG | WNOWAIT | __WALL) != 0) {
            if (errno == EINTR) continue;
            break;  // ECHILD: nothing is left
        }
        if (exited.si_pid == 0) {
            if (!ending) {
                pollfd sync{plan.sync_fd, POLLIN, 0};
                if (::poll(&sync, 1, 100) == 0) continue;
                ending = true;  // kiln is gone, or wants the step ended
                if (!command_reaped) ::kill(-command, SIGKILL);
            } else {
                ::poll(nullptr, 0, 10);
            }
            kill_children();
            continue;
        }
        if (exited.si_pid == command) {
            ::kill(-command, SIGKILL);
            ending = true;
        }
        int status = 0;
        if (::waitpid(exited.si_pid, &status, __WALL) == command) {
            command_status = status;
            command_reaped = true;
        }
        if (ending) kill_children();
    }
    return exit_code_from_wait_status(command_status);
}

}  // namespace kiln
