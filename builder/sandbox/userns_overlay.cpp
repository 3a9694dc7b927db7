#include "builder/sandbox/userns_overlay.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "builder/sandbox/cloned_process.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// What the child tells kiln when a step fails: which one, and errno.
struct Failure {
    int step = 0;
    int err = 0;
};

const char* const k_step_names[] = {"",
                                    "setns to the user namespace",
                                    "setgid(0)",
                                    "setuid(0)",
                                    "unshare(CLONE_NEWNS)",
                                    "fsopen(\"overlay\")",
                                    "fsconfig",
                                    "fsconfig(FSCONFIG_CMD_CREATE)",
                                    "fsmount",
                                    "send the mount",
                                    "fchdir to the layers' directory"};

// Everything the child needs, prepared before it starts: it may only make async-signal-safe calls.
struct Plan {
    int userns_fd = -1;
    int socket_fd = -1;
    int directory_fd = -1;
    std::vector<std::pair<const char*, const char*>> options;  // key, value (nullptr: a flag)
};

int report(int socket_fd, int step) {
    Failure failure{step, errno};
    (void)!::send(socket_fd, &failure, sizeof failure, MSG_NOSIGNAL);
    return 1;
}

int child_main(void* argument) {
    const Plan& plan = *static_cast<const Plan*>(argument);
    // While still kiln's root, which may search kiln's private directories; unshare keeps the directory.
    if (::fchdir(plan.directory_fd) != 0) return report(plan.socket_fd, 10);
    if (::setns(plan.userns_fd, CLONE_NEWUSER) != 0) return report(plan.socket_fd, 1);
    // Raw calls: glibc's setgid and setuid would wait for kiln's other threads, whose bookkeeping this copy of
    // its memory holds though the threads are not here, and so hang.
    if (::syscall(SYS_setresgid, 0, 0, 0) != 0) return report(plan.socket_fd, 2);
    if (::syscall(SYS_setresuid, 0, 0, 0) != 0) return report(plan.socket_fd, 3);
    // fsopen needs CAP_SYS_ADMIN over the mount namespace's owner: a namespace of the new user namespace's
    // own.
    if (::unshare(CLONE_NEWNS) != 0) return report(plan.socket_fd, 4);
    int fs = ::fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0) return report(plan.socket_fd, 5);
    for (const auto& [key, value] : plan.options) {
        int done = value ? ::fsconfig(fs, FSCONFIG_SET_STRING, key, value, 0)
                         : ::fsconfig(fs, FSCONFIG_SET_FLAG, key, nullptr, 0);
        if (done != 0) return report(plan.socket_fd, 6);
    }
    if (::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return report(plan.socket_fd, 7);
    int mount_fd = ::fsmount(fs, FSMOUNT_CLOEXEC, 0);
    if (mount_fd < 0) return report(plan.socket_fd, 8);
    if (int err = send_descriptor(plan.socket_fd, mount_fd, 'm'); err != 0) {
        errno = err;
        return report(plan.socket_fd, 9);
    }
    return 0;
}

}  // namespace

Result<UniqueFd> make_overlay_mount_in_userns(const OverlayMountSpec& spec, int userns_fd, int directory_fd) {
    if (spec.lowers.empty()) return fail("an overlay needs at least one lower directory");
    int sockets[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0)
        return fail_errno("socketpair");
    UniqueFd ours(sockets[0]);
    UniqueFd theirs(sockets[1]);
    Plan plan{.userns_fd = userns_fd, .socket_fd = theirs.get(), .directory_fd = directory_fd, .options = {}};
    for (const std::string& lower : spec.lowers) plan.options.emplace_back("lowerdir+", lower.c_str());
    if (!spec.upper.empty()) {
        plan.options.emplace_back("upperdir", spec.upper.c_str());
        plan.options.emplace_back("workdir", spec.work.c_str());
    }
    plan.options.emplace_back("userxattr", nullptr);
    KILN_ASSIGN(ClonedProcess child, ClonedProcess::spawn(0, child_main, &plan));
    theirs.reset();

    // One record: the byte 'm' with the mount's fd, or a Failure.
    Failure failure{};
    ReceivedMessage received = receive_descriptor(ours.get(), &failure, sizeof failure);
    ssize_t n = received.size;
    int receive_errno = received.err;
    UniqueFd mount = std::move(received.fd);
    KILN_ASSIGN(int status, child.wait());
    if (mount) return mount;
    if (n == static_cast<ssize_t>(sizeof failure) && failure.step > 0 && failure.step <= 10)
        return fail(Error::from_errno(
            str_cat("creating an overlay as root of the RUN's user namespace: ", k_step_names[failure.step]),
            failure.err));
    if (n < 0) return fail(Error::from_errno("receiving the overlay mount from its child", receive_errno));
    return fail(
        str_cat("creating an overlay as root of the RUN's user namespace: the child ended with status ",
                status, " without a mount"));
}

}  // namespace kiln
