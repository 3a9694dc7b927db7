#include "common/proc_files.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <string>

#include "common/strings.hpp"

namespace kiln {
namespace {

TEST(ProcFiles, StatusFieldsAreFoundByTheirWholeName) {
    const std::string status = "Name:\tsh\nUmask:\t0022\nPid:\t42\nPPid:\t7\nTracerPid:\t0\n";
    EXPECT_EQ(status_field(status, "Umask"), "0022");
    EXPECT_EQ(status_pid(status, "Pid"), 42);
    EXPECT_EQ(status_pid(status, "PPid"), 7) << "not TracerPid, which ends the same";
    EXPECT_EQ(status_field(status, "Missing"), std::nullopt);
    EXPECT_EQ(status_pid("Pid:\tnot-a-number\n", "Pid"), std::nullopt);
}

TEST(ProcFiles, ThisProcessIsReadThroughItsOwnDirectory) {
    EXPECT_EQ(own_status_field("Pid"), str_cat(::getpid()));
    UniqueFd proc = open_proc(::getpid());
    ASSERT_TRUE(proc);
    char cwd[PATH_MAX];
    ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
    EXPECT_EQ(read_proc_link(proc.get(), "cwd"), std::string(cwd));
    auto status = read_proc_file(proc.get(), "status");
    ASSERT_TRUE(status);
    EXPECT_EQ(status_pid(*status, "Tgid"), ::getpid());
    EXPECT_GT(proc_start_time(proc.get()), 0u);
    EXPECT_EQ(proc_start_time_of(::getpid()), proc_start_time(proc.get()));
}

TEST(ProcFiles, AProcessThatIsGoneHasNoStartTime) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(0);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    EXPECT_FALSE(open_proc(child));
    EXPECT_EQ(proc_start_time_of(child), 0u);
}

}  // namespace
}  // namespace kiln
