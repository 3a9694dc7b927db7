// Overlay-format layer directories cannot link across layers: a hardlink whose target an earlier layer holds
// is recorded during extraction and completed with a copy of that target, as containerd's overlay snapshotter
// ends up with after copy-up.

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "tests/layers/overlay_fixture.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln::test {
namespace {

class OverlayLinksTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto dir = TempDir::create(default_temp_parent(), "kiln-overlay-links-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
    }
    // Extracts `tar` in overlay format into a fresh layer directory; returns its path.
    std::string extract(const std::string& name, const TestTar& tar, ExtractStats& stats) {
        std::string path = m_dir.path() + "/" + name;
        EXPECT_EQ(::mkdir(path.c_str(), 0755), 0);
        auto extracted = extract_tar(path, tar, WhiteoutFormat::overlay);
        EXPECT_TRUE(extracted) << extracted.error().message();
        if (extracted) stats = std::move(*extracted);
        return path;
    }

    TempDir m_dir;
};

TEST_F(OverlayLinksTest, LinksToAnEarlierLayerAreCompletedWithOneSharedCopy) {
    ExtractStats first;
    ExtractStats second;
    TestTar bottom;
    bottom.dir("usr").add({.name = "usr/tool", .type = AE_IFREG, .content = "the tool\n", .mode = 04755,
                           .uid = 7, .gid = 8, .mtime = 1'500'000'000});
    std::string lower = extract("bottom", bottom, first);
    TestTar top;
    top.dir("bin").hardlink("bin/tool", "usr/tool").hardlink("bin/alias", "usr/tool");
    std::string upper = extract("top", top, second);
    ASSERT_EQ(second.lower_layer_links.size(), 2u);

    auto layer = RootFs::open(upper);
    ASSERT_TRUE(layer);
    auto linked = copy_from_lower_layers(*layer, second.lower_layer_links, {lower}, "top");
    ASSERT_TRUE(linked) << linked.error().message();

    EXPECT_EQ(read_text(upper + "/bin/tool"), "the tool\n");
    struct stat tool;
    struct stat alias;
    ASSERT_EQ(::lstat((upper + "/bin/tool").c_str(), &tool), 0);
    ASSERT_EQ(::lstat((upper + "/bin/alias").c_str(), &alias), 0);
    EXPECT_EQ(tool.st_ino, alias.st_ino) << "links of one layer to one target share the copy";
    EXPECT_EQ(tool.st_mode & 07777, 04755u);
    EXPECT_EQ(tool.st_mtim.tv_sec, 1'500'000'000);
    if (running_as_root()) {
        EXPECT_EQ(tool.st_uid, 7u);
        EXPECT_EQ(tool.st_gid, 8u);
    }
}

TEST_F(OverlayLinksTest, TargetDeletedByALayerBetweenIsAnErrorNamingIt) {
    ExtractStats stats;
    TestTar bottom;
    bottom.dir("usr").file("usr/tool", "the tool\n");
    std::string first = extract("first", bottom, stats);
    TestTar middle;
    middle.dir("usr").file("usr/.wh.tool", "");
    std::string second = extract("second", middle, stats);
    TestTar top;
    top.hardlink("tool", "usr/tool");
    std::string third = extract("third", top, stats);
    ASSERT_EQ(stats.lower_layer_links.size(), 1u);

    auto layer = RootFs::open(third);
    ASSERT_TRUE(layer);
    auto linked = copy_from_lower_layers(*layer, stats.lower_layer_links, {second, first}, "third");
    ASSERT_FALSE(linked);
    EXPECT_NE(linked.error().message().find("usr/tool"), std::string::npos) << linked.error().message();
    EXPECT_FALSE(exists_nofollow(third + "/tool"));
}

TEST_F(OverlayLinksTest, TargetThatNoLayerHoldsIsAnError) {
    ExtractStats stats;
    TestTar only;
    only.hardlink("tool", "usr/missing");
    std::string dir = extract("only", only, stats);
    ASSERT_EQ(stats.lower_layer_links.size(), 1u);
    auto layer = RootFs::open(dir);
    ASSERT_TRUE(layer);
    auto linked = copy_from_lower_layers(*layer, stats.lower_layer_links, {}, "only");
    ASSERT_FALSE(linked);
    EXPECT_NE(linked.error().message().find("usr/missing"), std::string::npos) << linked.error().message();
}

}  // namespace
}  // namespace kiln::test
