// A cancelled build, by the kiln binary: SIGTERM (a cancelled Tekton run or a deleted pod) and SIGINT (Ctrl-C)
// in the middle of a RUN end the step's processes, leave no work directory, say which step was cancelled and
// exit with 143 and 130. A work directory that a kill -9 left is removed by the next kiln, and a finished
// build's work directory is out of the way when kiln exits, deleted in the background.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

// Whether a process matching `pattern` still runs a few seconds on (a chroot step's init ends the step once
// it notices kiln is gone).
bool process_running(const std::string& pattern) {
    for (int i = 0; i < 50; ++i) {
        auto found = run_process({"pgrep", "-f", pattern});
        if (found && found->exit_code == 1) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
}

class CancellationTest : public RunBuildTest {
protected:
    // A number no other test's `sleep` uses, to find the step's processes by. (The wrapper's own command line
    // holds it too: its pattern is written so as not to match itself.)
    std::string marker() const { return str_cat(40000 + ::getpid() % 10000 + 10000 * m_markers_used++); }

    // Builds `dockerfile` with --work-dir work/, and once a process running `sleep <marker>` exists (the step
    // started), sends `signal` to kiln. The output says kiln's exit code: "kiln-exit=N".
    KilnRun build_and_signal(const std::string& dockerfile, const std::string& mark, const std::string& signal,
                             std::vector<std::string> args = {}) {
        m_command_prefix = {
            "sh", "-c",
            str_cat("\"$0\" \"$@\" & kiln=$!; i=0; until pgrep -f 'slee[p] ", mark, "' > /dev/null; do ",
                    "i=$((i+1)); [ $i -gt 600 ] && break; sleep 0.1; done; kill -", signal,
                    " $kiln; wait $kiln; echo kiln-exit=$?; exit 3")};
        args.push_back("--work-dir");
        args.push_back(case_path("work"));
        return build(dockerfile, args);
    }

    mutable int m_markers_used = 0;
};

TEST_F(CancellationTest, SigtermEndsTheStepRemovesTheWorkDirectoryAndNamesTheStep) {
    for (const char* mode : {"auto", "chroot"}) {
        if (std::string(mode) == "chroot" && ::geteuid() != 0) continue;
        std::string mark = marker();
        KilnRun run = build_and_signal(str_cat("FROM base\nRUN echo first\nRUN (setsid sleep ", mark,
                                               " > /dev/null 2>&1 &); sleep ", mark, "\n"),
                                       mark, "TERM", {str_cat("--sandbox=", mode)});
        EXPECT_TRUE(contains(run.output, "kiln-exit=143\n")) << mode << ":\n" << run.output;
        EXPECT_TRUE(contains(run.output, str_cat("cancelled by SIGTERM during [stage 0 3/3] RUN (setsid sleep ", mark)))
            << mode << ":\n" << run.output;
        EXPECT_TRUE(contains(run.output, "/Dockerfile:3)")) << mode << ":\n" << run.output;
        EXPECT_FALSE(process_running("sleep " + mark)) << mode << ": the step's processes outlived kiln";
        EXPECT_EQ(wait_for_no_kiln_entries(case_path("work"), std::chrono::seconds(60)), std::vector<std::string>{})
            << mode;
    }
}

TEST_F(CancellationTest, SigintExitsWith130) {
    std::string mark = marker();
    KilnRun run = build_and_signal(str_cat("FROM base\nRUN sleep ", mark, "\n"), mark, "INT");
    EXPECT_TRUE(contains(run.output, "kiln-exit=130\n")) << run.output;
    EXPECT_TRUE(contains(run.output, "cancelled by SIGINT during [stage 0 2/2] RUN sleep " + mark)) << run.output;
    EXPECT_FALSE(process_running("sleep " + mark));
    EXPECT_EQ(wait_for_no_kiln_entries(case_path("work"), std::chrono::seconds(60)), std::vector<std::string>{});
}

// kill -9 leaves the work directory (nine of ten kills did); the next kiln with the same --work-dir parent
// removes it, saying so, and leaves a directory of a live kiln alone.
TEST_F(CancellationTest, AWorkDirectoryLeftByAKilledKilnIsRemovedByTheNext) {
    std::string mark = marker();
    KilnRun killed = build_and_signal(str_cat("FROM base\nRUN sleep ", mark, "\n"), mark, "KILL");
    EXPECT_TRUE(contains(killed.output, "kiln-exit=137\n")) << killed.output;
    std::vector<std::string> left = kiln_entries(case_path("work"));
    ASSERT_EQ(left.size(), 1u) << killed.output;
    ASSERT_TRUE(left[0].starts_with("kiln-build-")) << left[0];
    std::string live = case_path("work/kiln-build-live");
    ASSERT_TRUE(make_directories(live));
    ASSERT_TRUE(write_file_atomic(live + "/kiln.lock", str_cat(::getpid(), "\n")));

    m_command_prefix.clear();
    KilnRun next = build_ok("FROM base\nRUN true\n", {"--work-dir", case_path("work")});
    EXPECT_TRUE(contains(next.output, str_cat("removing ", case_path("work/" + left[0]), ", left by kiln (pid ")))
        << next.output;
    std::filesystem::remove_all(live);
    EXPECT_EQ(wait_for_no_kiln_entries(case_path("work"), std::chrono::seconds(60)), std::vector<std::string>{});
}

// Deleting an extracted rootfs took up to 155 s after the results were written: the work directory is renamed
// out of the way before kiln exits and deleted by a process that does not hold kiln's output open.
TEST_F(CancellationTest, AFinishedBuildsWorkDirectoryIsDeletedInTheBackground) {
    KilnRun run = build_ok("FROM base\nRUN mkdir /many && cd /many && for i in $(seq 1 2000); do echo $i > $i; done\n",
                           {"--work-dir", case_path("work")});
    for (const std::string& name : kiln_entries(case_path("work")))
        EXPECT_TRUE(name.starts_with("kiln-trash-")) << name << " is still under its build name";
    EXPECT_EQ(wait_for_no_kiln_entries(case_path("work"), std::chrono::seconds(60)), std::vector<std::string>{});
}

// The remover of a finished build's work directory removes its lock last: another kiln's sweep, which takes a
// trash directory without a lock for one whose removal died, never starts a second removal (and says that the
// first did not finish) while the first is under way.
TEST_F(CancellationTest, TheRemoverOfAWorkDirectoryRemovesItsLockLast) {
    std::string trash = case_path("work/kiln-trash-test");
    for (int d = 0; d < 30; ++d) {
        std::string dir = str_cat(trash, "/stage", d);  // after "kiln.lock" in any order by name
        ASSERT_TRUE(make_directories(dir));
        for (int f = 0; f < 100; ++f) ASSERT_TRUE(write_file_atomic(str_cat(dir, "/f", f), "x"));
    }
    ASSERT_TRUE(write_file_atomic(trash + "/kiln.lock", "1\n"));
    // Watches the directory while the remover works: "early" if the lock was gone while anything else was there.
    auto watched = run_process(
        {"sh", "-c",
         "\"$0\" internal-remove-work-dir \"$1\" & pid=$!; early=no; "
         "while kill -0 $pid 2>/dev/null; do "
         "if [ -d \"$1\" ] && [ ! -e \"$1/kiln.lock\" ] && [ -n \"$(ls -A \"$1\" 2>/dev/null)\" ]; then early=yes; fi; "
         "done; wait $pid; echo \"exit=$? early=$early\"",
         kiln_binary(), trash});
    ASSERT_TRUE(watched) << watched.error().message();
    EXPECT_EQ(watched->stdout_bytes, "exit=0 early=no\n") << watched->stderr_bytes;
    EXPECT_FALSE(std::filesystem::exists(trash));
}

}  // namespace
}  // namespace kiln::test
