#include "common/mount_guard.hpp"

#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>

#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/mount_namespace.hpp"

namespace kiln {
namespace {

bool is_mount_point(const std::string& path) { return test::mounts_at_or_below(path) > 0; }

class MountGuardTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-mount-guard-test-"));
        m_target = m_dir.path() + "/mnt";
        ASSERT_TRUE(make_directories(m_target));
    }
    int run(const std::function<int()>& body) {
        int code = test::in_private_mount_namespace(body);
        if (code == 77) ADD_FAILURE() << "no private mount namespace for the test";
        return code;
    }
    Result<MountGuard> mount_tmpfs() {
        if (::mount("tmpfs", m_target.c_str(), "tmpfs", 0, "size=1m") != 0) return fail_errno("mount tmpfs");
        return MountGuard(m_target);
    }
    TempDir m_dir;
    std::string m_target;
};

TEST_F(MountGuardTest, AnErrorReturnedAfterMountingLeavesNothingMounted) {
    EXPECT_EQ(run([&] {
                  auto step = [&]() -> Status {
                      KILN_ASSIGN(MountGuard mounted, mount_tmpfs());
                      if (!is_mount_point(m_target)) return {};
                      return fail("a later step failed");
                  };
                  Status result = step();
                  if (result) return 1;  // the mount never showed, or the failure was lost
                  return is_mount_point(m_target) ? 2 : 0;
              }),
              0);
}

TEST_F(MountGuardTest, MovingTheGuardMovesTheDutyAndReleaseKeepsTheMount) {
    EXPECT_EQ(run([&] {
                  MountGuard outer;
                  {
                      auto mounted = mount_tmpfs();
                      if (!mounted) return 1;
                      outer = std::move(*mounted);
                  }
                  if (!is_mount_point(m_target)) return 2;  // the moved-from guard unmounted it
                  std::string target = outer.release();
                  if (!is_mount_point(target)) return 3;
                  MountGuard again(target);
                  if (!again.unmount()) return 4;
                  return is_mount_point(target) ? 5 : 0;
              }),
              0);
}

}  // namespace
}  // namespace kiln
