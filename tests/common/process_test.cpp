#include "common/process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/fd.hpp"
#include "common/strings.hpp"

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

TEST(RunProcess, ChildOverrunningTheTimeoutIsKilledAndTheErrorIsRetryable) {
    ProcessOptions options;
    options.timeout = std::chrono::milliseconds(200);
    auto started = std::chrono::steady_clock::now();
    auto result = run_process({"sleep", "30"}, options);
    ASSERT_FALSE(result);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_NE(result.error().message().find("sleep did not finish within 200 ms"), std::string::npos)
        << result.error().message();
    EXPECT_TRUE(result.error().retryable());
}

TEST(RunProcess, ChildThatClosesItsOutputsStillHasTheTimeout) {
    ProcessOptions options;
    options.timeout = std::chrono::milliseconds(200);
    auto result = run_process({"sh", "-c", "exec >/dev/null 2>&1; sleep 30"}, options);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("did not finish"), std::string::npos) << result.error().message();
}

TEST(RunProcess, OutputPastTheLimitIsAnError) {
    ProcessOptions options;
    options.output_limit = 1000;
    auto result = run_process({"sh", "-c", "yes"}, options);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("wrote more than 1000 bytes"), std::string::npos)
        << result.error().message();
}

TEST(RunProcess, ChildIgnoringItsStdinDoesNotRaiseSigpipe) {
    ProcessOptions options;
    options.stdin_bytes = std::string(1 << 20, 'c');
    auto result = run_process({"true"}, options);
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->exit_code, 0);
}

// kiln blocks SIGTERM and SIGINT on every thread but the one that waits for them; a helper must not inherit
// that, or it could not be stopped.
TEST(RunProcess, TheChildBlocksNoSignalWhateverTheCallerBlocks) {
    sigset_t blocked;
    sigset_t before;
    ::sigemptyset(&blocked);
    ::sigaddset(&blocked, SIGTERM);
    ::sigaddset(&blocked, SIGINT);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &before), 0);
    auto result = run_process({"sh", "-c", "grep SigBlk /proc/self/status"});
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->stdout_bytes, "SigBlk:\t0000000000000000\n");
}

TEST(SpawnChild, HandsOverTheGivenDescriptorsInANewSession) {
    auto pipe = make_pipe();
    ASSERT_TRUE(pipe) << pipe.error().message();
    auto pid = spawn_child({"sh", "-c", "echo \"$(cut -d' ' -f6 /proc/$$/stat) $$\" >&5"},
                           {.path = "/bin/sh", .descriptors = {{5, pipe->second.get()}}, .new_session = true});
    ASSERT_TRUE(pid) << pid.error().message();
    pipe->second.reset();
    std::string said;
    char buffer[64];
    ssize_t n = 0;
    while ((n = ::read(pipe->first.get(), buffer, sizeof buffer)) > 0) said.append(buffer, static_cast<size_t>(n));
    int status = 0;
    ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
    EXPECT_EQ(exit_code_from_wait_status(status), 0);
    EXPECT_EQ(said, str_cat(*pid, " ", *pid, "\n")) << "the child leads a session of its own";
}

TEST(SpawnChild, AProgramThatCannotStartIsAnErrorNamingIt) {
    auto pid = spawn_child({"kiln-no-such-program"});
    ASSERT_FALSE(pid);
    EXPECT_NE(pid.error().message().find("kiln-no-such-program"), std::string::npos) << pid.error().message();
}

}  // namespace
}  // namespace kiln
