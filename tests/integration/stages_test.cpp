// Independent stages build concurrently; failures are reported deterministically.

#include <gtest/gtest.h>

#include <chrono>

#include "common/strings.hpp"
#include "tests/integration/concurrent_stages.hpp"
#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

using StagesTest = RunBuildTest;

TEST_F(StagesTest, IndependentStagesRunAtTheSameTime) {
    KilnRun run = build_ok(k_concurrent_stages, {"--cache-dir", case_path("cache")});
    EXPECT_EQ(content_of("left"), "left\n");
    EXPECT_EQ(content_of("right"), "right\n");
}

TEST_F(StagesTest, TheLowestNumberedFailingStageIsTheOneReported) {
    // Stage 0 fails late and stage 1 early; the report does not depend on which finishes first.
    KilnRun run = build("FROM base AS slow\nRUN sleep 1 && exit 3\nFROM base AS fast\nRUN exit 4\n"
                        "FROM base\nCOPY --from=slow /x /x\nCOPY --from=fast /y /y\n");
    EXPECT_EQ(run.exit_code, 3) << run.output;
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
}

TEST_F(StagesTest, AStageWhoseDependencyFailedIsNeverStarted) {
    KilnRun run = build("FROM base AS broken\nRUN exit 5\nFROM broken AS after\nRUN echo never-started-marker\n");
    EXPECT_EQ(run.exit_code, 5) << run.output;
    EXPECT_FALSE(contains(run.output, "[after 2/2]")) << run.output;
}

// --from was once expanded with global ARGs only: an ARG declared in the stage named a stage that was never
// built ("stage tools is not available: the build plan did not build it").
TEST_F(StagesTest, CopyFromAnArgDeclaredInTheStageReadsThatStage) {
    build_ok("FROM base AS tools\nRUN echo from-tools > /made\nFROM base AS other\nRUN echo wrong > /made\n"
             "FROM base\nARG SRC=tools\nCOPY --from=${SRC} /made /copied\n");
    EXPECT_EQ(content_of("copied"), "from-tools\n");
}

TEST_F(StagesTest, CopyFromAStageArgTakesItsBuildArgValue) {
    build_ok("FROM base AS tools\nRUN echo from-tools > /made\nFROM base AS other\nRUN echo from-other > /made\n"
             "FROM base\nARG SRC=tools\nCOPY --from=$SRC /made /copied\n",
             {"--build-arg", "SRC=other"});
    EXPECT_EQ(content_of("copied"), "from-other\n");
}

// VOLUME once added a layer holding the volume's empty directory. As buildah (and BuildKit and Kaniko, which
// never make it), a VOLUME that no RUN follows adds neither a layer nor the directory.
TEST_F(StagesTest, VolumeAsTheLastInstructionAddsNoLayer) {
    build_ok("FROM base\n");
    size_t base_layers = layer_count();
    build_ok("FROM base\nVOLUME [\"/data\"]\n");
    EXPECT_EQ(layer_count(), base_layers);
    EXPECT_FALSE(exists("data"));
    EXPECT_TRUE(config()["config"]["Volumes"].contains("/data")) << config().dump();
}

// Thousands of chained stages (FROM s1 AS s2, FROM s2 AS s3, …) once took time quadratic in their number:
// 5.1 s for 1,000, 51.5 s for 3,000, and 10,000 never finished, because kiln ran a thread per stage and woke
// all of them whenever one ended. The growth is asserted, not a wall time: linear growth gives a ratio near
// 4 between 10,000 stages and 2,500, quadratic growth 16.
TEST_F(StagesTest, ChainedStagesBuildInTimeLinearInTheirNumber) {
    auto seconds_for = [&](int stages) {
        std::string dockerfile = "FROM scratch AS s0\n";
        for (int i = 1; i < stages; ++i) dockerfile += str_cat("FROM s", i - 1, " AS s", i, "\n");
        EXPECT_TRUE(write_file_atomic(case_path(str_cat("Dockerfile.", stages)), dockerfile));
        auto start = std::chrono::steady_clock::now();
        KilnRun run = run_kiln({"build", "--context", context_path(""), "--dockerfile",
                                case_path(str_cat("Dockerfile.", stages)), "--no-push", "--snapshotter=walk",
                                "--verbosity=warn"});
        EXPECT_EQ(run.exit_code, 0) << run.output;
        return seconds_since(start);
    };
    double few = seconds_for(2500);
    double many = seconds_for(10000);
    EXPECT_LT(many / few, 8.0) << few << " s for 2,500 chained stages, " << many << " s for 10,000";
}

// Each stage's lines name it when stages may run at once, so that interleaved output can be told apart.
TEST_F(StagesTest, ConcurrentStagesNameThemselvesOnEveryLine) {
    KilnRun run = build_ok("FROM base AS left\nRUN echo l > /l\nFROM base AS right\nRUN echo r > /r\n"
                           "FROM base\nCOPY --from=left /l /l\nCOPY --from=right /r /r\n");
    for (const std::string& line : split(run.output, '\n')) {
        if (contains(line, "  layer ") || contains(line, "  done in")) {
            EXPECT_TRUE(line.starts_with("[left]") || line.starts_with("[right]") || line.starts_with("[stage 2]"))
                << line;
        }
    }
    EXPECT_TRUE(contains(run.output, "[left]   layer ")) << run.output;
}

}  // namespace
}  // namespace kiln::test
