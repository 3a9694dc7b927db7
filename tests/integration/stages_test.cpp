// Independent stages build concurrently; failures are reported deterministically.

#include <gtest/gtest.h>

#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

using StagesTest = RunBuildTest;

// Each stage leaves its mark in a shared cache mount and waits for the other's: this can only succeed when
// both stages run at the same time (sequentially, the first would give up after its 60 s).
constexpr const char* k_rendezvous = R"DF(FROM base AS left
RUN --mount=type=cache,id=rendezvous,target=/meet,sharing=shared \
    touch /meet/left && i=0 && while [ ! -f /meet/right ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done && \
    test -f /meet/right && echo left > /done
FROM base AS right
RUN --mount=type=cache,id=rendezvous,target=/meet,sharing=shared \
    touch /meet/right && i=0 && while [ ! -f /meet/left ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done && \
    test -f /meet/left && echo right > /done
FROM base
COPY --from=left /done /left
COPY --from=right /done /right
)DF";

TEST_F(StagesTest, IndependentStagesRunAtTheSameTime) {
    KilnRun run = build_ok(k_rendezvous, {"--cache-dir", case_path("cache")});
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

}  // namespace
}  // namespace kiln::test
