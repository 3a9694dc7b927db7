// clone_inside() attaches a detached mount for a moment to clone a path inside it; every way out of it,
// failures included, must detach that mount again (it once stayed mounted when a step after the attach failed).

#include <unistd.h>

#include <gtest/gtest.h>


#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "layers/overlay_mount.hpp"
#include "tests/support/mount_namespace.hpp"

namespace kiln {
namespace {

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
    int code = test::in_private_mount_namespace([&] {
        auto overlay = make_overlay_mount(OverlayMountSpec{.lowers = {m_lower}, .upper = {}, .work = {}});
        if (!overlay) return 1;
        auto clone = clone_inside(overlay->get(), m_staging, "absent/dir");
        if (clone) return 2;
        if (test::mounts_at_or_below(m_staging) != 0) return 3;
        return ::rmdir(m_staging.c_str()) == 0 ? 0 : 4;  // the staging directory is gone too
    });
    ASSERT_NE(code, 77) << "no private mount namespace for the test";
    EXPECT_EQ(code, 0) << "1: no overlay, 2: a missing source was cloned, 3: a mount was left behind, 4: a "
                          "staging directory was left behind";
}

TEST_F(CloneInsideTest, APresentSourceIsClonedAndTheStagingMountDetached) {
    int code = test::in_private_mount_namespace([&] {
        auto overlay = make_overlay_mount(OverlayMountSpec{.lowers = {m_lower}, .upper = {}, .work = {}});
        if (!overlay) return 1;
        auto clone = clone_inside(overlay->get(), m_staging, "present");
        if (!clone) return 2;
        return test::mounts_at_or_below(m_staging) == 0 ? 0 : 3;
    });
    ASSERT_NE(code, 77);
    EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace kiln
