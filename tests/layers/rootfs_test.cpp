#include "layers/rootfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

class RootFsTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_outside = std::move(*TempDir::create(default_temp_parent(), "kiln-outside-"));
        m_root_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-rootfs-"));
        m_root = std::make_unique<RootFs>(std::move(*RootFs::open(m_root_dir.path())));
    }
    TempDir m_outside;
    TempDir m_root_dir;
    std::unique_ptr<RootFs> m_root;
};

TEST(CleanPath, RemovesDotsSlashesAndClampsAtTheTop) {
    EXPECT_EQ(clean_path("/a/./b/../c/"), "a/c");
    EXPECT_EQ(clean_path("/"), "");
    EXPECT_EQ(clean_path("../../etc/passwd"), "etc/passwd");
    EXPECT_EQ(clean_path("a//b"), "a/b");
}

TEST(EscapesRoot, DetectsClimbingAboveTheRoot) {
    EXPECT_TRUE(escapes_root("../x"));
    EXPECT_TRUE(escapes_root("a/../../x"));
    EXPECT_FALSE(escapes_root("a/../b"));
    EXPECT_FALSE(escapes_root("/abs/path"));
}

TEST_F(RootFsTest, AbsoluteSymlinkResolvesInsideTheRoot) {
    ASSERT_TRUE(make_directories(m_root_dir.path() + "/etc"));
    ASSERT_TRUE(write_file_atomic(m_root_dir.path() + "/etc/marker", "inside"));
    ASSERT_TRUE(write_file_atomic(m_outside.path() + "/marker", "outside"));
    ASSERT_EQ(::symlink((m_outside.path()).c_str(), (m_root_dir.path() + "/escape").c_str()), 0);
    ASSERT_EQ(::symlink("/etc", (m_root_dir.path() + "/link").c_str()), 0);
    // "/link/marker" must mean <root>/etc/marker, and "/escape" must not reach the host directory.
    auto fd = m_root->open("/link/marker", O_RDONLY);
    ASSERT_TRUE(fd) << fd.error().message();
    char buffer[16] = {};
    ASSERT_GT(::read(fd->get(), buffer, sizeof buffer), 0);
    EXPECT_STREQ(buffer, "inside");
    EXPECT_FALSE(m_root->open("/escape/marker", O_RDONLY));
}

TEST_F(RootFsTest, DotDotCannotLeaveTheRoot) {
    ASSERT_TRUE(write_file_atomic(m_root_dir.path() + "/top", "root file"));
    auto fd = m_root->open("../../../../top", O_RDONLY);
    ASSERT_TRUE(fd) << fd.error().message();
}

TEST_F(RootFsTest, MakeDirectoriesThroughAnEscapingSymlinkStaysInside) {
    ASSERT_EQ(::symlink(m_outside.path().c_str(), (m_root_dir.path() + "/evil").c_str()), 0);
    auto dir = m_root->make_directories("/evil/sub", 0750, ::getuid(), ::getgid());
    // The symlink target does not exist inside the root, so either creation fails or it lands inside.
    struct stat st;
    EXPECT_NE(::stat((m_outside.path() + "/sub").c_str(), &st), 0) << "created a directory outside the rootfs";
    (void)dir;
}

TEST_F(RootFsTest, MakeDirectoriesAppliesModeIgnoringUmask) {
    auto dir = m_root->make_directories("/a/b", 0777, ::getuid(), ::getgid());
    ASSERT_TRUE(dir) << dir.error().message();
    struct stat st;
    ASSERT_EQ(::stat((m_root_dir.path() + "/a/b").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0777u);
}

TEST_F(RootFsTest, OpenParentReturnsTheLeafName) {
    ASSERT_TRUE(make_directories(m_root_dir.path() + "/x/y"));
    auto parent = m_root->open_parent("/x/y/file");
    ASSERT_TRUE(parent) << parent.error().message();
    EXPECT_EQ(parent->second, "file");
    EXPECT_FALSE(m_root->open_parent("/"));
}

}  // namespace
}  // namespace kiln
