#pragma once
// Libraries never print: they log through the one sink the CLI (or a test) installs.

#include <functional>
#include <string_view>

#include "common/strings.hpp"

namespace kiln {

enum class LogLevel { debug, info, warn, error };

using LogSink = std::function<void(LogLevel, std::string_view)>;

// Replaces the process's sink. The default writes warnings and errors to stderr. Thread-safe.
void set_log_sink(LogSink sink);

// Sends one message to the sink. Thread-safe.
void log(LogLevel level, std::string_view message);

template <class... Args>
void log_debug(const Args&... args) {
    log(LogLevel::debug, str_cat(args...));
}
template <class... Args>
void log_info(const Args&... args) {
    log(LogLevel::info, str_cat(args...));
}
template <class... Args>
void log_warn(const Args&... args) {
    log(LogLevel::warn, str_cat(args...));
}

std::string_view log_level_name(LogLevel level);

// Names the stage (or other unit of work) that this thread's log lines belong to, while it lives: each line
// gets "[label] " in front, unless it already starts with "[label". Threads started for the work carry the
// label on (run_bounded does). An empty label names nothing.
class LogLabel {
public:
    explicit LogLabel(std::string label);
    ~LogLabel();
    LogLabel(const LogLabel&) = delete;
    LogLabel& operator=(const LogLabel&) = delete;

    // This thread's label, "" when none.
    static const std::string& current();

private:
    std::string m_previous;
};

}  // namespace kiln
