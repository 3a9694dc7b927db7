#include "builder/sandbox/userns_overlay.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
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
    if (::setgid(0) != 0) return report(plan.socket_fd, 2);
    if (::setuid(0) != 0) return report(plan.socket_fd, 3);
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
    char data = 'm';
    iovec iov{&data, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &mount_fd, sizeof(int));
    if (::sendmsg(plan.socket_fd, &message, MSG_NOSIGNAL) != 1) return report(plan.socket_fd, 9);
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
    iovec iov{&failure, sizeof failure};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(ours.get(), &message, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    int receive_errno = errno;
    UniqueFd mount;
    for (cmsghdr* header = n > 0 ? CMSG_FIRSTHDR(&message) : nullptr; header;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(header), sizeof fd);
            mount = UniqueFd(fd);
        }
    }
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
