// clone_inside() attaches a detached mount for a moment to clone a path inside it; every way out of it,
// failures included, must detach that mount again (it once stayed mounted when a step after the attach failed).

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>

#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "layers/overlay_mount.hpp"

namespace kiln {
namespace {

// How many mounts stand below `parent`.
size_t mounts_below(const std::string& parent) {
    std::string mountinfo = read_file("/proc/self/mountinfo").value_or("");
    size_t count = 0;
    for (size_t at = mountinfo.find(" " + parent + "/"); at != std::string::npos;
         at = mountinfo.find(" " + parent + "/", at + 1))
        ++count;
    return count;
}

int in_mount_namespace(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            ::_exit(77);
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class CloneInsideTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "cloning mounts needs root";
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-clone-inside-test-"));
        m_lower = m_dir.path() + "/lower";
        m_staging = m_dir.path() + "/staging";
        ASSERT_TRUE(make_directories(m_lower + "/present"));
        ASSERT_TRUE(make_directories(m_staging));
    }
    TempDir m_dir;
    std::string m_lower;
    std::string m_staging;
};

TEST_F(CloneInsideTest, AMissingSourceFailsAndLeavesNothingMounted) {
    int code = in_mount_namespace([&] {
        auto overlay = make_overlay_mount(OverlayMountSpec{.lowers = {m_lower}, .upper = {}, .work = {}});
        if (!overlay) return 1;
        auto clone = clone_inside(overlay->get(), m_staging, "absent/dir");
        if (clone) return 2;
        if (mounts_below(m_staging) != 0) return 3;
        return ::rmdir(m_staging.c_str()) == 0 ? 0 : 4;  // the staging directory is gone too
    });
    ASSERT_NE(code, 77) << "no private mount namespace for the test";
    EXPECT_EQ(code, 0) << "1: no overlay, 2: a missing source was cloned, 3: a mount was left behind, 4: a "
                          "staging directory was left behind";
}

TEST_F(CloneInsideTest, APresentSourceIsClonedAndTheStagingMountDetached) {
    int code = in_mount_namespace([&] {
        auto overlay = make_overlay_mount(OverlayMountSpec{.lowers = {m_lower}, .upper = {}, .work = {}});
        if (!overlay) return 1;
        auto clone = clone_inside(overlay->get(), m_staging, "present");
        if (!clone) return 2;
        return mounts_below(m_staging) == 0 ? 0 : 3;
    });
    ASSERT_NE(code, 77);
    EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace kiln
