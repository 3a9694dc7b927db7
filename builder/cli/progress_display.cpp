#include "builder/cli/progress_display.hpp"

#include <set>

#include "builder/cli/log_output.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

std::string who(const TransferSnapshot& transfer) {
    return transfer.stage.empty() ? transfer.label : str_cat("[", transfer.stage, "] ", transfer.label);
}

// The transfer as a "progress" object of the JSON log.
std::string json_progress(const TransferSnapshot& transfer, Clock::time_point now) {
    std::string message = str_cat(transfer.label, ": ", describe_progress(transfer, now));
    LogPlace place{.stage = transfer.stage};
    std::vector<LogField> fields{{"label", transfer.label},
                                 {"done", static_cast<std::int64_t>(transfer.done)},
                                 {"seconds", std::chrono::duration<double>(now - transfer.started).count()}};
    if (transfer.total > 0) fields.push_back({"total", static_cast<std::int64_t>(transfer.total)});
    LogRecord record{.level = LogLevel::info,
                     .event = LogEvent::progress,
                     .message = message,
                     .place = place,
                     .time = std::chrono::system_clock::now(),
                     .fields = fields};
    return format_log_record(record, LogOutputSettings{.format = LogFormat::json});
}

}  // namespace

Result<ProgressMode> parse_progress_mode(const std::string& value, bool terminal) {
    if (value == "auto") return terminal ? ProgressMode::tty : ProgressMode::plain;
    if (value == "tty") return ProgressMode::tty;
    if (value == "plain") return ProgressMode::plain;
    return fail(str_cat("--progress: expected auto, tty or plain, got \"", value, "\""));
}

std::string describe_progress(const TransferSnapshot& transfer, Clock::time_point now) {
    double seconds = std::chrono::duration<double>(now - transfer.started).count();
    std::string text = format_bytes(transfer.done);
    if (transfer.total > 0) {
        auto percent = static_cast<unsigned>(100.0 * static_cast<double>(transfer.done) /
                                             static_cast<double>(transfer.total));
        text += str_cat(" of ", format_bytes(transfer.total), " (", std::min(percent, 100u), "%)");
    }
    if (seconds >= 0.5 && transfer.done > 0) {
        double rate = static_cast<double>(transfer.done) / seconds;
        text += str_cat(", ", format_bytes(static_cast<std::uint64_t>(rate)), "/s");
        if (transfer.total > transfer.done) {
            auto left =
                static_cast<std::uint64_t>(static_cast<double>(transfer.total - transfer.done) / rate + 0.5);
            text += str_cat(", about ", left, " s left");
        }
    }
    return text;
}

ProgressRenderer::ProgressRenderer(ProgressMode mode, ProgressTiming timing)
    : m_mode(mode), m_timing(timing) {}

std::string ProgressRenderer::erase() const {
    // To the start of the block's first line, then everything below it cleared.
    return m_block_lines == 0 ? "" : str_cat("\033[", m_block_lines, "F\033[J");
}

std::string ProgressRenderer::update(const std::vector<TransferSnapshot>& transfers, Clock::time_point now) {
    if (m_mode == ProgressMode::tty) {
        std::string before = m_block;
        std::string out = erase();
        out += draw(transfers, now);
        return m_block == before ? "" : out;
    }
    std::string out;
    for (const TransferSnapshot* transfer : due(transfers, now))
        out += m_mode == ProgressMode::json ? json_progress(*transfer, now)
                                            : str_cat(who(*transfer), ": ", describe_progress(*transfer, now), "\n");
    return out;
}

std::vector<const TransferSnapshot*> ProgressRenderer::due(const std::vector<TransferSnapshot>& transfers,
                                                           Clock::time_point now) {
    std::vector<const TransferSnapshot*> lines;
    std::set<std::uint64_t> live;
    for (const TransferSnapshot& transfer : transfers) {
        live.insert(transfer.id);
        if (now - transfer.started < m_timing.plain_after) continue;
        auto printed = m_printed.find(transfer.id);
        if (printed != m_printed.end() && now - printed->second < m_timing.plain_every) continue;
        lines.push_back(&transfer);
        m_printed[transfer.id] = now;
    }
    std::erase_if(m_printed, [&](const auto& entry) { return !live.contains(entry.first); });
    return lines;
}

std::string ProgressRenderer::draw(const std::vector<TransferSnapshot>& transfers, Clock::time_point now) {
    m_block.clear();
    for (const TransferSnapshot& transfer : transfers)
        m_block += str_cat(who(transfer), "  ", describe_progress(transfer, now), "\n");
    m_block_lines = transfers.size();
    return m_block;
}

std::string ProgressRenderer::line(std::string_view text, const std::vector<TransferSnapshot>& transfers,
                                   Clock::time_point now) {
    if (m_mode != ProgressMode::tty) return std::string(text);
    std::string out = erase();
    out += text;
    out += draw(transfers, now);
    return out;
}

std::string ProgressRenderer::clear() {
    std::string out = erase();
    m_block.clear();
    m_block_lines = 0;
    return out;
}

ProgressDisplay::ProgressDisplay(ProgressMode mode, ProgressTiming timing)
    : m_mode(mode), m_renderer(mode, timing), m_thread([this] { run(); }) {}

ProgressDisplay::~ProgressDisplay() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_stop_changed.notify_all();
    m_thread.join();
    std::string out = m_renderer.clear();
    std::fwrite(out.data(), 1, out.size(), stderr);
}

void ProgressDisplay::write_line(std::string_view text) {
    std::lock_guard lock(m_mutex);
    std::string out = m_mode == ProgressMode::tty ? m_renderer.line(text, transfers_in_flight(), Clock::now())
                                                  : std::string(text);
    std::fwrite(out.data(), 1, out.size(), stderr);
}

void ProgressDisplay::run() {
    // A terminal is redrawn ten times a second; plain lines are due at most once a second.
    auto period =
        m_mode == ProgressMode::tty ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
    std::unique_lock lock(m_mutex);
    while (!m_stop_changed.wait_for(lock, period, [&] { return m_stopping; })) {
        std::string out = m_renderer.update(transfers_in_flight(), Clock::now());
        if (!out.empty()) std::fwrite(out.data(), 1, out.size(), stderr);
    }
}

}  // namespace kiln
