#pragma once
// A child process started with clone(2) into new namespaces, owned like a file descriptor: dropped while
// still running, it is killed and reaped, so no error path can leave a sandbox process behind.

#include <sys/types.h>

#include <optional>

#include "common/error.hpp"

namespace kiln {

class ClonedProcess {
public:
    // The child runs entry(argument) on its own stack and exits with its return value. It shares nothing with
    // the parent but a copy of memory and fds, so it may only make async-signal-safe calls: prepare every
    // string and array before spawning. `namespace_flags` are CLONE_NEW* flags.
    using Entry = int (*)(void*);
    static Result<ClonedProcess> spawn(int namespace_flags, Entry entry, void* argument);

    ClonedProcess(ClonedProcess&& other) noexcept;
    ClonedProcess& operator=(ClonedProcess&& other) noexcept;
    ClonedProcess(const ClonedProcess&) = delete;
    ClonedProcess& operator=(const ClonedProcess&) = delete;
    ~ClonedProcess();

    pid_t pid() const { return m_pid; }

    // Waits for the child to end and returns its raw wait status (decode with exit_code_from_wait_status).
    Result<int> wait();

    // Returns the wait status if the child has ended, nullopt while it runs.
    Result<std::optional<int>> try_wait();

    // SIGKILLs and reaps the child if it still runs.
    void kill_and_reap();

private:
    explicit ClonedProcess(pid_t pid) : m_pid(pid) {}
    pid_t m_pid = -1;
};

}  // namespace kiln
