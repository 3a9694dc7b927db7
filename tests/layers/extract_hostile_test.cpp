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

// Docker and containerd keep such a link: its target is data, and kiln resolves it only inside the root,
// where ".." stops at "/". Writing through it stays inside too, and where it leads nowhere, the refusal names
// the symlink and where it points.
TEST_F(ExtractTest, RelativeSymlinkClimbingAboveTheRootIsKeptAndFollowedOnlyInsideIt) {
    std::string climb = "../../../../../../../" + m_outside;
    apply_ok(TestTar().symlink("etc/b", "../../x").symlink("b", climb));
    EXPECT_EQ(std::filesystem::read_symlink(m_root_path + "/etc/b"), "../../x");
    EXPECT_EQ(std::filesystem::read_symlink(m_root_path + "/b"), climb);
    expect_refused(TestTar().file("b/victim", "HOSTILE"),
                   "entry \"b/victim\": refused: its parent \"b\" is a symlink to \"" + climb +
                       "\", which leads to no directory inside the root");
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

// Docker reads an absolute hardlink name relative to the root.
TEST_F(ExtractTest, HardlinkWithAnAbsoluteNameLinksInsideTheRoot) {
    apply_ok(TestTar().file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").hardlink("etc/passwd-", "/etc/passwd"));
    EXPECT_EQ(content("etc/passwd-"), "root:x:0:0::/root:/bin/sh\n");
    EXPECT_EQ(std::filesystem::hard_link_count(m_root_path + "/etc/passwd"), 2u);
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
