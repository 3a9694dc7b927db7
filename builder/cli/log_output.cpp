#include "builder/cli/log_output.hpp"

#include <ctime>

#include <nlohmann/json.hpp>

#include "common/strings.hpp"

namespace kiln {
namespace {

// "2026-12-07T17:35:45.123Z", or to the second.
std::string utc_time(std::chrono::system_clock::time_point time, bool milliseconds) {
    std::time_t seconds = std::chrono::system_clock::to_time_t(time);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    if (!milliseconds) return str_cat(text, "Z");
    auto since_second = time - std::chrono::system_clock::from_time_t(seconds);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_second).count();
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03d", static_cast<int>(millis < 0 ? 0 : millis % 1000));
    return str_cat(text, fraction, "Z");
}

std::string json_line(const LogRecord& record) {
    nlohmann::ordered_json line;
    line["time"] = utc_time(record.time, true);
    line["level"] = log_level_name(record.level);
    line["event"] = log_event_name(record.event, record.level);
    if (!record.place.stage.empty()) line["stage"] = record.place.stage;
    if (!record.place.step.empty()) line["step"] = record.place.step;
    // Text indents some lines under their step; JSON has the step as a field. A RUN's output is kept as it
    // is.
    line["message"] = record.event == LogEvent::run_output ? record.message : trim(record.message);
    for (const LogField& field : record.fields) {
        if (line.contains(field.name)) continue;  // the fixed keys are never overwritten
        std::visit([&](const auto& value) { line[field.name] = value; }, field.value);
    }
    // Bytes that are not UTF-8 (a RUN's output may be anything) are replaced rather than refused.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// The colour a line of text gets on a terminal, or "".
std::string_view colour_of(const LogRecord& record) {
    if (record.level == LogLevel::error) return "\033[1;31m";
    if (record.level == LogLevel::warn) return "\033[33m";
    if (record.event == LogEvent::step_started) return "\033[1;34m";
    if (record.level == LogLevel::debug) return "\033[2m";
    if (record.event == LogEvent::step_done) return "\033[2m";
    return "";
}

}  // namespace

std::string format_log_record(const LogRecord& record, const LogOutputSettings& settings) {
    if (record.level < settings.verbosity && record.event != LogEvent::run_output) return "";
    if (settings.format == LogFormat::json) return json_line(record);
    if (record.message.empty() && record.event != LogEvent::run_output && record.event != LogEvent::message)
        return "";
    std::string line;
    if (settings.timestamps) line += utc_time(record.time, false) + " ";
    std::string_view colour = settings.format == LogFormat::color ? colour_of(record) : "";
    line += colour;
    if (record.level >= LogLevel::warn) line += str_cat(log_level_name(record.level), ": ");
    line += record.text();
    if (!colour.empty()) line += "\033[0m";
    line += '\n';
    return line;
}

}  // namespace kiln
