#pragma once
// What kiln does when its build is cancelled: Tekton and Kubernetes send SIGTERM when a run is cancelled, a
// terminal sends SIGINT. kiln says that it was cancelled and during which steps, disposes of its work
// directories (renamed at once, deleted by a detached process: work_dir.hpp), and exits with 143 or 130. The
// RUN steps end with it: each sandbox's init dies with kiln (PR_SET_PDEATHSIG), and with it the step's pid
// namespace; a chroot step's init ends the step when kiln's end of its pipe closes. kiln's mounts live in its
// private mount namespace, and the remover detaches those below the directory it deletes.

#include <cstdint>
#include <string>

namespace kiln {

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts later, and starts the thread
// that waits for them. Call once, before any other thread exists. Processes kiln starts get their own signal
// mask (posix_spawn's, or the sandbox's reset).
void handle_cancellation();

// While alive, names a step in progress ("[app 3/5] RUN make (Dockerfile:7)") for the cancellation message.
class StepInProgress {
public:
    explicit StepInProgress(std::string description);
    ~StepInProgress();
    StepInProgress(const StepInProgress&) = delete;
    StepInProgress& operator=(const StepInProgress&) = delete;

private:
    std::uint64_t m_id;
};

}  // namespace kiln
