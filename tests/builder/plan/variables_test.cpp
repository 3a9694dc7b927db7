#include "builder/plan/variables.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using Flags = std::vector<std::pair<std::string, std::string>>;
const BuildPlatforms k_platforms{.target = {.os = "linux", .architecture = "arm64", .variant = "v8"},
                                 .build = {.os = "linux", .architecture = "amd64"}};

TEST(MetaArgs, DefaultsUseEarlierMetaArgsAndBuildArgsWin) {
    auto parsed = dockerfile::parse_dockerfile("ARG A=1\nARG B=${A}2\nARG C\nFROM scratch\n");
    ASSERT_TRUE(parsed);
    BuildArgs build_args(Flags{{"C", "given"}});
    auto meta = MetaArgs::evaluate(*parsed, build_args, k_platforms);
    ASSERT_TRUE(meta) << meta.error().message();
    EXPECT_EQ(meta->value("B"), "12");
    EXPECT_EQ(meta->value("C"), "given");
    EXPECT_TRUE(build_args.unused().empty());
}

TEST(StageArgs, ABareArgInheritsTheMetaValueOnlyWhenRedeclared) {
    auto parsed = dockerfile::parse_dockerfile("ARG VERSION=1.0\nFROM scratch\n");
    BuildArgs build_args(Flags{});
    auto meta = MetaArgs::evaluate(*parsed, build_args, k_platforms);
    StageArgs args;
    RunConfig config;
    EXPECT_FALSE(args.expansion_lookup(config)("VERSION").has_value());
    args.declare("VERSION", std::nullopt, build_args, *meta);
    EXPECT_EQ(args.expansion_lookup(config)("VERSION"), "1.0");
}

TEST(StageArgs, BuildArgBeatsTheDefaultAndIsMarkedUsed) {
    BuildArgs build_args(Flags{{"MODE", "release"}, {"UNUSED", "x"}});
    MetaArgs meta;
    StageArgs args;
    args.declare("MODE", std::string("debug"), build_args, meta);
    EXPECT_EQ(args.expansion_lookup(RunConfig{})("MODE"), "release");
    EXPECT_EQ(build_args.unused(), std::vector<std::string>{"UNUSED"});
}

TEST(StageArgs, EnvShadowsArgInExpansionAndInTheRunEnvironment) {
    BuildArgs build_args(Flags{});
    MetaArgs meta;
    StageArgs args;
    args.declare("NAME", std::string("from-arg"), build_args, meta);
    args.declare("ONLY_ARG", std::string("a"), build_args, meta);
    args.declare("UNSET", std::nullopt, build_args, meta);
    RunConfig config;
    config.set_env("NAME", "from-env");
    EXPECT_EQ(args.expansion_lookup(config)("NAME"), "from-env");
    auto env = args.run_environment(config);
    EXPECT_EQ(std::count(env.begin(), env.end(), "NAME=from-env"), 1);
    EXPECT_EQ(std::count(env.begin(), env.end(), "NAME=from-arg"), 0);
    EXPECT_EQ(std::count(env.begin(), env.end(), "ONLY_ARG=a"), 1);
    for (const auto& entry : env) EXPECT_FALSE(entry.starts_with("UNSET")) << entry;
}

TEST(MetaArgs, PredefinedPlatformArgsReachFromLinesAndSurviveABareRedeclaration) {
    auto parsed = dockerfile::parse_dockerfile("ARG TARGETARCH\nFROM scratch\n");
    ASSERT_TRUE(parsed);
    BuildArgs build_args(Flags{});
    auto meta = MetaArgs::evaluate(*parsed, build_args, k_platforms);
    ASSERT_TRUE(meta) << meta.error().message();
    EXPECT_EQ(meta->value("TARGETARCH"), "arm64");
    EXPECT_EQ(meta->value("TARGETPLATFORM"), "linux/arm64/v8");
    EXPECT_EQ(meta->value("TARGETVARIANT"), "v8");
    EXPECT_EQ(meta->value("BUILDPLATFORM"), "linux/amd64");
    EXPECT_EQ(meta->value("BUILDVARIANT"), "");
}

TEST(StageArgs, PlatformArgsAreVisibleInAStageOnlyOnceDeclared) {
    auto parsed = dockerfile::parse_dockerfile("FROM scratch\n");
    BuildArgs build_args(Flags{});
    auto meta = MetaArgs::evaluate(*parsed, build_args, k_platforms);
    StageArgs args;
    EXPECT_FALSE(args.expansion_lookup(RunConfig{})("TARGETOS").has_value());
    args.declare("TARGETOS", std::nullopt, build_args, *meta);
    EXPECT_EQ(args.expansion_lookup(RunConfig{})("TARGETOS"), "linux");
}

TEST(BuildArgs, ProxyArgsReachRunWithoutDeclarationAndAreNeverUnused) {
    BuildArgs build_args(Flags{{"https_proxy", "http://proxy:3128"}, {"NO_PROXY", "localhost"}, {"OTHER", "x"}});
    EXPECT_EQ(build_args.unused(), std::vector<std::string>{"OTHER"});
    StageArgs args;
    args.set_proxy_environment(build_args.proxy_environment());
    RunConfig config;
    config.set_env("NO_PROXY", "from-env");
    auto env = args.run_environment(config);
    EXPECT_EQ(std::count(env.begin(), env.end(), "https_proxy=http://proxy:3128"), 1);
    EXPECT_EQ(std::count(env.begin(), env.end(), "NO_PROXY=localhost"), 0);  // the image's ENV wins
    EXPECT_FALSE(args.expansion_lookup(config)("https_proxy").has_value());  // not an ARG of the stage
}

TEST(StageArgs, RunEnvironmentGetsTheDefaultPathOnlyWhenMissing) {
    StageArgs args;
    RunConfig config;
    auto env = args.run_environment(config);
    EXPECT_EQ(env, std::vector<std::string>{std::string("PATH=") + k_default_path});
    config.set_env("PATH", "/opt/bin");
    EXPECT_EQ(args.run_environment(config), std::vector<std::string>{"PATH=/opt/bin"});
}

}  // namespace
}  // namespace kiln
