// Grouping instructions into stages: meta ARGs, names, and the errors of a malformed file.

#include <gtest/gtest.h>

#include "dockerfile-parser/stages.hpp"

namespace kiln::dockerfile {
namespace {

Dockerfile parse_ok(std::string_view text) {
    Result<Dockerfile> dockerfile = parse_dockerfile(text, "build/Dockerfile");
    EXPECT_TRUE(dockerfile) << (dockerfile ? "" : dockerfile.error().message());
    return dockerfile ? std::move(*dockerfile) : Dockerfile{};
}

std::string parse_error(std::string_view text) {
    Result<Dockerfile> dockerfile = parse_dockerfile(text, "build/Dockerfile");
    EXPECT_FALSE(dockerfile) << "parsed";
    return dockerfile ? "" : dockerfile.error().message();
}

TEST(Stages, InstructionsAreGroupedUnderTheirFrom) {
    Dockerfile dockerfile = parse_ok(
        "FROM golang:1.22 AS Build\nWORKDIR /src\nRUN go build\n\nFROM scratch\nCOPY --from=build /src/app /app\n"
        "ENTRYPOINT [\"/app\"]\n");
    ASSERT_EQ(dockerfile.stages.size(), 2u);
    const Stage& build = dockerfile.stages[0];
    EXPECT_EQ(build.index, 0u);
    EXPECT_EQ(build.name, "build");
    EXPECT_EQ(build.from.stage_name, "Build");
    EXPECT_EQ(build.from.image, "golang:1.22");
    EXPECT_EQ(build.location.start_line, 1);
    ASSERT_EQ(build.instructions.size(), 2u);
    EXPECT_TRUE(std::holds_alternative<WorkdirInstruction>(build.instructions[0]));
    const Stage& final_stage = dockerfile.stages[1];
    EXPECT_EQ(final_stage.index, 1u);
    EXPECT_EQ(final_stage.name, "");
    EXPECT_EQ(final_stage.location.start_line, 5);
    ASSERT_EQ(final_stage.instructions.size(), 2u);
    EXPECT_EQ(std::get<CopyInstruction>(final_stage.instructions[0]).from, "build");
}

TEST(Stages, ArgsBeforeTheFirstFromAreMetaArgs) {
    Dockerfile dockerfile = parse_ok("ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG:-latest}\nARG BASE\n");
    ASSERT_EQ(dockerfile.meta_args.size(), 2u);
    EXPECT_EQ(dockerfile.meta_args[0].args[0].name, "BASE");
    EXPECT_EQ(dockerfile.meta_args[0].args[0].default_value, "alpine");
    ASSERT_EQ(dockerfile.stages.size(), 1u);
    EXPECT_EQ(dockerfile.stages[0].from.image, "${BASE}:${TAG:-latest}");
    ASSERT_EQ(dockerfile.stages[0].instructions.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<ArgInstruction>(dockerfile.stages[0].instructions[0]));
}

TEST(Stages, FindStageIsCaseInsensitive) {
    Dockerfile dockerfile = parse_ok("FROM a AS Deps\nFROM b AS final\n");
    ASSERT_NE(dockerfile.find_stage("DEPS"), nullptr);
    EXPECT_EQ(dockerfile.find_stage("deps")->index, 0u);
    EXPECT_EQ(dockerfile.find_stage("missing"), nullptr);
}

TEST(Stages, DirectivesAndWarningsAreCarried) {
    Dockerfile dockerfile = parse_ok("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM a\nRUN x `\n\n  y\n");
    EXPECT_EQ(dockerfile.syntax, "docker/dockerfile:1.7");
    EXPECT_EQ(dockerfile.escape, '`');
    ASSERT_EQ(dockerfile.warnings.size(), 1u);
    EXPECT_EQ(dockerfile.warnings[0].message, "Empty continuation line found in: RUN x   y");
}

TEST(Stages, InstructionBeforeFromIsAnError) {
    std::string error = parse_error("ARG A\nRUN echo\nFROM a\n");
    EXPECT_NE(error.find("build/Dockerfile:2: RUN before the first FROM"), std::string::npos) << error;
}

TEST(Stages, FileWithoutFromIsAnError) {
    EXPECT_NE(parse_error("ARG A\n").find("no FROM"), std::string::npos);
}

TEST(Stages, EmptyFileIsAnError) {
    EXPECT_NE(parse_error("").find("file with no instructions"), std::string::npos);
}

TEST(Stages, DuplicateStageNamesAreAnError) {
    std::string error = parse_error("FROM a AS x\nFROM b AS X\n");
    EXPECT_NE(error.find("build/Dockerfile:2: duplicate stage name \"x\", first defined on line 1"),
              std::string::npos)
        << error;
}

TEST(Stages, FirstInstructionErrorStopsTheParse) {
    std::string error = parse_error("FROM a\nCOPY --chown a\nRUN --nope x\n");
    EXPECT_NE(error.find("build/Dockerfile:2:"), std::string::npos) << error;
}

}  // namespace
}  // namespace kiln::dockerfile
