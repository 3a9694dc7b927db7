#include "builder/sandbox/ownership_filter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <iterator>

#include "common/fd.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

#if defined(__x86_64__)
constexpr std::uint32_t k_audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t k_audit_arch = AUDIT_ARCH_AARCH64;
#else
#error "the ownership supervisor's filter names this architecture's audit value"
#endif

// The calls handed to the supervisor whatever their arguments.
constexpr long k_notified[] = {
#ifdef SYS_chown
    SYS_chown,
    SYS_lchown,
#endif
#ifdef SYS_mkdir
    SYS_mkdir,
#endif
#ifdef SYS_creat
    SYS_creat,
#endif
#ifdef SYS_stat
    SYS_stat,
    SYS_lstat,
#endif
#ifdef SYS_fstat
    SYS_fstat,
#endif
    SYS_newfstatat, SYS_statx, SYS_exit_group,
    SYS_fchown,    SYS_fchownat,  SYS_setuid,    SYS_setgid,  SYS_setreuid, SYS_setregid, SYS_setresuid,
    SYS_setresgid, SYS_setgroups, SYS_setfsuid,  SYS_setfsgid, SYS_getuid,  SYS_geteuid,  SYS_getgid,
    SYS_getegid,   SYS_getresuid, SYS_getresgid, SYS_getgroups, SYS_mkdirat, SYS_openat2,
};

// The calls handed over only when the flags argument (its index) asks to create.
struct CreatingCall {
    long number;
    unsigned flags_argument;
};
constexpr CreatingCall k_notified_when_creating[] = {
#ifdef SYS_open
    {SYS_open, 1},
#endif
    {SYS_openat, 2},
};

long seccomp(unsigned operation, unsigned flags, void* argument) {
    return ::syscall(SYS_seccomp, operation, flags, argument);
}

}  // namespace

int install_ownership_filter(int socket) {
    sock_filter program[4 + 2 * std::size(k_notified) + 5 * std::size(k_notified_when_creating) + 1];
    size_t count = 0;
    auto add = [&](sock_filter instruction) { program[count++] = instruction; };
    add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
    add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k_audit_arch, 1, 0));
    add(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    for (long number : k_notified) {
        add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(number), 0, 1));
        add(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
    }
    for (const CreatingCall& call : k_notified_when_creating) {
        // Each block ends in a return, so the accumulator still holds the call's number after a skipped one.
        add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(call.number), 0, 4));
        add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                     static_cast<std::uint32_t>(offsetof(seccomp_data, args) + 8 * call.flags_argument)));
        add(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_CREAT, 0, 1));
        add(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
        add(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
    add(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    sock_fprog filter{static_cast<unsigned short>(count), program};

    // A call the supervisor has taken is not restarted by a signal, which would repeat what it did for it
    // (Linux 5.19 and later; without it there is no supervisor).
    unsigned flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    long listener = seccomp(SECCOMP_SET_MODE_FILTER, flags, &filter);
    if (listener < 0 && errno == EACCES) {
        // Without CAP_SYS_ADMIN a filter needs no_new_privs, which a single-id namespace makes moot.
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
        listener = seccomp(SECCOMP_SET_MODE_FILTER, flags, &filter);
    }
    if (listener < 0) return errno;

    int fd = static_cast<int>(listener);
    int result = send_descriptor(socket, fd, 's');
    ::close(fd);
    return result;
}

Status probe_ownership_filter() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return fail_errno("socketpair");
    UniqueFd ours(fds[0]);
    UniqueFd theirs(fds[1]);
    pid_t child = ::fork();
    if (child < 0) return fail_errno("fork");
    if (child == 0) ::_exit(install_ownership_filter(theirs.get()) & 0xff);  // the errno, if it fails
    theirs.reset();
    char byte = 0;
    // recvmsg returns once the child has sent its listener, or ended without.
    ReceivedMessage received = receive_descriptor(ours.get(), &byte, 1);
    // Until the child is gone, whatever it calls under the filter on its way out (exit_group) runs as it is.
    int status = 0;
    bool reaped = false;
    while (received.fd && !reaped) {
        pollfd listener{received.fd.get(), POLLIN, 0};
        int ready = ::poll(&listener, 1, 100);
        if (ready > 0 && (listener.revents & POLLIN)) {
            seccomp_notif request{};
            if (::ioctl(received.fd.get(), SECCOMP_IOCTL_NOTIF_RECV, &request) == 0) {
                seccomp_notif_resp response{};
                response.id = request.id;
                response.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                ::ioctl(received.fd.get(), SECCOMP_IOCTL_NOTIF_SEND, &response);
            }
            continue;
        }
        reaped = ::waitpid(child, &status, WNOHANG) == child;
        if (ready > 0 && (listener.revents & (POLLHUP | POLLERR)) && !reaped) break;
    }
    received.fd.reset();
    while (!reaped && ::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || received.size != 1)
        return fail(str_cat("a seccomp filter with a user-notification listener cannot be installed here (",
                            WIFEXITED(status) && WEXITSTATUS(status) != 0 ? std::strerror(WEXITSTATUS(status))
                                                                          : "no listener came back",
                            "; Linux 5.19 or later, and a seccomp policy that allows seccomp(2), are needed)"));
    return {};
}

}  // namespace kiln
