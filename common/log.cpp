#include "common/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

namespace kiln {
namespace {

std::mutex g_sink_mutex;
thread_local std::string t_label;

void default_sink(LogLevel level, std::string_view message) {
    if (level < LogLevel::warn) return;
    std::string line = std::string(log_level_name(level)) + ": " + std::string(message) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
}

LogSink& current_sink() {
    static LogSink sink = default_sink;
    return sink;
}

}  // namespace

void set_log_sink(LogSink sink) {
    std::lock_guard lock(g_sink_mutex);
    current_sink() = sink ? std::move(sink) : LogSink(default_sink);
}

void log(LogLevel level, std::string_view message) {
    std::string labelled;
    if (!t_label.empty() && !message.starts_with("[" + t_label)) {
        labelled = "[" + t_label + "] ";
        labelled += message;
        message = labelled;
    }
    std::lock_guard lock(g_sink_mutex);
    current_sink()(level, message);
}

LogLabel::LogLabel(std::string label) : m_previous(std::exchange(t_label, std::move(label))) {}

LogLabel::~LogLabel() { t_label = std::move(m_previous); }

const std::string& LogLabel::current() { return t_label; }

std::string_view log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warning";
        case LogLevel::error: return "error";
    }
    return "?";
}

}  // namespace kiln
