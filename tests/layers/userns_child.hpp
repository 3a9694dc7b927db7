#pragma once
// Runs a test body in a child process that is root in a new user namespace mapping only the caller's own ids
// (kiln's single-id fallback): chown to other ids fails there, mknod of devices too, and the kernel stores
// file capabilities in their namespaced (v3) form.

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

namespace kiln::test {

// Returns the body's exit code, -1 when user namespaces are not available here, -2 when the child died.
inline int run_in_user_namespace(const std::function<int()>& body) {
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::unshare(CLONE_NEWUSER) != 0) ::_exit(77);
        auto write_proc = [](const char* path, const std::string& text) {
            int fd = ::open(path, O_WRONLY | O_CLOEXEC);
            bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
            if (fd >= 0) ::close(fd);
            return ok;
        };
        if (!write_proc("/proc/self/setgroups", "deny") ||
            !write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
            !write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
            ::_exit(77);
        ::_exit(body());
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -2;
    return WEXITSTATUS(status) == 77 ? -1 : WEXITSTATUS(status);
}

// Like run_in_user_namespace(), but the namespace's root is `host_uid`:`host_gid`, mapped by this (parent)
// process as newuidmap would, so that host root can test with ids that differ from the image's. Needs
// CAP_SETUID and CAP_SETGID here; returns -1 when that or user namespaces are not available.
inline int run_in_user_namespace_as(uid_t host_uid, gid_t host_gid, const std::function<int()>& body) {
    int ready[2], go[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return -1;
    if (::pipe2(go, O_CLOEXEC) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
        char byte = ::unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
        if (::write(ready[1], &byte, 1) != 1 || byte != 'y') ::_exit(77);
        // The parent writes the maps; then become the namespace's root, which is host_uid outside.
        if (::read(go[0], &byte, 1) != 1 || byte != 'y') ::_exit(77);
        if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) ::_exit(77);
        ::_exit(body());
    }
    ::close(ready[1]);
    ::close(go[0]);
    char byte = 0;
    bool mapped = ::read(ready[0], &byte, 1) == 1 && byte == 'y';
    auto write_proc = [pid](const char* file, const std::string& text) {
        std::string path = "/proc/" + std::to_string(pid) + "/" + file;
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        if (fd >= 0) ::close(fd);
        return ok;
    };
    mapped = mapped && write_proc("uid_map", "0 " + std::to_string(host_uid) + " 1") &&
             write_proc("setgroups", "deny") && write_proc("gid_map", "0 " + std::to_string(host_gid) + " 1");
    // Only a child that is mapped is told to go. One that could not unshare may have exited already, and
    // writing to it would raise SIGPIPE; closing the pipe tells any other to give up.
    byte = 'y';
    bool told = !mapped || ::write(go[1], &byte, 1) == 1;
    ::close(ready[0]);
    ::close(go[1]);
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -2;
    if (!told) return -2;
    return WEXITSTATUS(status) == 77 ? -1 : WEXITSTATUS(status);
}

}  // namespace kiln::test
