#include "common/temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"

namespace kiln {
namespace {

TEST(TempDir, IsRemovedWithItsContentsOnDestruction) {
    std::string path;
    {
        auto dir = TempDir::create(default_temp_parent(), "kiln-temp-test-");
        ASSERT_TRUE(dir) << dir.error().message();
        path = dir->path();
        ASSERT_TRUE(make_directories(path + "/a/b"));
        ASSERT_TRUE(write_file_atomic(path + "/a/b/file", "x"));
    }
    EXPECT_FALSE(path_exists(path));
}

TEST(RemoveTree, DoesNotFollowSymlinksOutOfTheTree) {
    auto outside = TempDir::create(default_temp_parent(), "kiln-outside-");
    auto tree = TempDir::create(default_temp_parent(), "kiln-tree-");
    ASSERT_TRUE(outside && tree);
    ASSERT_TRUE(write_file_atomic(outside->path() + "/precious", "keep me"));
    ASSERT_EQ(::symlink(outside->path().c_str(), (tree->path() + "/link").c_str()), 0);
    ASSERT_TRUE(remove_tree(tree->path()));
    EXPECT_FALSE(path_exists(tree->path()));
    EXPECT_EQ(*read_file(outside->path() + "/precious"), "keep me");
}

TEST(RemoveTree, RemovesDirectoriesWithoutPermissions) {
    auto tree = TempDir::create(default_temp_parent(), "kiln-tree-");
    ASSERT_TRUE(tree);
    std::string locked = tree->path() + "/locked";
    ASSERT_TRUE(make_directories(locked + "/inner"));
    ASSERT_TRUE(write_file_atomic(locked + "/inner/file", "x"));
    ASSERT_EQ(::chmod((locked + "/inner").c_str(), 0), 0);
    ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
    EXPECT_TRUE(remove_tree(tree->path()));
    EXPECT_FALSE(path_exists(tree->path()));
}

TEST(RemoveTree, MissingPathIsNotAnError) { EXPECT_TRUE(remove_tree("/nonexistent/kiln/path")); }

}  // namespace
}  // namespace kiln
