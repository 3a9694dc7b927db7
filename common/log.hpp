#pragma once
// Libraries never print: they log through the one sink the CLI (or a test) installs. A line is a message, or
// an event with fields (a step done, a blob pushed) that structured sinks keep: --log-format=json, the
// summary and the trace.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/strings.hpp"

namespace kiln {

enum class LogLevel { debug, info, warn, error };

// What a line reports. Its fields are named in the comments; sizes are bytes, times seconds.
enum class LogEvent {
    message,       // a line of prose (a warning or an error, at those levels)
    step_started,  // instruction
    step_done,  // seconds, cache ("hit", "miss" or "off"), cache_source (on a hit), layer_digest, layer_size
    layer_written,    // digest, size, paths, seconds (the snapshot and its compression)
    layer_extracted,  // digest, seconds
    blob_pulled,      // digest, size, repository, seconds
    blob_pushed,      // digest, size, repository, seconds, how ("uploaded" or "mounted")
    run_output,       // a line a RUN step printed, as the message
    run_done,         // seconds (the RUN's command, in its sandbox)
    phase_done,       // phase, seconds
    progress,         // a transfer in flight: label, done, total (when known), seconds
};

// The JSON name of an event ("step_done"; a message is "message", "warning" or "error" by its level).
std::string_view log_event_name(LogEvent event, LogLevel level);

using LogValue = std::variant<std::string, std::int64_t, double>;
struct LogField {
    std::string name;
    LogValue value;
};

// Whom the logging thread works for: a stage, and a step of it.
struct LogPlace {
    std::string stage;   // its label ("stage 0", "builder"); "" outside any
    std::string step;    // "2/4"; "" outside a step
    bool shown = false;  // text puts "[stage] " in front of its lines (several stages run at once)
};

struct LogRecord {
    LogLevel level;
    LogEvent event;
    std::string_view message;  // without the place
    const LogPlace& place;
    std::chrono::system_clock::time_point time;
    const std::vector<LogField>& fields;

    // The line as text shows it: "[stage] " in front when the place is shown and the message does not already
    // start with "[stage" ("[stage step] " for a RUN's output).
    std::string text() const;
    // The field `name`, or null.
    const LogValue* field(std::string_view name) const;
};

using LogSink = std::function<void(LogLevel, std::string_view)>;
using RecordSink = std::function<void(const LogRecord&)>;

// Replaces the process's sink: `sink` gets each record's text(). The default writes warnings and errors to
// stderr. Thread-safe.
void set_log_sink(LogSink sink);
// As set_log_sink, for a sink that keeps the records' structure. Null restores the default.
void set_record_sink(RecordSink sink);

// Sends one message to the sink. Thread-safe.
void log(LogLevel level, std::string_view message);
// Sends one event to the sink, with its fields. Thread-safe.
void log_event(LogLevel level, LogEvent event, std::string_view message, std::vector<LogField> fields = {});

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

// Whether text output shows a stage's label in front of its lines.
enum class StageLabel { hidden, shown };

// Names the stage (or other unit of work) that this thread's log lines belong to, while it lives. Threads
// started for the work carry the place on (run_bounded does). An empty label names nothing.
class LogLabel {
public:
    // A label text shows: each line gets "[label] " in front, unless it already starts with "[label".
    explicit LogLabel(std::string label) : LogLabel(std::move(label), StageLabel::shown) {}
    LogLabel(std::string stage, StageLabel text);
    // The whole place of another thread.
    explicit LogLabel(LogPlace place);
    ~LogLabel();
    LogLabel(const LogLabel&) = delete;
    LogLabel& operator=(const LogLabel&) = delete;

    // This thread's place: its label is "" when none.
    static const LogPlace& current();

private:
    LogPlace m_previous;
};

// Names the step of the stage that this thread works on, while it lives ("2/4").
class LogStep {
public:
    explicit LogStep(std::string step);
    ~LogStep();
    LogStep(const LogStep&) = delete;
    LogStep& operator=(const LogStep&) = delete;

private:
    std::string m_previous;
};

}  // namespace kiln
