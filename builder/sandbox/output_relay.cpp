#include "builder/sandbox/output_relay.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace kiln {

Result<std::unique_ptr<OutputRelay>> OutputRelay::start(int target) {
    std::unique_ptr<OutputRelay> relay(new OutputRelay());
    KILN_ASSIGN(auto pipe, make_pipe());
    relay->m_read = std::move(pipe.first);
    relay->m_write = std::move(pipe.second);
    relay->m_target = target;
    // A pipe is mode 0600 for the id that made it; the step reopens it as its own.
    if (::fchmod(relay->m_write.get(), 0666) != 0) return fail_errno("chmod the RUN's output pipe");
    int from = relay->m_read.get();
    relay->m_thread = std::thread([from, target] {
        char buffer[1 << 14];
        bool target_open = true;
        while (true) {
            ssize_t n = ::read(from, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            // A target that stopped taking output (a closed pipe) is drained on, so the step never blocks.
            for (ssize_t done = 0; target_open && done < n;) {
                ssize_t written = ::write(target, buffer + done, static_cast<size_t>(n - done));
                if (written < 0 && errno == EINTR) continue;
                if (written <= 0) {
                    target_open = false;
                    break;
                }
                done += written;
            }
        }
    });
    return relay;
}

void OutputRelay::finish() {
    m_write.reset();
    if (m_thread.joinable()) m_thread.join();
}

OutputRelay::~OutputRelay() { finish(); }

}  // namespace kiln
