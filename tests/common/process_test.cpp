#include "common/process.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(RunProcess, CapturesStdoutStderrAndExitCode) {
    auto result = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->exit_code, 3);
    EXPECT_EQ(result->stdout_bytes, "out\n");
    EXPECT_EQ(result->stderr_bytes, "err\n");
}

TEST(RunProcess, FeedsStdinLargerThanAPipeBuffer) {
    ProcessOptions options;
    options.stdin_bytes = std::string(1 << 20, 'a');
    auto result = run_process({"wc", "-c"}, options);
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(std::stoul(result->stdout_bytes), 1u << 20);
}

TEST(RunProcess, LargeStdinAndLargeStdoutTogetherDoNotDeadlock) {
    // cat writes back while it reads: with a blocking stdin write, both sides would wait on a full pipe.
    ProcessOptions options;
    options.stdin_bytes = std::string(4 << 20, 'b');
    auto result = run_process({"cat"}, options);
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_TRUE(result->stdout_bytes == options.stdin_bytes);
}

TEST(RunProcess, ReportsAKillingSignalAs128PlusSignal) {
    auto result = run_process({"sh", "-c", "kill -9 $$"});
    ASSERT_TRUE(result);
    EXPECT_EQ(result->exit_code, 128 + 9);
}

TEST(RunProcess, MissingProgramIsAnErrorNamingIt) {
    auto result = run_process({"kiln-no-such-program"});
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("kiln-no-such-program"), std::string::npos);
}

}  // namespace
}  // namespace kiln
