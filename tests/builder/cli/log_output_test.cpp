// The lines kiln's log becomes on stderr, for each --log-format.
#include "builder/cli/log_output.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

const auto k_time = std::chrono::system_clock::from_time_t(1796665200) + std::chrono::milliseconds(42);

std::string line_of(LogLevel level, LogEvent event, std::string_view message, const LogPlace& place,
                    const std::vector<LogField>& fields, LogOutputSettings settings) {
    LogRecord record{
        .level = level, .event = event, .message = message, .place = place, .time = k_time, .fields = fields};
    return format_log_record(record, settings);
}

TEST(LogOutputTest, AJsonLineCarriesTimeLevelEventPlaceMessageAndFields) {
    LogPlace place{.stage = "builder", .step = "2/4", .shown = false};
    std::string line =
        line_of(LogLevel::info, LogEvent::step_done, "  done in 1.50 s", place,
                {{"seconds", 1.5}, {"cache", std::string("miss")}, {"layer_size", std::int64_t{1234}}},
                {.format = LogFormat::json});
    ASSERT_TRUE(line.ends_with("\n"));
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
    nlohmann::json object = nlohmann::json::parse(line);
    EXPECT_EQ(object["time"], "2026-12-07T17:40:00.042Z");
    EXPECT_EQ(object["level"], "info");
    EXPECT_EQ(object["event"], "step_done");
    EXPECT_EQ(object["stage"], "builder");
    EXPECT_EQ(object["step"], "2/4");
    EXPECT_EQ(object["message"], "done in 1.50 s");
    EXPECT_EQ(object["seconds"], 1.5);
    EXPECT_EQ(object["cache"], "miss");
    EXPECT_EQ(object["layer_size"], 1234);
}

TEST(LogOutputTest, AJsonMessageIsAWarningOrAnErrorByItsLevelAndAFieldCannotReplaceAFixedKey) {
    LogPlace nowhere;
    nlohmann::json warning =
        nlohmann::json::parse(line_of(LogLevel::warn, LogEvent::message, "careful", nowhere,
                                      {{"level", std::string("info")}}, {.format = LogFormat::json}));
    EXPECT_EQ(warning["event"], "warning");
    EXPECT_EQ(warning["level"], "warning");
    EXPECT_FALSE(warning.contains("stage"));
    nlohmann::json error = nlohmann::json::parse(
        line_of(LogLevel::error, LogEvent::message, "broken", nowhere, {}, {.format = LogFormat::json}));
    EXPECT_EQ(error["event"], "error");
}

TEST(LogOutputTest, ARunsOutputThatIsNotUtf8StillMakesOneJsonLine) {
    LogPlace place{.stage = "stage 0", .step = "2/2", .shown = false};
    std::string line = line_of(LogLevel::info, LogEvent::run_output, "  bytes \xff\xfe here", place, {},
                               {.format = LogFormat::json});
    nlohmann::json object = nlohmann::json::parse(line);
    EXPECT_EQ(object["event"], "run_output");
    EXPECT_TRUE(object["message"].get<std::string>().starts_with("  bytes "))
        << "kept as printed, indentation too";
}

TEST(LogOutputTest, BelowTheVerbosityNothingPrintsButARunsOutputAlwaysDoes) {
    LogPlace nowhere;
    for (LogFormat format : {LogFormat::text, LogFormat::json}) {
        LogOutputSettings settings{.verbosity = LogLevel::warn, .format = format};
        EXPECT_EQ(line_of(LogLevel::info, LogEvent::message, "progress", nowhere, {}, settings), "");
        EXPECT_NE(line_of(LogLevel::info, LogEvent::run_output, "hello", nowhere, {}, settings), "");
    }
}

TEST(LogOutputTest, TextShowsAnEventWithoutTextAsNothingAndWarningsWithTheirLevel) {
    LogPlace nowhere;
    EXPECT_EQ(line_of(LogLevel::info, LogEvent::step_done, "", nowhere, {{"seconds", 0.01}}, {}), "");
    EXPECT_EQ(line_of(LogLevel::warn, LogEvent::message, "careful", nowhere, {}, {}), "warning: careful\n");
    EXPECT_EQ(line_of(LogLevel::info, LogEvent::message, "plain", nowhere, {}, {.timestamps = true}),
              "2026-12-07T17:40:00Z plain\n");
}

TEST(LogOutputTest, ColourWrapsAStepsTitleAndAnErrorAndResetsAfterwards) {
    LogPlace nowhere;
    std::string title = line_of(LogLevel::info, LogEvent::step_started, "[stage 0 2/3] RUN make", nowhere, {},
                                {.format = LogFormat::color});
    EXPECT_EQ(title, "\033[1;34m[stage 0 2/3] RUN make\033[0m\n");
    std::string error =
        line_of(LogLevel::error, LogEvent::message, "broken", nowhere, {}, {.format = LogFormat::color});
    EXPECT_EQ(error, "\033[1;31merror: broken\033[0m\n");
    EXPECT_EQ(line_of(LogLevel::info, LogEvent::run_output, "out", nowhere, {}, {.format = LogFormat::color}),
              "out\n");
}

}  // namespace
}  // namespace kiln
