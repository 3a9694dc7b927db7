// Replacement semantics and whiteouts: what a later layer does to what earlier layers left.

#include <filesystem>

#include "extract_fixture.hpp"

namespace kiln {
namespace {

std::vector<std::string> names_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    return names;
}

TEST_F(ExtractTest, FileReplacesADirectoryAndEverythingInIt) {
    apply_ok(TestTar().dir("x").dir("x/sub").file("x/sub/deep", "lower"));
    apply_ok(TestTar().file("x", "now a file"));
    EXPECT_TRUE(S_ISREG(lstat_of("x").st_mode));
    EXPECT_EQ(content("x"), "now a file");
}

TEST_F(ExtractTest, DirectoryReplacesAFile) {
    apply_ok(TestTar().file("x", "lower"));
    apply_ok(TestTar().dir("x", 0750).file("x/inner", "upper"));
    EXPECT_TRUE(S_ISDIR(lstat_of("x").st_mode));
    EXPECT_EQ(content("x/inner"), "upper");
}

TEST_F(ExtractTest, SymlinkReplacesADirectoryWithoutTouchingItsTarget) {
    apply_ok(TestTar().dir("real").file("real/keep", "kept").dir("x").file("x/old", "old"));
    apply_ok(TestTar().symlink("x", "real"));
    EXPECT_TRUE(S_ISLNK(lstat_of("x").st_mode));
    EXPECT_EQ(content("real/keep"), "kept");
}

TEST_F(ExtractTest, DirectoryReplacesASymlinkWithoutTouchingItsTarget) {
    apply_ok(TestTar().dir("real").file("real/keep", "kept").symlink("x", "real"));
    apply_ok(TestTar().dir("x").file("x/new", "new"));
    EXPECT_TRUE(S_ISDIR(lstat_of("x").st_mode));
    EXPECT_EQ(content("x/new"), "new");
    EXPECT_EQ(names_in(m_root_path + "/real"), std::vector<std::string>{"keep"});
}

TEST_F(ExtractTest, FileReplacesASymlinkInsteadOfWritingThroughIt) {
    apply_ok(TestTar().file("etc/target", "original").symlink("link", "/etc/target"));
    apply_ok(TestTar().file("link", "replacement"));
    EXPECT_TRUE(S_ISREG(lstat_of("link").st_mode));
    EXPECT_EQ(content("link"), "replacement");
    EXPECT_EQ(content("etc/target"), "original");
}

TEST_F(ExtractTest, ReplacedFileBreaksItsHardlinksInsteadOfRewritingThem) {
    apply_ok(TestTar().file("a", "old").hardlink("b", "a"));
    apply_ok(TestTar().file("a", "new"));
    EXPECT_EQ(content("a"), "new");
    EXPECT_EQ(content("b"), "old");
}

TEST_F(ExtractTest, WhiteoutDeletesAFileAndADirectoryTree) {
    apply_ok(
        TestTar().file("etc/gone", "x").file("etc/kept", "y").dir("var/cache").file("var/cache/a/b", "z"));
    apply_ok(TestTar().file("etc/.wh.gone", "").file("var/.wh.cache", ""));
    EXPECT_FALSE(exists("etc/gone"));
    EXPECT_TRUE(exists("etc/kept"));
    EXPECT_FALSE(exists("var/cache"));
    EXPECT_FALSE(exists("etc/.wh.gone")) << "whiteouts are never written";
    EXPECT_FALSE(exists("var/.wh.cache"));
}

TEST_F(ExtractTest, WhiteoutOfSomethingMissingIsHarmless) {
    apply_ok(TestTar().file("nothing/here/.wh.ghost", ""));
    EXPECT_FALSE(exists("nothing")) << "a whiteout does not create its directory";
}

TEST_F(ExtractTest, WhiteoutDeletesASymlinkNotItsTarget) {
    apply_ok(TestTar().file("data/file", "kept").symlink("link", "data"));
    apply_ok(TestTar().file(".wh.link", ""));
    EXPECT_FALSE(exists("link"));
    EXPECT_EQ(content("data/file"), "kept");
}

TEST_F(ExtractTest, OpaqueMarkerBeforeTheLayersEntriesHidesLowerContents) {
    apply_ok(TestTar().dir("d").file("d/old1", "1").dir("d/sub").file("d/sub/old2", "2"));
    apply_ok(TestTar().dir("d").file("d/.wh..wh..opq", "").file("d/new", "n"));
    EXPECT_EQ(names_in(m_root_path + "/d"), std::vector<std::string>{"new"});
    EXPECT_FALSE(exists("d/.wh..wh..opq"));
}

TEST_F(ExtractTest, OpaqueMarkerAfterTheLayersEntriesKeepsThem) {
    apply_ok(TestTar().dir("d").file("d/old", "1").dir("d/keepdir").file("d/keepdir/lower", "2"));
    apply_ok(TestTar()
                 .dir("d")
                 .file("d/new", "n")
                 .dir("d/keepdir")
                 .file("d/keepdir/upper", "u")
                 .file("d/implicit/parents/file", "i")
                 .file("d/.wh..wh..opq", ""));
    EXPECT_EQ(names_in(m_root_path + "/d"), (std::vector<std::string>{"implicit", "keepdir", "new"}));
    EXPECT_EQ(names_in(m_root_path + "/d/keepdir"), std::vector<std::string>{"upper"})
        << "lower contents of a directory this layer recreates are hidden too";
    EXPECT_EQ(content("d/implicit/parents/file"), "i");
}

TEST_F(ExtractTest, OpaqueMarkerLeavesOtherDirectoriesAlone) {
    apply_ok(TestTar().file("d/old", "1").file("other/old", "2"));
    apply_ok(TestTar().file("d/.wh..wh..opq", ""));
    EXPECT_TRUE(names_in(m_root_path + "/d").empty());
    EXPECT_TRUE(exists("other/old"));
}

TEST_F(ExtractTest, WhiteoutOfDotOrDotDotIsRefused) {
    apply_ok(TestTar().file("sub/file", "x"));
    expect_refused(TestTar().file(".wh...", ""), ".wh...");
    expect_refused(TestTar().file("sub/.wh...", ""), "sub/.wh...");
    expect_refused(TestTar().file("sub/.wh..", ""), "sub/.wh..");
    EXPECT_EQ(content("sub/file"), "x");
    expect_host_untouched();
}

}  // namespace
}  // namespace kiln
