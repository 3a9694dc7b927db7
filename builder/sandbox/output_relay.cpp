#include "builder/sandbox/output_relay.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// A line longer than this is logged in pieces of about this size.
constexpr size_t k_longest_line = 64 << 10;

// Where to cut a piece of `text` (longer than k_longest_line): not inside a UTF-8 character, unless the bytes
// there are no UTF-8 anyway.
size_t piece_end(std::string_view text) {
    size_t end = k_longest_line;
    for (size_t back = 0; back < 3 && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80; ++back) --end;
    return (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80 ? k_longest_line : end;
}

// Logs what `from` brings, line by line (without the newline), until its last writer is gone.
void relay_lines(int from) {
    std::string pending;
    char buffer[1 << 14];
    while (true) {
        ssize_t n = ::read(from, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        pending.append(buffer, static_cast<size_t>(n));
        size_t begin = 0;
        for (size_t newline; (newline = pending.find('\n', begin)) != std::string::npos; begin = newline + 1)
            log_event(LogLevel::info, LogEvent::run_output, std::string_view(pending).substr(begin, newline - begin));
        pending.erase(0, begin);
        while (pending.size() > k_longest_line) {
            size_t end = piece_end(pending);
            log_event(LogLevel::info, LogEvent::run_output, std::string_view(pending).substr(0, end));
            pending.erase(0, end);
        }
    }
    if (!pending.empty()) log_event(LogLevel::info, LogEvent::run_output, pending);
}

}  // namespace

Result<std::unique_ptr<OutputRelay>> OutputRelay::start(int target) {
    std::unique_ptr<OutputRelay> relay(new OutputRelay());
    KILN_ASSIGN(auto pipe, make_pipe());
    relay->m_read = std::move(pipe.first);
    relay->m_write = std::move(pipe.second);
    relay->m_target = target;
    // A pipe is mode 0600 for the id that made it; the step reopens it as its own.
    if (::fchmod(relay->m_write.get(), 0666) != 0) return fail_errno("chmod the RUN's output pipe");
    relay->start_thread();
    return relay;
}

Result<std::unique_ptr<OutputRelay>> OutputRelay::start_from_fifo(int directory_fd, const std::string& name,
                                                                  int target) {
    std::unique_ptr<OutputRelay> relay(new OutputRelay());
    // The read end first, without waiting for a writer; then kiln's own writer, so that opening never blocks.
    relay->m_read.reset(::openat(directory_fd, name.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
    if (relay->m_read)
        relay->m_write.reset(::openat(directory_fd, name.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (!relay->m_read || !relay->m_write || ::fstat(relay->m_read.get(), &st) != 0 || !S_ISFIFO(st.st_mode))
        return fail_errno(str_cat("open the fifo ", name, " for the RUN's output"));
    int flags = ::fcntl(relay->m_read.get(), F_GETFL);
    if (flags < 0 || ::fcntl(relay->m_read.get(), F_SETFL, flags & ~O_NONBLOCK) != 0)
        return fail_errno(str_cat("make the fifo ", name, " blocking"));
    relay->m_target = target;
    relay->start_thread();
    return relay;
}

void OutputRelay::start_thread() {
    int from = m_read.get();
    int target = m_target;
    if (target == STDERR_FILENO) {
        // kiln's stderr is the build log: the step's lines go through it, as the step's (run_output events).
        m_thread = std::thread([from, place = LogLabel::current()] {
            LogLabel labelled(place);
            relay_lines(from);
        });
        return;
    }
    m_thread = std::thread([from, target] {
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
}

void OutputRelay::finish() {
    m_write.reset();
    if (m_thread.joinable()) m_thread.join();
}

OutputRelay::~OutputRelay() { finish(); }

}  // namespace kiln
