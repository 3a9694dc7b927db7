#pragma once
// A RUN step's stdout or stderr: a pipe of kiln's, relayed by a thread to one of kiln's own descriptors. The
// step writes to the pipe rather than to kiln's descriptor because a step reopens it as /dev/stdout or
// /dev/stderr (`tee /dev/stderr`), and kiln's own (a pipe or file of the pod's runtime, owned by another id)
// would refuse the step's unprivileged id. The pipe is opened to every id: only the step holds it.

#include <memory>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

class OutputRelay {
public:
    // Starts relaying to `target`, which must stay open until finish(). kiln's stderr is the build log: what
    // is meant for it is logged line by line (run_output events of the calling thread's stage and step), so
    // that labels and --log-format apply to it.
    static Result<std::unique_ptr<OutputRelay>> start(int target);
    // Relays what is written to the fifo `name` in the directory `directory_fd` (a step's /dev/stdout where
    // there is no /proc to reopen its descriptors through). kiln holds a write end of its own until finish(),
    // so that the relay outlasts every writer; close_write_end() must not be called.
    static Result<std::unique_ptr<OutputRelay>> start_from_fifo(int directory_fd, const std::string& name,
                                                                 int target);
    // Closes the write end (if still open) and waits until every copy of it is closed and the pipe drained.
    ~OutputRelay();
    OutputRelay(const OutputRelay&) = delete;
    OutputRelay& operator=(const OutputRelay&) = delete;

    // What the step writes to.
    int write_fd() const { return m_write.get(); }
    // Once the step holds its copy: kiln's is closed, so that the step's ending ends the relay.
    void close_write_end() { m_write.reset(); }
    // Waits for the relay to end: after the step (and everything it started) is gone.
    void finish();

private:
    OutputRelay() = default;
    void start_thread();
    UniqueFd m_read;
    UniqueFd m_write;
    int m_target = -1;
    std::thread m_thread;
};

}  // namespace kiln
