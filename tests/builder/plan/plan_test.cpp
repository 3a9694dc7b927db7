#include "builder/plan/plan.hpp"

#include <algorithm>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/builder/fakes.hpp"

namespace kiln {
namespace {

const BuildPlatforms k_platforms{.target = {.os = "linux", .architecture = "amd64"},
                                  .build = {.os = "linux", .architecture = "amd64"}};

struct Planned {
    dockerfile::Dockerfile dockerfile;
    Result<BuildPlan> plan;
    std::vector<std::string> resolved;  // the images the planner asked for
};

// Images a, b, c and debian:3 exist, each with an empty config; `images` adds others.
Planned plan_of(const std::string& text, const std::string& target = "",
                std::vector<std::pair<std::string, std::string>> build_arg_flags = {},
                std::map<std::string, RunConfig> images = {}) {
    auto parsed = dockerfile::parse_dockerfile(text, "Dockerfile");
    EXPECT_TRUE(parsed) << parsed.error().message();
    BuildArgs build_args(build_arg_flags);
    auto meta = MetaArgs::evaluate(*parsed, build_args, k_platforms);
    EXPECT_TRUE(meta);
    test::FakeImageSource source;
    for (const char* name : {"a", "b", "c", "debian:3"}) source.add(name, RunConfig{});
    for (auto& [name, config] : images) source.add(name, config);
    auto plan = plan_build(PlanInputs{.dockerfile = *parsed,
                                      .meta_args = *meta,
                                      .build_args = build_args,
                                      .target = target,
                                      .platform = k_platforms.target,
                                      .images = source});
    return {std::move(*parsed), std::move(plan), source.resolved()};
}

const Step& step_of(const BuildPlan& plan, size_t stage, size_t number) {
    for (const Step& step : plan.find(stage)->steps)
        if (step.number == number) return step;
    throw std::runtime_error("no such step");
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

// The bug this plan fixes: --from was expanded with global ARGs only, so an ARG declared in the stage left the
// stage it names unbuilt ("stage a is not available").
TEST(Plan, CopyFromAnArgDeclaredInTheStageNamesThatStage) {
    auto planned = plan_of("FROM a AS tools\nFROM b AS other\nFROM c\nARG SRC=tools\nCOPY --from=${SRC} /x /x\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{0, 2}));
    EXPECT_EQ(planned.plan->find(2)->reads, (std::vector<size_t>{0}));
    const auto& copy = std::get<CopyStep>(step_of(*planned.plan, 2, 3).action);
    EXPECT_EQ(copy.from, SourceRef::of_stage(0));
}

TEST(Plan, CopyFromABuildArgOverridingTheStageArgNamesThatStage) {
    auto planned = plan_of("FROM a AS one\nFROM b AS two\nFROM c\nARG SRC=one\nCOPY --from=$SRC /x /x\n", "",
                           {{"SRC", "two"}});
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(indices(*planned.plan), (std::vector<size_t>{1, 2}));
}

TEST(Plan, CopyFromTheBaseImagesEnvNamesThatStage) {
    RunConfig with_env;
    with_env.set_env("SRC", "tools");
    auto planned = plan_of("FROM a AS tools\nFROM withenv\nCOPY --from=$SRC /x /x\n", "", {},
                           {{"withenv", with_env}});
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(planned.plan->find(1)->reads, (std::vector<size_t>{0}));
}

TEST(Plan, OnlyTheImagesOfNeededStagesAreResolved) {
    auto planned = plan_of("FROM missing AS unused\nFROM a AS used\nFROM used\nRUN true\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(planned.resolved, (std::vector<std::string>{"a"}));
}

TEST(Plan, AnUnresolvableBaseFailsAtItsFromLine) {
    auto planned = plan_of("FROM a\nRUN true\nFROM missing\n");
    ASSERT_FALSE(planned.plan);
    EXPECT_TRUE(planned.plan.error().message().starts_with("Dockerfile:3: FROM missing: "))
        << planned.plan.error().message();
}

TEST(Plan, AnErrorInALaterInstructionFailsThePlanWithItsLine) {
    auto planned = plan_of("FROM a\nRUN true\nEXPOSE 80/bogus\n");
    ASSERT_FALSE(planned.plan);
    EXPECT_EQ(planned.plan.error().message(), "Dockerfile:3: EXPOSE 80/bogus: invalid port \"80/bogus\"");
}

TEST(Plan, StepsCarryEveryWordExpandedInTheirScope) {
    auto planned = plan_of(
        "FROM a\nARG DIR=/app\nENV NAME=kiln\nWORKDIR $DIR\nUSER ${NAME}\nCOPY --chown=$NAME ${NAME}.txt ./\n"
        "RUN --mount=type=cache,target=cache echo $NAME\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    const auto& workdir = std::get<WorkdirStep>(step_of(*planned.plan, 0, 4).action);
    EXPECT_EQ(workdir.path, "/app");
    const auto& copy = std::get<CopyStep>(step_of(*planned.plan, 0, 6).action);
    EXPECT_EQ(copy.sources, (std::vector<std::string>{"kiln.txt"}));
    EXPECT_EQ(copy.destination, "app");
    EXPECT_TRUE(copy.destination_is_directory);
    EXPECT_EQ(copy.chown, "kiln");
    const auto& run = std::get<RunStep>(step_of(*planned.plan, 0, 7).action);
    EXPECT_EQ(run.user, "kiln");
    EXPECT_EQ(run.working_directory, "/app");
    EXPECT_EQ(run.argv, (std::vector<std::string>{"/bin/sh", "-c", "echo $NAME"}));
    ASSERT_EQ(run.mounts.size(), 1u);
    EXPECT_EQ(run.mounts[0].target, "/app/cache");
    EXPECT_NE(std::find(run.environment.begin(), run.environment.end(), "DIR=/app"), run.environment.end());
    EXPECT_NE(std::find(run.environment.begin(), run.environment.end(), "NAME=kiln"), run.environment.end());
}

TEST(Plan, ConfigStepsCarryTheConfigTheyLeaveAndNoAction) {
    auto planned = plan_of("FROM a\nENV A=1\nVOLUME /data\nLABEL x=y\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    const Step& volume = step_of(*planned.plan, 0, 3);
    EXPECT_FALSE(volume.changes_files()) << "VOLUME only declares the volume";
    EXPECT_EQ(volume.config.volumes, (std::set<std::string>{"/data"}));
    EXPECT_EQ(step_of(*planned.plan, 0, 4).config.labels.at("x"), "y");
    EXPECT_EQ(step_of(*planned.plan, 0, 4).config.env_value("A"), "1");
}

TEST(Plan, ARunAfterVolumeKnowsTheVolumes) {
    auto planned = plan_of("FROM a\nVOLUME /data /cache\nRUN true\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    const auto& run = std::get<RunStep>(step_of(*planned.plan, 0, 3).action);
    EXPECT_EQ(run.volumes, (std::vector<std::string>{"/cache", "/data"}));
}

TEST(Plan, AStageFromAStageStartsWithItsParentsFinalConfigAndRunsItsOnbuildTriggers) {
    auto planned = plan_of("FROM a AS base\nENV FROM_BASE=1\nONBUILD RUN echo trigger\nFROM base\nRUN true\n");
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    const PlannedStage& child = *planned.plan->find(1);
    EXPECT_EQ(child.start_config.env_value("FROM_BASE"), "1");
    EXPECT_TRUE(child.start_config.on_build.empty());
    ASSERT_EQ(child.steps.size(), 2u);
    EXPECT_EQ(child.steps[0].number, 0u) << "the trigger runs first";
    EXPECT_EQ(std::get<RunStep>(child.steps[0].action).argv.back(), "echo trigger");
}

TEST(Plan, AStepDigestChangesWithWhatTheStepDoesAndNothingElse) {
    auto first = plan_of("FROM a\nARG V=1\nRUN echo $V\n");
    auto same = plan_of("FROM a\nARG V=1\nLABEL unrelated=yes\nRUN echo $V\n");
    auto other = plan_of("FROM a\nARG V=1\nRUN echo $V\n", "", {{"V", "2"}});
    ASSERT_TRUE(first.plan && same.plan && other.plan);
    Digest digest = step_digest(step_of(*first.plan, 0, 3));
    EXPECT_EQ(digest, step_digest(step_of(*same.plan, 0, 4))) << describe_step(step_of(*same.plan, 0, 4));
    EXPECT_NE(digest, step_digest(step_of(*other.plan, 0, 3)));
    EXPECT_NE(describe_step(step_of(*first.plan, 0, 3)).find("V=1"), std::string::npos);
}

TEST(Plan, AChainOfThousandsOfStagesPlansWithoutRecursion) {
    std::string text = "FROM a AS s0\n";
    for (int i = 1; i < 20000; ++i) text += str_cat("FROM s", i - 1, " AS s", i, "\n");
    auto planned = plan_of(text);
    ASSERT_TRUE(planned.plan) << planned.plan.error().message();
    EXPECT_EQ(planned.plan->stages.size(), 20000u);
    EXPECT_FALSE(planned.plan->has_parallel_stages());
}

}  // namespace
}  // namespace kiln
