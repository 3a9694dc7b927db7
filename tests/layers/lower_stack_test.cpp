// Overlay-format layer directories stacked on each other. They cannot link across layers: a hardlink whose
// target an earlier layer holds is recorded during extraction and completed with a copy of that target, as
// containerd's overlay snapshotter ends up with after copy-up. And what a layer takes for granted about the
// layers below (no symlink where it made a directory, a directory where it deletes) is recorded, so that a
// stack that breaks it is caught.

#include <sys/stat.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "layers/lower_stack.hpp"
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

TEST_F(OverlayLinksTest, TargetUnderAFileOfALayerBetweenIsAnError) {
    ExtractStats stats;
    std::string first = extract("first", TestTar().dir("usr").file("usr/tool", "the tool\n"), stats);
    std::string second = extract("second", TestTar().file(".wh.usr", "").file("usr", "now a file\n"), stats);
    std::string third = extract("third", TestTar().hardlink("tool", "usr/tool"), stats);
    auto layer = RootFs::open(third);
    ASSERT_TRUE(layer);
    auto linked = copy_from_lower_layers(*layer, stats.lower_layer_links, {second, first}, "third");
    ASSERT_FALSE(linked) << "the file usr of the layer between hides the directory below it";
    EXPECT_NE(linked.error().message().find("usr/tool"), std::string::npos) << linked.error().message();
}

std::vector<std::string> sorted(std::vector<std::string> paths) {
    std::sort(paths.begin(), paths.end());
    return paths;
}

using LowerStackTest = OverlayLinksTest;

TEST_F(LowerStackTest, ExtractionRecordsTheParentsItMadeAndTheDirectoriesItDeletesIn) {
    ExtractStats stats;
    TestTar layer;
    layer.file("made/f", "f\n").dir("own").file("own/.wh.x", "").file("gone/.wh.y", "").file("opq/.wh..wh..opq", "");
    extract("layer", layer, stats);
    const LowerAssumptions& assumed = stats.lower_assumptions;
    EXPECT_FALSE(assumed.needs_stack);
    EXPECT_EQ(sorted(assumed.directory_paths), (std::vector<std::string>{"gone", "made", "opq"}));
    EXPECT_EQ(sorted(assumed.deleting_in), (std::vector<std::string>{"gone", "opq"}))
        << "\"own\" is the layer's own directory: deleting in it needs nothing below";
}

TEST_F(LowerStackTest, ALayersSymlinkToADirectoryItLacksLeavesTheLayerToTheStack) {
    ExtractStats stats;
    std::string dir = extract("layer", TestTar().symlink("via", "etc").file("via/f", "f\n"), stats);
    EXPECT_TRUE(stats.lower_assumptions.needs_stack);
    EXPECT_FALSE(exists_nofollow(dir + "/etc"));
}

TEST_F(LowerStackTest, TooMuchToRecordLeavesTheLayerToTheStack) {
    // 300 directories at the end of a 3,500-byte chain: over the 1 MiB of paths a layer may record.
    std::string chain;
    for (int level = 0; level < 14; ++level) chain += std::string(249, static_cast<char>('a' + level)) + "/";
    TestTar layer;
    for (int i = 0; i < 300; ++i) layer.file(str_cat(chain, "d", i, "/f"), "");
    ExtractStats stats;
    extract("layer", layer, stats);
    EXPECT_TRUE(stats.lower_assumptions.needs_stack);
    EXPECT_TRUE(stats.lower_assumptions.directory_paths.empty()) << "what was recorded is dropped";
}

TEST_F(LowerStackTest, ASymlinkBelowBreaksADirectoryTheLayerMade) {
    ExtractStats stats;
    std::string bottom = extract("bottom", TestTar().dir("etc").symlink("via", "/etc").file("plain", "x\n"), stats);
    auto keeps = [&](std::vector<std::string> paths) {
        auto kept = lower_stack_keeps(LowerAssumptions{.directory_paths = std::move(paths)}, {bottom});
        EXPECT_TRUE(kept) << kept.error().message();
        return kept && *kept;
    };
    EXPECT_TRUE(keeps({"etc/x"}));
    EXPECT_TRUE(keeps({"nothing/x"}));
    EXPECT_FALSE(keeps({"via/x"}));
    EXPECT_FALSE(keeps({"plain/x"}));
    EXPECT_FALSE(keeps({"etc/x", "via"}));
}

TEST_F(LowerStackTest, DeletingNeedsADirectoryThatShowsThroughTheStack) {
    ExtractStats stats;
    std::string bottom = extract("bottom", TestTar().dir("etc").dir("d").dir("d/sub").symlink("via", "/etc"), stats);
    std::string middle = extract("middle", TestTar().file(".wh.etc", "").dir("d").file("d/.wh..wh..opq", ""), stats);
    auto keeps = [&](std::string path, std::vector<std::string> lowers) {
        auto kept = lower_stack_keeps(LowerAssumptions{.deleting_in = {std::move(path)}}, lowers);
        EXPECT_TRUE(kept) << kept.error().message();
        return kept && *kept;
    };
    EXPECT_TRUE(keeps("etc", {bottom}));
    EXPECT_TRUE(keeps("d/sub", {bottom}));
    EXPECT_FALSE(keeps("nothing", {bottom}));
    EXPECT_FALSE(keeps("via", {bottom})) << "a symlink to a directory is not one";
    EXPECT_FALSE(keeps("etc", {middle, bottom})) << "deleted by the layer between";
    EXPECT_FALSE(keeps("d/sub", {middle, bottom})) << "hidden by the opaque directory between";
    EXPECT_TRUE(keeps("d", {middle, bottom}));
    EXPECT_FALSE(*lower_stack_keeps(LowerAssumptions{.needs_stack = true}, {bottom}));
}

}  // namespace
}  // namespace kiln::test
