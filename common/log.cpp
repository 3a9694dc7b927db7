#include "common/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

namespace kiln {
namespace {

std::mutex g_sink_mutex;
thread_local LogPlace t_place;

void default_sink(const LogRecord& record) {
    if (record.level < LogLevel::warn) return;
    std::string line = std::string(log_level_name(record.level)) + ": " + record.text() + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
}

RecordSink& current_sink() {
    static RecordSink sink = default_sink;
    return sink;
}

void send(LogLevel level, LogEvent event, std::string_view message, const std::vector<LogField>& fields) {
    LogRecord record{.level = level,
                     .event = event,
                     .message = message,
                     .place = t_place,
                     .time = std::chrono::system_clock::now(),
                     .fields = fields};
    std::lock_guard lock(g_sink_mutex);
    current_sink()(record);
}

}  // namespace

std::string LogRecord::text() const {
    if (!place.shown || place.stage.empty()) return std::string(message);
    if (event == LogEvent::run_output) {
        std::string where = place.step.empty() ? place.stage : str_cat(place.stage, " ", place.step);
        return str_cat("[", where, "] ", message);
    }
    if (message.starts_with("[" + place.stage)) return std::string(message);
    return str_cat("[", place.stage, "] ", message);
}

const LogValue* LogRecord::field(std::string_view name) const {
    for (const LogField& field : fields)
        if (field.name == name) return &field.value;
    return nullptr;
}

void set_log_sink(LogSink sink) {
    if (!sink) return set_record_sink(nullptr);
    set_record_sink([sink = std::move(sink)](const LogRecord& record) { sink(record.level, record.text()); });
}

void set_record_sink(RecordSink sink) {
    std::lock_guard lock(g_sink_mutex);
    current_sink() = sink ? std::move(sink) : RecordSink(default_sink);
}

void log(LogLevel level, std::string_view message) {
    send(level, LogEvent::message, message, {});
}

void log_event(LogLevel level, LogEvent event, std::string_view message, std::vector<LogField> fields) {
    send(level, event, message, fields);
}

LogLabel::LogLabel(std::string stage, StageLabel text)
    : LogLabel(LogPlace{.stage = std::move(stage), .step = {}, .shown = text == StageLabel::shown}) {}

LogLabel::LogLabel(LogPlace place) : m_previous(std::exchange(t_place, std::move(place))) {}

LogLabel::~LogLabel() {
    t_place = std::move(m_previous);
}

const LogPlace& LogLabel::current() {
    return t_place;
}

LogStep::LogStep(std::string step) : m_previous(std::exchange(t_place.step, std::move(step))) {}

LogStep::~LogStep() {
    t_place.step = std::move(m_previous);
}

std::string_view log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warning";
        case LogLevel::error:
            return "error";
    }
    return "?";
}

std::string_view log_event_name(LogEvent event, LogLevel level) {
    switch (event) {
        case LogEvent::message:
            if (level == LogLevel::error) return "error";
            if (level == LogLevel::warn) return "warning";
            return "message";
        case LogEvent::step_started:
            return "step_started";
        case LogEvent::step_done:
            return "step_done";
        case LogEvent::layer_written:
            return "layer_written";
        case LogEvent::layer_extracted:
            return "layer_extracted";
        case LogEvent::blob_pulled:
            return "blob_pulled";
        case LogEvent::blob_pushed:
            return "blob_pushed";
        case LogEvent::run_output:
            return "run_output";
        case LogEvent::run_done:
            return "run_done";
        case LogEvent::phase_done:
            return "phase_done";
        case LogEvent::progress:
            return "progress";
    }
    return "message";
}

}  // namespace kiln
