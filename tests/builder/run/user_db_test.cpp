#include "builder/run/user_db.hpp"

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

class UserDbTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-userdb-"));
        ASSERT_TRUE(make_directories(m_dir.path() + "/etc"));
        ASSERT_TRUE(write_file_atomic(m_dir.path() + "/etc/passwd",
                                      "root:x:0:0:root:/root:/bin/sh\n"
                                      "# a comment\n"
                                      "app:x:1000:1001:app:/home/app:/bin/sh\n"
                                      "broken line\n"));
        ASSERT_TRUE(write_file_atomic(m_dir.path() + "/etc/group",
                                      "root:x:0:\nappgrp:x:1001:\nstaff:x:50:app,other\naudio:x:29:app\n"));
        m_root = std::make_unique<RootFs>(std::move(*RootFs::open(m_dir.path())));
    }
    TempDir m_dir;
    std::unique_ptr<RootFs> m_root;
};

TEST_F(UserDbTest, NameResolvesToItsIdsHomeAndSupplementaryGroups) {
    auto user = resolve_user(*m_root, "app");
    ASSERT_TRUE(user) << user.error().message();
    EXPECT_EQ(user->uid, 1000u);
    EXPECT_EQ(user->gid, 1001u);
    EXPECT_EQ(user->home, "/home/app");
    EXPECT_EQ(user->supplementary_gids, (std::vector<gid_t>{50, 29}));
}

TEST_F(UserDbTest, ExplicitGroupReplacesPrimaryAndDropsSupplementary) {
    auto user = resolve_user(*m_root, "app:staff");
    ASSERT_TRUE(user);
    EXPECT_EQ(user->gid, 50u);
    EXPECT_TRUE(user->supplementary_gids.empty());
}

TEST_F(UserDbTest, NumericIdsNeedNoEntry) {
    auto user = resolve_user(*m_root, "4242:4343");
    ASSERT_TRUE(user);
    EXPECT_EQ(user->uid, 4242u);
    EXPECT_EQ(user->gid, 4343u);
    auto known = resolve_user(*m_root, "1000");
    ASSERT_TRUE(known);
    EXPECT_EQ(known->gid, 1001u);  // a known uid takes its primary group
}

TEST_F(UserDbTest, UnknownNameIsAnErrorNamingIt) {
    auto user = resolve_user(*m_root, "nobody-here");
    ASSERT_FALSE(user);
    EXPECT_NE(user.error().message().find("nobody-here"), std::string::npos);
    EXPECT_FALSE(resolve_user(*m_root, "app:nogroup"));
}

TEST_F(UserDbTest, MissingPasswdFileMeansNoNamesButNumbersWork) {
    auto empty = TempDir::create(default_temp_parent(), "kiln-userdb-empty-");
    auto root = RootFs::open(empty->path());
    EXPECT_FALSE(resolve_user(*root, "app"));
    EXPECT_TRUE(resolve_user(*root, "0"));
}

TEST_F(UserDbTest, ChownUsesTheNumberAsGroupForNumericUsers) {
    auto ids = resolve_chown(*m_root, "1234");
    ASSERT_TRUE(ids);
    EXPECT_EQ(*ids, (std::pair<uid_t, gid_t>{1234, 1234}));
    auto named = resolve_chown(*m_root, "app:audio");
    ASSERT_TRUE(named);
    EXPECT_EQ(*named, (std::pair<uid_t, gid_t>{1000, 29}));
    EXPECT_FALSE(resolve_chown(*m_root, "ghost"));
}

}  // namespace
}  // namespace kiln
