#pragma once
// Live progress of the transfers in flight (common/progress.hpp), as --progress asks:
//   tty    one line per transfer (bytes done, rate, time left), redrawn in place below the log, as BuildKit's
//          terminal progress is;
//   plain  for logs that are not a terminal: a line for a transfer that has lasted a few seconds, then one
//          at a steady interval while it goes on, never a flood;
//   json   as plain, each line a "progress" object of the JSON log (--log-format=json).

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/progress.hpp"

namespace kiln {

enum class ProgressMode { tty, plain, json };

// --progress: auto (tty on a terminal, plain elsewhere), tty or plain. `terminal`: whether stderr is one.
Result<ProgressMode> parse_progress_mode(const std::string& value, bool terminal);

struct ProgressTiming {
    std::chrono::milliseconds plain_after{3000};   // a transfer shorter than this prints no progress line
    std::chrono::milliseconds plain_every{10000};  // then a line this often
};

// What to write, given the transfers in flight: a pure function of what it is fed, for tests.
class ProgressRenderer {
public:
    explicit ProgressRenderer(ProgressMode mode, ProgressTiming timing = {});

    // A look at the transfers at `now`: the tty block redrawn, or the plain lines that are due.
    std::string update(const std::vector<TransferSnapshot>& transfers,
                       std::chrono::steady_clock::time_point now);
    // A line of the log (with its "\n"): on a tty, written above the transfers in flight at `now`, drawn
    // again below it.
    std::string line(std::string_view text, const std::vector<TransferSnapshot>& transfers,
                     std::chrono::steady_clock::time_point now);
    // The tty block taken away (at the end).
    std::string clear();

private:
    std::string erase() const;
    // plain and json: the transfers a line is due for at `now`, each then counted as printed.
    std::vector<const TransferSnapshot*> due(const std::vector<TransferSnapshot>& transfers,
                                             std::chrono::steady_clock::time_point now);
    // The tty block for `transfers`, kept as drawn.
    std::string draw(const std::vector<TransferSnapshot>& transfers,
                     std::chrono::steady_clock::time_point now);
    std::string m_block;       // the tty block as drawn
    size_t m_block_lines = 0;  // its lines
    ProgressMode m_mode;
    ProgressTiming m_timing;
    std::map<std::uint64_t, std::chrono::steady_clock::time_point>
        m_printed;  // plain: last line per transfer
};

// The renderer driven by a thread of its own, writing to stderr; the log's lines go through it.
class ProgressDisplay {
public:
    explicit ProgressDisplay(ProgressMode mode, ProgressTiming timing = {});
    ~ProgressDisplay();  // the tty block cleared, the thread stopped
    ProgressDisplay(const ProgressDisplay&) = delete;
    ProgressDisplay& operator=(const ProgressDisplay&) = delete;

    // Writes one line of the log.
    void write_line(std::string_view text);

private:
    void run();
    ProgressMode m_mode;
    ProgressRenderer m_renderer;
    std::mutex m_mutex;
    std::condition_variable m_stop_changed;
    bool m_stopping = false;
    std::thread m_thread;
};

// "12.3 MB of 40.0 MB (30%), 5.1 MB/s, about 6 s left": one transfer's progress at `now`.
std::string describe_progress(const TransferSnapshot& transfer, std::chrono::steady_clock::time_point now);

}  // namespace kiln
