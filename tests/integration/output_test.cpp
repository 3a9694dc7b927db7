// What users see of a build: the JSON log, labelled RUN output, the summary and the trace files.

#include <fcntl.h>

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/concurrent_stages.hpp"
#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

using OutputTest = RunBuildTest;

// Every line of `output` as JSON; a line that does not parse fails the test.
std::vector<nlohmann::json> json_lines(const std::string& output) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);) {
        auto parsed = nlohmann::json::parse(line, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
        if (parsed.is_discarded()) continue;
        for (const char* key : {"time", "level", "event", "message"})
            EXPECT_TRUE(parsed.contains(key)) << key << " missing: " << line;
        lines.push_back(std::move(parsed));
    }
    return lines;
}

TEST_F(OutputTest, EveryLineOfAJsonLogIsAnObjectAndStepsCarryTheirStageAndStep) {
    // --use-new-run: a Kaniko flag whose warning comes while the flags are read, before the build starts.
    KilnRun run =
        build_ok(k_concurrent_stages, {"--cache-dir", case_path("cache"), "--log-format=json", "--use-new-run"});
    std::vector<nlohmann::json> lines = json_lines(run.output);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.front()["event"], "warning") << "the flag's warning, as an object";
    std::map<std::string, int> events;
    bool left_output = false;
    for (const nlohmann::json& line : lines) {
        std::string event = line["event"];
        ++events[event];
        if (event == "step_started" || event == "step_done") {
            EXPECT_TRUE(line.contains("stage") && line.contains("step")) << line.dump();
        }
        if (event == "step_done") {
            EXPECT_TRUE(line["seconds"].is_number() && line.contains("cache")) << line.dump();
        }
        if (event == "run_output" && line["message"] == "hello-from-left") {
            left_output = true;
            EXPECT_EQ(line["stage"], "left");
            EXPECT_EQ(line["step"], "2/2");
        }
    }
    // FROM and RUN in each of the first two stages; FROM and two COPYs in the last.
    EXPECT_EQ(events["step_started"], 7) << run.output;
    EXPECT_EQ(events["step_done"], 7) << run.output;
    EXPECT_GE(events["layer_written"], 4) << run.output;
    EXPECT_TRUE(left_output) << run.output;
}

TEST_F(OutputTest, AFailingBuildsJsonLogEndsWithTheErrorAsAnObject) {
    KilnRun run = build("FROM base\nRUN echo about-to-fail && exit 3\n", {"--log-format=json"});
    EXPECT_EQ(run.exit_code, 3) << run.output;
    std::vector<nlohmann::json> lines = json_lines(run.output);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["event"], "error") << run.output;
    EXPECT_EQ(lines.back()["level"], "error");
    EXPECT_TRUE(contains(lines.back()["message"].get<std::string>(), "Dockerfile:2")) << run.output;
}

TEST_F(OutputTest, ARegistryErrorInAJsonLogIsAnObjectNamingTheRegistry) {
    // Nothing listens on port 1: the base cannot be resolved.
    KilnRun run = build("FROM 127.0.0.1:1/nothing/here:1\nRUN true\n",
                        {"--log-format=json", "--insecure-pull", "--image-download-retry=0"});
    EXPECT_NE(run.exit_code, 0) << run.output;
    std::vector<nlohmann::json> lines = json_lines(run.output);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["event"], "error") << run.output;
    EXPECT_TRUE(contains(lines.back()["message"].get<std::string>(), "127.0.0.1:1")) << run.output;
}

TEST_F(OutputTest, RunOutputIsLabelledWithItsStageAndStepOnlyWhenStagesRunAtOnce) {
    KilnRun together = build_ok(k_concurrent_stages, {"--cache-dir", case_path("cache")});
    EXPECT_TRUE(contains(together.output, "\n[left 2/2] hello-from-left\n")) << together.output;
    EXPECT_TRUE(contains(together.output, "\n[right 2/2] hello-from-right\n")) << together.output;
    KilnRun alone = build_ok("FROM base\nRUN echo hello-alone\n");
    EXPECT_TRUE(contains(alone.output, "\nhello-alone\n")) << alone.output;
}

TEST_F(OutputTest, TheSummaryFileHoldsEveryStepAndTheLogEndsWithTheSummary) {
    std::string summary_path = case_path("summary.json");
    KilnRun run = build_ok("FROM base\nENV A=1\nRUN echo one > /one\nCOPY Dockerfile /copied\n",
                           {"--summary-file", summary_path});
    auto text = read_file(summary_path);
    ASSERT_TRUE(text) << text.error().message();
    nlohmann::json summary = nlohmann::json::parse(*text);
    EXPECT_EQ(summary["result"], "succeeded");
    EXPECT_TRUE(summary["image_digest"].get<std::string>().starts_with("sha256:"));
    ASSERT_EQ(summary["steps"].size(), 4u) << summary.dump(2);
    std::vector<std::string> instructions;
    for (const nlohmann::json& step : summary["steps"]) {
        instructions.push_back(step["instruction"]);
        EXPECT_TRUE(step["seconds"].is_number()) << step.dump();
        EXPECT_EQ(step["finished"], true);
    }
    EXPECT_EQ(instructions, (std::vector<std::string>{"FROM base", "ENV A=1", "RUN echo one > /one",
                                                      "COPY Dockerfile /copied"}));
    EXPECT_TRUE(summary["steps"][2].contains("layer_digest")) << summary.dump(2);
    for (const char* phase : {"pull", "extract", "run", "snapshot", "compress", "push"})
        EXPECT_TRUE(summary["phase_seconds"][phase].is_number()) << phase;
    EXPECT_TRUE(contains(run.output, "summary:\n")) << run.output;
    EXPECT_TRUE(contains(run.output, "time by phase: pull")) << run.output;
}

TEST_F(OutputTest, AFailedBuildStillWritesItsSummary) {
    std::string summary_path = case_path("summary.json");
    KilnRun run = build("FROM base\nRUN exit 7\n", {"--summary-file", summary_path});
    EXPECT_EQ(run.exit_code, 7) << run.output;
    auto text = read_file(summary_path);
    ASSERT_TRUE(text) << text.error().message();
    nlohmann::json summary = nlohmann::json::parse(*text);
    EXPECT_EQ(summary["result"], "failed");
    EXPECT_TRUE(contains(summary["error"].get<std::string>(), "exited with code 7")) << summary.dump(2);
    ASSERT_EQ(summary["steps"].size(), 2u);
    EXPECT_EQ(summary["steps"][1]["finished"], false);
}

TEST_F(OutputTest, TheTraceFileHasASlicePerStepAndConcurrentStagesOverlap) {
    std::string trace_path = case_path("trace.json");
    build_ok(k_concurrent_stages, {"--cache-dir", case_path("cache"), "--trace-file", trace_path});
    auto text = read_file(trace_path);
    ASSERT_TRUE(text) << text.error().message();
    nlohmann::json trace = nlohmann::json::parse(*text);
    ASSERT_TRUE(trace["traceEvents"].is_array());
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> stages;  // name → start, end (µs)
    int steps = 0;
    for (const nlohmann::json& event : trace["traceEvents"]) {
        ASSERT_TRUE(event.contains("ph") && event.contains("pid") && event.contains("name")) << event.dump();
        if (event["ph"] != "X") continue;
        ASSERT_TRUE(event["ts"].is_number_integer() && event["dur"].is_number_integer() &&
                    event.contains("tid"));
        if (event["cat"] == "step") ++steps;
        if (event["cat"] == "stage")
            stages[event["name"]] = {event["ts"].get<std::int64_t>(),
                                     event["ts"].get<std::int64_t>() + event["dur"].get<std::int64_t>()};
    }
    EXPECT_EQ(steps, 7);
    ASSERT_TRUE(stages.contains("left") && stages.contains("right")) << trace.dump();
    EXPECT_LT(stages["left"].first, stages["right"].second);
    EXPECT_LT(stages["right"].first, stages["left"].second);
}

// scripts/trace-view puts a real trace into a page that draws it: the trace comes back whole from the page, and
// an instruction that spells the end of a script element, or the comment that changes how one is read, cannot
// end it or start markup of its own.
TEST_F(OutputTest, TheTraceViewPageHoldsTheTraceWholeAndNoInstructionEndsItsScript) {
    std::string trace_path = case_path("trace.json");
    build_ok("FROM base\nRUN echo '</script><img src=x><!--<script>' > /made\n", {"--trace-file", trace_path});
    std::string page_path = case_path("trace.html");
    auto made = run_process({source_path("scripts/trace-view"), trace_path, page_path, "a <b>title</b>"});
    ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->stderr_bytes : made.error().message());
    auto page = read_file(page_path);
    ASSERT_TRUE(page) << page.error().message();
    const std::string open = "<script id=\"trace\" type=\"application/json\">";
    size_t start = page->find(open);
    ASSERT_NE(start, std::string::npos);
    start += open.size();
    size_t end = page->find("</script>", start);
    ASSERT_NE(end, std::string::npos);
    auto embedded = nlohmann::json::parse(page->substr(start, end - start), nullptr, false);
    ASSERT_FALSE(embedded.is_discarded()) << "the page's trace is not JSON";
    EXPECT_EQ(embedded, nlohmann::json::parse(*read_file(trace_path)));
    EXPECT_TRUE(embedded.dump().contains("</script><img src=x><!--<script>")) << "the instruction is in the trace";
    EXPECT_FALSE(page->substr(start, end - start).contains("<")) << "no markup of the trace's reaches the page";
    EXPECT_FALSE(page->contains("<b>title</b>"));
}

// A Dockerfile may hold bytes that are not UTF-8: the summary and the trace replace them, as the JSON log does,
// rather than failing a build that succeeded.
TEST_F(OutputTest, BytesThatAreNotUtf8InTheDockerfileStillGiveASummaryAndATrace) {
    std::string summary_path = case_path("summary.json"), trace_path = case_path("trace.json");
    build_ok("FROM base\nLABEL k=\"\xff\xfe\"\nRUN echo \xff > /f\n",
             {"--summary-file", summary_path, "--trace-file", trace_path});
    for (const std::string& path : {summary_path, trace_path}) {
        auto text = read_file(path);
        ASSERT_TRUE(text) << text.error().message();
        EXPECT_FALSE(nlohmann::json::parse(*text, nullptr, false).is_discarded()) << path;
        EXPECT_TRUE(text->contains("\xEF\xBF\xBD")) << path << " has the replacement character";
    }
}

// A RUN's line longer than the log's pieces is cut between characters: every piece is whole UTF-8.
TEST_F(OutputTest, ALongLineOfRunOutputIsCutBetweenCharacters) {
    KilnRun run = build_ok("FROM base\nRUN yes \xc3\xa9 | head -n 100000 | tr -d '\\n' >&2\n", {"--log-format=json"});
    std::string joined;
    int pieces = 0;
    for (const nlohmann::json& line : json_lines(run.output)) {
        if (line["event"] != "run_output") continue;
        std::string piece = line["message"];
        EXPECT_FALSE(piece.contains("\xEF\xBF\xBD")) << "a character was cut";
        joined += piece;
        ++pieces;
    }
    EXPECT_GE(pieces, 3);
    std::string expected;
    for (int i = 0; i < 100000; ++i) expected += "\xc3\xa9";
    EXPECT_EQ(joined, expected);
}

// --cleanup, Kaniko's flag: the work directory (extracted layers, mounts, the memory budget's tmpfs) is gone
// when kiln exits, not left to a process in the background that a container's end may kill.
TEST_F(OutputTest, CleanupLeavesNothingInTheWorkDirectoryWhenKilnExits) {
    std::string work = case_path("work");
    ASSERT_TRUE(make_directories(work));
    build_ok("FROM base\nRUN echo made > /made\n", {"--work-dir", work, "--cleanup"});
    UniqueFd dir(::open(work.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir);
    auto left = list_directory(dir.get(), work);
    ASSERT_TRUE(left) << left.error().message();
    EXPECT_TRUE(left->empty()) << join(*left, ", ");
}

}  // namespace
}  // namespace kiln::test
