#include "builder/sources/file_mode.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

namespace kiln {
namespace {

mode_t apply(const char* spec, mode_t st_mode) {
    auto change = ModeChange::parse(spec);
    EXPECT_TRUE(change) << spec << ": " << change.error().message();
    return change ? change->apply(st_mode) : 0;
}

TEST(ModeChangeTest, OctalModeReplacesEveryFilesMode) {
    EXPECT_EQ(apply("0755", S_IFREG | 0600), 0755u);
    EXPECT_EQ(apply("640", S_IFDIR | 0777), 0640u);
    EXPECT_EQ(apply("4755", S_IFREG | 0644), 04755u);
    EXPECT_TRUE(ModeChange::parse("0755")->is_octal());
}

TEST(ModeChangeTest, OctalOutOfRangeOrNotOctalIsRefusedWithBuildKitsMessage) {
    for (const char* bad : {"10000", "0888", "9", "0755x"}) {
        auto change = ModeChange::parse(bad);
        ASSERT_FALSE(change) << bad;
        EXPECT_NE(change.error().message().find("it should be octal string and between 0 and 07777"),
                  std::string::npos)
            << change.error().message();
    }
}

TEST(ModeChangeTest, SymbolicModesChangeTheFilesOwnMode) {
    EXPECT_EQ(apply("u+x", S_IFREG | 0644), 0744u);
    EXPECT_EQ(apply("+x", S_IFREG | 0644), 0755u);
    EXPECT_EQ(apply("go-w", S_IFREG | 0666), 0644u);
    EXPECT_EQ(apply("a=r", S_IFREG | 0755), 0444u);
    EXPECT_EQ(apply("u=rwx,g=rx,o=", S_IFREG | 0666), 0750u);
    EXPECT_EQ(apply("o=u", S_IFREG | 0640), 0646u);
    EXPECT_EQ(apply("u+s", S_IFREG | 0755), 04755u);
    EXPECT_EQ(apply("+t", S_IFDIR | 0777), 01777u);
    EXPECT_EQ(apply("u+x-w", S_IFREG | 0644), 0544u);
    EXPECT_FALSE(ModeChange::parse("u+x")->is_octal());
}

TEST(ModeChangeTest, CapitalXAddsExecuteToDirectoriesAndExecutablesOnly) {
    EXPECT_EQ(apply("a+X", S_IFDIR | 0700), 0711u);
    EXPECT_EQ(apply("a+X", S_IFREG | 0744), 0755u);
    EXPECT_EQ(apply("a+X", S_IFREG | 0644), 0644u);
}

TEST(ModeChangeTest, MalformedSymbolicModeIsRefused) {
    for (const char* bad : {"", "u", "x+u", "u+z", "u+x,", "rwx"}) {
        auto change = ModeChange::parse(bad);
        ASSERT_FALSE(change) << "\"" << bad << "\"";
        EXPECT_NE(change.error().message().find("--chmod"), std::string::npos) << change.error().message();
    }
}

}  // namespace
}  // namespace kiln
