// Hostile layers: every way out of the rootfs is refused or confined to it, and no host bytes come in.

#include <filesystem>

#include "extract_fixture.hpp"

namespace kiln {
namespace {

TEST_F(ExtractTest, DotDotEscapeIsRefused) {
    expect_refused(TestTar().file("../outside/evil", "HOSTILE"), "../outside/evil");
    expect_refused(TestTar().file("a/../../escape", "HOSTILE"), "a/../../escape");
    expect_host_untouched();
}

TEST_F(ExtractTest, DotDotInsideTheRootIsFine) {
    apply_ok(TestTar().file("a/../b", "inside"));
    EXPECT_EQ(content("b"), "inside");
}

TEST_F(ExtractTest, AbsolutePathIsRefused) {
    expect_refused(TestTar().file("/abs", "HOSTILE"), "/abs");
    expect_refused(TestTar().file(m_outside + "/victim", "HOSTILE"), m_outside + "/victim");
    EXPECT_FALSE(exists("abs"));
    expect_host_untouched();
}

TEST_F(ExtractTest, SymlinkParentPointingOutsideIsConfinedToTheRoot) {
    auto stats =
        apply(TestTar().symlink("a", m_outside).file("a/file", "HOSTILE").file("a/victim", "HOSTILE"));
    expect_host_untouched();
    EXPECT_FALSE(test::exists_nofollow(m_outside + "/file"));
    if (stats) {
        // Confined: the symlink was followed inside the rootfs.
        EXPECT_EQ(content(m_outside.substr(1) + "/file"), "HOSTILE");
    } else {
        EXPECT_NE(stats.error().message().find("a/file"), std::string::npos) << stats.error().message();
    }
}

TEST_F(ExtractTest, RelativeSymlinkParentClimbingOutIsConfinedToTheRoot) {
    auto stats =
        apply(TestTar().symlink("b", "../../../../../../../" + m_outside).file("b/victim", "HOSTILE"));
    expect_host_untouched();
    if (!stats) {
        EXPECT_NE(stats.error().message().find("b/victim"), std::string::npos);
    }
}

TEST_F(ExtractTest, HardlinkClimbingOutOfTheRootIsRefused) {
    expect_refused(TestTar().hardlink("passwd", "../../etc/passwd"), "passwd");
    expect_refused(TestTar().hardlink("leak", "../outside/secret"), "leak");
    expect_refused(TestTar().hardlink("leak", m_outside + "/secret"), "leak");
    EXPECT_FALSE(exists("passwd"));
    EXPECT_FALSE(exists("leak"));
    expect_host_untouched();
}

TEST_F(ExtractTest, HardlinkThroughAPlantedSymlinkStaysInside) {
    auto stats = apply(TestTar().symlink("a", m_outside).hardlink("leak", "a/secret"));
    EXPECT_FALSE(stats) << "the target does not exist inside the rootfs";
    EXPECT_FALSE(exists("leak"));
    expect_host_untouched();
}

TEST_F(ExtractTest, WhiteoutThroughAPlantedSymlinkStaysInside) {
    apply_ok(TestTar().symlink("a", m_outside));
    apply_ok(TestTar().file("a/.wh.victim", ""));
    expect_host_untouched();
}

TEST_F(ExtractTest, OpaqueMarkerThroughAPlantedSymlinkStaysInside) {
    apply_ok(TestTar().symlink("a", m_outside));
    apply_ok(TestTar().file("a/.wh..wh..opq", ""));
    expect_host_untouched();
}

TEST_F(ExtractTest, ReplacingAPlantedSymlinkRemovesOnlyTheLink) {
    apply_ok(TestTar().symlink("a", m_outside));
    apply_ok(TestTar().dir("a").file("a/victim", "inside"));
    EXPECT_EQ(content("a/victim"), "inside");
    expect_host_untouched();
}

TEST_F(ExtractTest, DirectoryThatIsASymlinkToTheHostIsNotEmptiedOnReplacement) {
    apply_ok(TestTar().symlink("a", m_outside));
    apply_ok(TestTar().file("a", "file now"));
    EXPECT_EQ(content("a"), "file now");
    expect_host_untouched();
}

}  // namespace
}  // namespace kiln
