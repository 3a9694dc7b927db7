// Cache mount directories: created once with their settings, kept, and shared as `sharing` says.

#include "builder/run/cache_mounts.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/files.hpp"

namespace kiln {
namespace {

class CacheMountsTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto dir = TempDir::create(default_temp_parent(), "kiln-cache-test-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_root = std::move(*dir);
    }
    CacheMountLease acquire(const CacheMountSettings& settings) {
        auto lease = acquire_cache_mount(m_root.path(), settings);
        EXPECT_TRUE(lease) << lease.error().message();
        return std::move(*lease);
    }
    TempDir m_root;
};

TEST_F(CacheMountsTest, ANewCacheGetsItsModeAndOwnerAndKeepsThem) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the directory another owner";
    std::string directory;
    {
        CacheMountLease lease = acquire({.id = "apt", .mode = 0750, .uid = 1234, .gid = 2345});
        directory = lease.directory();
        struct stat st {};
        ASSERT_EQ(::stat(directory.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0750u);
        EXPECT_EQ(st.st_uid, 1234u);
        EXPECT_EQ(st.st_gid, 2345u);
        ASSERT_TRUE(write_file_atomic(directory + "/kept", "yes"));
    }
    // Later settings do not change an existing cache.
    CacheMountLease again = acquire({.id = "apt", .mode = 0700});
    EXPECT_EQ(again.directory(), directory);
    EXPECT_EQ(read_file(directory + "/kept").value_or(""), "yes");
    struct stat st {};
    ASSERT_EQ(::stat(directory.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(CacheMountsTest, DifferentIdsGetDifferentDirectories) {
    EXPECT_NE(acquire({.id = "a"}).directory(), acquire({.id = "b"}).directory());
}

TEST_F(CacheMountsTest, SharedUsersGetTheSameDirectoryAtOnce) {
    CacheMountLease first = acquire({.id = "go", .sharing = CacheSharing::shared});
    CacheMountLease second = acquire({.id = "go", .sharing = CacheSharing::shared});
    EXPECT_EQ(first.directory(), second.directory());
}

TEST_F(CacheMountsTest, PrivateGetsAFreshDirectoryWhileTheCacheIsInUse) {
    CacheMountLease held = acquire({.id = "npm", .sharing = CacheSharing::locked});
    ASSERT_TRUE(write_file_atomic(held.directory() + "/cached", "x"));
    std::string stand_in;
    {
        CacheMountLease other = acquire({.id = "npm", .sharing = CacheSharing::unshared, .mode = 0700});
        stand_in = other.directory();
        EXPECT_NE(stand_in, held.directory());
        EXPECT_FALSE(path_exists(stand_in + "/cached"));
    }
    EXPECT_FALSE(path_exists(stand_in)) << "the private stand-in outlived its step";
}

TEST_F(CacheMountsTest, PrivateGetsTheCacheItselfWhenItIsFree) {
    std::string directory = acquire({.id = "pip"}).directory();
    EXPECT_EQ(acquire({.id = "pip", .sharing = CacheSharing::unshared}).directory(), directory);
}

}  // namespace
}  // namespace kiln
