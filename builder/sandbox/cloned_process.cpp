#include "builder/sandbox/cloned_process.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <memory>
#include <utility>

#include "common/strings.hpp"

namespace kiln {
namespace {

// The child's whole stack: the sandbox init and the re-exec trampoline use a few kilobytes, with headroom for
// the C library's own frames.
constexpr size_t k_stack_size = 256 * 1024;

}  // namespace

Result<ClonedProcess> ClonedProcess::spawn(int namespace_flags, Entry entry, void* argument) {
    // Without CLONE_VM the child gets a copy of this allocation, so it can be freed here as soon as clone
    // returns.
    std::unique_ptr<char[]> stack(new char[k_stack_size]);
    char* stack_top = stack.get() + k_stack_size;
    stack_top -= reinterpret_cast<uintptr_t>(stack_top) % 64;
    pid_t pid = ::clone(entry, stack_top, namespace_flags | SIGCHLD, argument);
    if (pid < 0) return fail_errno("clone");
    return ClonedProcess(pid);
}

ClonedProcess::ClonedProcess(ClonedProcess&& other) noexcept : m_pid(std::exchange(other.m_pid, -1)) {}

ClonedProcess& ClonedProcess::operator=(ClonedProcess&& other) noexcept {
    if (this != &other) {
        kill_and_reap();
        m_pid = std::exchange(other.m_pid, -1);
    }
    return *this;
}

ClonedProcess::~ClonedProcess() {
    kill_and_reap();
}

Result<int> ClonedProcess::wait() {
    if (m_pid < 0) return fail("wait: the child was already reaped");
    int status = 0;
    while (::waitpid(m_pid, &status, __WALL) < 0) {
        if (errno != EINTR) return fail_errno(str_cat("waitpid ", m_pid));
    }
    m_pid = -1;
    return status;
}

Result<std::optional<int>> ClonedProcess::try_wait() {
    if (m_pid < 0) return fail("wait: the child was already reaped");
    int status = 0;
    pid_t reaped = ::waitpid(m_pid, &status, WNOHANG | __WALL);
    if (reaped < 0) return fail_errno(str_cat("waitpid ", m_pid));
    if (reaped == 0) return std::optional<int>();
    m_pid = -1;
    return std::optional<int>(status);
}

void ClonedProcess::kill_and_reap() {
    if (m_pid < 0) return;
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (::waitpid(m_pid, &status, __WALL) < 0 && errno == EINTR) {
    }
    m_pid = -1;
}

}  // namespace kiln
