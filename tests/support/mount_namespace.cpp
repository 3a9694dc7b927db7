#include "tests/support/mount_namespace.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln::test {

int in_private_mount_namespace(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            ::_exit(77);
        ::_exit(body());
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

size_t mounts_at_or_below(const std::string& path) {
    size_t count = 0;
    for (const std::string& line : split(read_file("/proc/self/mountinfo").value_or(""), '\n')) {
        // "id parent major:minor root mount-point …": the fifth field.
        std::vector<std::string> fields = split(line, ' ');
        if (fields.size() < 5) continue;
        if (fields[4] == path || fields[4].starts_with(path + "/")) ++count;
    }
    return count;
}

}  // namespace kiln::test
