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

TEST_F(ExtractTest, RelativeSymlinkClimbingAboveTheRootIsRefused) {
    // As Docker's and containers/storage's untar refuse it, for layers as for archives: its only use is to
    // make an extractor that follows it write outside its root.
    expect_refused(TestTar().symlink("b", "../../../../../../../" + m_outside).file("b/victim", "HOSTILE"),
                   "entry \"b\"");
    expect_refused(TestTar().symlink("etc/b", "../../x"), "entry \"etc/b\"");
    EXPECT_FALSE(exists("b"));
    expect_host_untouched();
}

TEST_F(ExtractTest, SymlinksThatStayInsideTheRootAreKept) {
    apply_ok(TestTar()
                 .symlink("usr/lib/libz.so", "../../lib/libz.so.1")
                 .symlink("var/run", "/run")
                 .symlink("top", "./a/../b"));
    EXPECT_EQ(std::filesystem::read_symlink(m_root_path + "/usr/lib/libz.so"), "../../lib/libz.so.1");
    EXPECT_EQ(std::filesystem::read_symlink(m_root_path + "/var/run"), "/run");
}

TEST_F(ExtractTest, EntryWrittenThroughAnAbsoluteSymlinkToAHostPathIsRefused) {
    // Followed inside the rootfs, the link leads nowhere: nothing is created for it, inside or out.
    expect_refused(TestTar().symlink("a", m_outside).file("a/victim", "HOSTILE"), "a/victim");
    EXPECT_FALSE(exists(m_outside.substr(1)));
    expect_host_untouched();
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
