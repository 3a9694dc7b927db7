#include "builder/plan/plan.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

const BuildPlatforms k_platforms{.target = {.os = "linux", .architecture = "amd64"},
                                  .build = {.os = "linux", .architecture = "amd64"}};

struct Planned {
    dockerfile::Dockerfile dockerfile;
    Result<BuildPlan> plan;
};

Planned plan_of(const std::string& text, const std::string& target = "",
                std::vector<std::pair<std::string, std::string>> build_arg_flags = {}) {
    auto parsed = dockerfile::parse_dockerfile(text, "Dockerfile");
    EXPECT_TRUE(parsed) << parsed.error().message();
    BuildArgs build_args(build_arg_flags);
    auto meta = MetaArgs::evaluate(*parsed, build_args, k_platforms);
    EXPECT_TRUE(meta);
    auto plan = plan_build(*parsed, *meta, target);
    return {std::move(*parsed), std::move(plan)};
}

std::vector<size_t> indices(const BuildPlan& plan) {
    std::vector<size_t> result;
    for (const auto& stage : plan.stages) result.push_back(stage.index);
    return result;
}

TEST(Plan, TargetIsTheLastStageAndUnusedStagesAreSkipped) {
    auto planned = plan_of("FROM a AS one\nFROM b AS two\nFROM c\nCOPY --from=one /x /x\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(planned.plan->target, 2u);
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{0, 2}));
}

TEST(Plan, TargetFlagSelectsAStageCaseInsensitively) {
    auto planned = plan_of("FROM a AS Builder\nFROM builder AS test\nFROM c\n", "TEST");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(planned.plan->target, 1u);
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{0, 1}));
    EXPECT_EQ(planned.plan->stages[1].base_stage, 0u);
}

TEST(Plan, UnknownTargetListsTheStages) {
    auto planned = plan_of("FROM a AS one\nFROM b AS two\n", "three");
    ASSERT_FALSE(planned.plan);
    EXPECT_NE(planned.plan.error().message().find("one, two"), std::string::npos);
}

TEST(Plan, CopyFromAcceptsAStageNumber) {
    auto planned = plan_of("FROM a\nFROM b\nFROM c\nCOPY --from=1 /x /x\n");
    ASSERT_TRUE(planned.plan);
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{1, 2}));
}

TEST(Plan, CopyFromAnIndexWithoutSuchAStageIsAnErrorWithTheLine) {
    auto planned = plan_of("FROM a\nFROM b\nCOPY --from=2 /x /x\n");
    ASSERT_FALSE(planned.plan);
    EXPECT_NE(planned.plan.error().message().find("Dockerfile:3"), std::string::npos) << planned.plan.error().message();
    EXPECT_NE(planned.plan.error().message().find("--from=2"), std::string::npos);
}

TEST(Plan, RunMountFromAStageNeedsThatStage) {
    auto planned = plan_of("FROM a AS tools\nFROM b AS unused\nFROM c\nRUN --mount=type=bind,from=tools,target=/t true\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{0, 2}));
    EXPECT_EQ(planned.plan->find(0)->readers, 1u);
}

TEST(Plan, FromExpandsMetaArgsAndBuildArgsOverrideThem) {
    auto planned = plan_of("ARG BASE=alpine\nFROM ${BASE}:3\n", "", {{"BASE", "debian"}});
    ASSERT_TRUE(planned.plan);
    EXPECT_EQ(planned.plan->stages[0].base, "debian:3");
}

TEST(Plan, ReadersCountEveryLaterUse) {
    auto planned = plan_of("FROM a AS base\nFROM base AS x\nCOPY --from=base /a /a\nFROM base\nCOPY --from=x /b /b\n");
    ASSERT_TRUE(planned.plan);
    // Stage x uses base twice (its FROM would otherwise take base's filesystem away from its own COPY), and the
    // last stage once more.
    EXPECT_EQ(planned.plan->find(0)->readers, 3u);
    EXPECT_EQ(planned.plan->find(1)->readers, 1u);
}

TEST(Plan, FromALaterStageNameIsAnImage) {
    auto planned = plan_of("FROM later AS first\nFROM scratch AS later\n");
    ASSERT_TRUE(planned.plan);
    EXPECT_FALSE(planned.plan->find(1)->base_stage.has_value());
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{1}));
}

TEST(Plan, EmptyBaseAfterExpansionIsAnErrorWithTheLine) {
    auto planned = plan_of("ARG BASE\nFROM ${BASE}\n");
    ASSERT_FALSE(planned.plan);
    EXPECT_NE(planned.plan.error().message().find("Dockerfile:2"), std::string::npos);
}

}  // namespace
}  // namespace kiln
