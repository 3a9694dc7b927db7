#pragma once
// How kiln's log reaches stderr: plain text, text with colours for a terminal, or one JSON object per line
// (--log-format, Kaniko's flag). The README's "Output" section documents the JSON form.

#include <string>

#include "builder/options.hpp"
#include "common/log.hpp"

namespace kiln {

struct LogOutputSettings {
    LogLevel verbosity = LogLevel::info;  // records below it print nothing (a RUN's output always prints)
    bool timestamps = false;              // text: the time in front of each line
    LogFormat format = LogFormat::text;
};

// The line (ending in "\n") that `record` prints as, or "" when it prints nothing: below the verbosity, or an
// event with no text (a short step's end) in a text format.
std::string format_log_record(const LogRecord& record, const LogOutputSettings& settings);

}  // namespace kiln
