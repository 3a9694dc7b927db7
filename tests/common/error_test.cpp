#include "common/error.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

Result<int> parse_positive(int value) {
    if (value <= 0) return fail("not positive");
    return value;
}

Result<int> doubled(int value) {
    KILN_ASSIGN(int parsed, parse_positive(value));
    return parsed * 2;
}

Status checked(int value) {
    KILN_TRY_CONTEXT(parse_positive(value), "checking the value");
    return {};
}

TEST(Error, ContextIsPrependedOuterFirst) {
    Error error("connection refused");
    error.context("pushing layer").context("building stage 1");
    EXPECT_EQ(error.message(), "building stage 1: pushing layer: connection refused");
}

TEST(Error, FromErrnoNamesTheOperationAndKeepsErrno) {
    Error error = Error::from_errno("open /missing", ENOENT);
    EXPECT_EQ(error.message(), "open /missing: No such file or directory");
    EXPECT_EQ(error.errno_value(), ENOENT);
    EXPECT_FALSE(error.retryable());
}

TEST(Error, AssignMacroPropagatesFailureAndValue) {
    EXPECT_EQ(*doubled(4), 8);
    ASSERT_FALSE(doubled(-1));
    EXPECT_EQ(doubled(-1).error().message(), "not positive");
}

TEST(Error, TryContextAddsTheOuterStep) {
    EXPECT_TRUE(checked(1));
    EXPECT_EQ(checked(0).error().message(), "checking the value: not positive");
}

TEST(Error, ExitCodeDefaultsToOneAndCanCarryAStepsCode) {
    EXPECT_EQ(Error("x").exit_code(), 1);
    EXPECT_EQ(Error("x").set_exit_code(42).exit_code(), 42);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(ErrorLocation, ALocatedErrorLeadsWithFileLineAndInstruction) {
    Error error = Error("no such file").context("copying a.txt").at({"Dockerfile", 12, "COPY a.txt /"});
    EXPECT_EQ(error.message(), "Dockerfile:12: COPY a.txt /: copying a.txt: no such file");
    ASSERT_TRUE(error.location());
    EXPECT_EQ(error.location()->line, 12u);
}

TEST(ErrorLocation, TheInnermostLocationWins) {
    Error error = Error("bad").at({"ONBUILD trigger of base", 2, "RUN x"}).at({"Dockerfile", 1, "FROM base"});
    EXPECT_EQ(error.message(), "ONBUILD trigger of base:2: RUN x: bad");
}

TEST(ErrorLocation, ContextAddedAfterTheLocationStaysBehindIt) {
    Result<int> failed = fail_at({"Dockerfile", 3, ""}, "unknown flag");
    Result<int> outer = with_context(std::move(failed), "planning stage 0");
    EXPECT_EQ(outer.error().message(), "Dockerfile:3: planning stage 0: unknown flag");
}

}  // namespace
}  // namespace kiln
