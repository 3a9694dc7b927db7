// The summary and the trace made of a build's log records, fed here as a scripted build would log them.
#include "builder/build_report.hpp"

#include <gtest/gtest.h>

#include <set>

namespace kiln {
namespace {

using Clock = std::chrono::system_clock;

class BuildReportTest : public ::testing::Test {
protected:
    Clock::time_point at(double seconds) const {
        return m_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    }
    void add(double seconds, LogEvent event, const std::string& stage, const std::string& step,
             std::string message = "", std::vector<LogField> fields = {}) {
        LogPlace place{.stage = stage, .step = step, .shown = true};
        LogRecord record{.level = LogLevel::info,
                         .event = event,
                         .message = message,
                         .place = place,
                         .time = at(seconds),
                         .fields = fields};
        m_report.add(record);
    }
    // Two stages at once, a (two steps) and b (one), then a push.
    void two_stages() {
        add(0.0, LogEvent::step_started, "a", "1/2", "[a 1/2] FROM debian",
            {{"instruction", std::string("FROM debian")}});
        add(0.1, LogEvent::step_started, "b", "1/1", "[b 1/1] FROM alpine",
            {{"instruction", std::string("FROM alpine")}});
        add(0.5, LogEvent::blob_pulled, "a", "1/2", "pulled",
            {{"digest", std::string("sha256:aaa")}, {"size", std::int64_t{10}}, {"seconds", 0.4}});
        add(0.6, LogEvent::blob_pulled, "b", "1/1", "pulled",
            {{"digest", std::string("sha256:bbb")}, {"size", std::int64_t{20}}, {"seconds", 0.4}});
        add(1.0, LogEvent::step_done, "a", "1/2", "", {{"seconds", 1.0}, {"cache", std::string("off")}});
        add(1.0, LogEvent::step_started, "a", "2/2", "[a 2/2] RUN make",
            {{"instruction", std::string("RUN make")}});
        add(1.5, LogEvent::run_done, "a", "2/2", "", {{"seconds", 0.4}});
        add(1.7, LogEvent::layer_written, "a", "2/2", "  layer",
            {{"digest", std::string("sha256:ccc")}, {"size", std::int64_t{300}}, {"seconds", 0.1}});
        add(1.8, LogEvent::step_done, "a", "2/2", "  done in 0.80 s",
            {{"seconds", 0.8},
             {"cache", std::string("miss")},
             {"layer_digest", std::string("sha256:ccc")},
             {"layer_size", std::int64_t{300}},
             {"commit_seconds", 0.25}});
        add(2.0, LogEvent::step_done, "b", "1/1", "", {{"seconds", 1.9}, {"cache", std::string("off")}});
        add(2.3, LogEvent::blob_pushed, "", "", "pushed",
            {{"digest", std::string("sha256:ccc")}, {"seconds", 0.2}, {"kind", std::string("layer")}});
    }
    Clock::time_point m_start = Clock::now();
    BuildReport m_report{m_start};
};

TEST_F(BuildReportTest, TheSummaryHoldsEveryStepWithItsCacheStatusAndLayer) {
    two_stages();
    nlohmann::ordered_json summary =
        m_report.summary(BuildOutcome{.succeeded = true, .image_digest = "sha256:fff", .error = ""});
    EXPECT_EQ(summary["result"], "succeeded");
    EXPECT_EQ(summary["image_digest"], "sha256:fff");
    ASSERT_EQ(summary["steps"].size(), 3u);
    const auto& run = summary["steps"][1];
    EXPECT_EQ(run["stage"], "a");
    EXPECT_EQ(run["step"], "2/2");
    EXPECT_EQ(run["instruction"], "RUN make");
    EXPECT_EQ(run["cache"], "miss");
    EXPECT_EQ(run["layer_digest"], "sha256:ccc");
    EXPECT_EQ(run["layer_size"], 300);
    EXPECT_DOUBLE_EQ(run["seconds"].get<double>(), 0.8);
    EXPECT_EQ(summary["steps"][2]["stage"], "b");
    const auto& phases = summary["phase_seconds"];
    EXPECT_NEAR(phases["pull"].get<double>(), 0.8, 1e-9);
    EXPECT_NEAR(phases["run"].get<double>(), 0.4, 1e-9);
    EXPECT_NEAR(phases["compress"].get<double>(), 0.1, 1e-9);
    EXPECT_NEAR(phases["snapshot"].get<double>(), 0.15, 1e-9) << "the commit's time less the layer's writing";
    EXPECT_NEAR(phases["push"].get<double>(), 0.2, 1e-9);
    EXPECT_NEAR(phases["extract"].get<double>(), 0.0, 1e-9);
}

TEST_F(BuildReportTest, AStepThatNeverEndedIsInTheSummaryAsUnfinished) {
    add(0.0, LogEvent::step_started, "stage 0", "2/3", "[stage 0 2/3] RUN false",
        {{"instruction", std::string("RUN false")}});
    nlohmann::ordered_json summary =
        m_report.summary(BuildOutcome{.succeeded = false, .image_digest = "", .error = "exit 1"});
    EXPECT_EQ(summary["result"], "failed");
    EXPECT_EQ(summary["error"], "exit 1");
    ASSERT_EQ(summary["steps"].size(), 1u);
    EXPECT_EQ(summary["steps"][0]["finished"], false);
    std::vector<std::string> lines = m_report.summary_lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_NE(lines[1].find("did not finish"), std::string::npos) << lines[1];
}

TEST_F(BuildReportTest, TheTraceHasASlicePerStepAndTheStagesOverlapOnRowsOfTheirOwn) {
    two_stages();
    nlohmann::json trace = m_report.trace();
    ASSERT_TRUE(trace["traceEvents"].is_array());
    std::map<std::string, nlohmann::json> stages;
    size_t steps = 0;
    std::set<int> pull_rows;
    for (const nlohmann::json& event : trace["traceEvents"]) {
        ASSERT_TRUE(event.contains("ph")) << event.dump();
        if (event["ph"] == "M") continue;
        ASSERT_EQ(event["ph"], "X") << event.dump();
        ASSERT_TRUE(event["ts"].is_number_integer() && event["dur"].is_number_integer()) << event.dump();
        ASSERT_GE(event["dur"].get<std::int64_t>(), 1);
        if (event["cat"] == "stage") stages[event["name"]] = event;
        if (event["cat"] == "step") ++steps;
        if (event["cat"] == "pull") pull_rows.insert(event["tid"].get<int>());
    }
    EXPECT_EQ(steps, 3u);
    ASSERT_EQ(stages.size(), 2u);
    const nlohmann::json& a = stages["a"];
    const nlohmann::json& b = stages["b"];
    EXPECT_NE(a["tid"], b["tid"]);
    auto ts = [](const nlohmann::json& e) { return e["ts"].get<std::int64_t>(); };
    auto end = [&](const nlohmann::json& e) { return ts(e) + e["dur"].get<std::int64_t>(); };
    EXPECT_LT(ts(b), end(a));
    EXPECT_LT(ts(a), end(b));
    EXPECT_NEAR(static_cast<double>(end(a)), 1.8e6, 2.0) << "stage a ends with its last step";
    EXPECT_EQ(pull_rows.size(), 2u) << "two pulls at once take a row each";
}

}  // namespace
}  // namespace kiln
