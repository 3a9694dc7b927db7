#include "builder/sources/copy_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

class CopyFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_source_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-copy-src-"));
        m_target_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-copy-dst-"));
        m_outside = std::move(*TempDir::create(default_temp_parent(), "kiln-copy-outside-"));
        m_source = std::make_unique<RootFs>(std::move(*RootFs::open(m_source_dir.path())));
        m_target = std::make_unique<RootFs>(std::move(*RootFs::open(m_target_dir.path())));
    }
    std::string src(const std::string& path) const { return m_source_dir.path() + "/" + path; }
    std::string dst(const std::string& path) const { return m_target_dir.path() + "/" + path; }
    Status copy(const std::string& from, const std::string& to, const CopyOptions& options = {}) {
        return copy_path(*m_source, from, *m_target, to, options, m_written);
    }
    struct stat lstat_of(const std::string& path) const {
        struct stat st{};
        EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
        return st;
    }

    TempDir m_source_dir, m_target_dir, m_outside;
    std::unique_ptr<RootFs> m_source, m_target;
    std::vector<std::string> m_written;
};

TEST_F(CopyFilesTest, FileLandsAtTargetWithModeMtimeAndParents) {
    ASSERT_TRUE(write_file_atomic(src("a.txt"), "hello", 0640));
    timespec times[2] = {{1000000, 0}, {1000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, src("a.txt").c_str(), times, 0), 0);
    ASSERT_TRUE(copy("a.txt", "/deep/dir/b.txt", CopyOptions{.owner = CopyOwner{0, 0}}));
    EXPECT_EQ(*read_file(dst("deep/dir/b.txt")), "hello");
    struct stat st = lstat_of(dst("deep/dir/b.txt"));
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_mtim.tv_sec, 1000000);
    EXPECT_EQ(m_written, std::vector<std::string>{"deep/dir/b.txt"});
}

TEST_F(CopyFilesTest, DirectoryContentsAreCopiedKeepingSymlinksAndHardlinks) {
    ASSERT_TRUE(make_directories(src("tree/sub")));
    ASSERT_TRUE(write_file_atomic(src("tree/sub/file"), "data"));
    ASSERT_EQ(::link(src("tree/sub/file").c_str(), src("tree/hard").c_str()), 0);
    ASSERT_EQ(::symlink("sub/file", src("tree/link").c_str()), 0);
    ASSERT_TRUE(copy("tree", "/app"));
    EXPECT_EQ(*read_file(dst("app/sub/file")), "data");
    struct stat link = lstat_of(dst("app/link"));
    EXPECT_TRUE(S_ISLNK(link.st_mode));
    EXPECT_EQ(lstat_of(dst("app/hard")).st_ino, lstat_of(dst("app/sub/file")).st_ino);
    EXPECT_FALSE(path_exists(dst("app/tree")));  // the directory's contents, not the directory itself
}

TEST_F(CopyFilesTest, TopLevelSymlinkSourceIsFollowed) {
    ASSERT_TRUE(write_file_atomic(src("real"), "target content"));
    ASSERT_EQ(::symlink("real", src("alias").c_str()), 0);
    ASSERT_TRUE(copy("alias", "/copied"));
    struct stat st = lstat_of(dst("copied"));
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(*read_file(dst("copied")), "target content");
}

TEST_F(CopyFilesTest, SourceSymlinkCannotReachOutsideItsRoot) {
    ASSERT_TRUE(write_file_atomic(m_outside.path() + "/secret", "host secret"));
    ASSERT_EQ(::symlink((m_outside.path() + "/secret").c_str(), src("escape").c_str()), 0);
    // Resolved inside the source root, the absolute target does not exist there.
    EXPECT_FALSE(copy("escape", "/stolen"));
    EXPECT_FALSE(path_exists(dst("stolen")));
}

TEST_F(CopyFilesTest, TargetSymlinkCannotRedirectWritesOutside) {
    ASSERT_TRUE(write_file_atomic(src("payload"), "x"));
    ASSERT_EQ(::symlink(m_outside.path().c_str(), dst("evil").c_str()), 0);
    (void)copy("payload", "/evil/payload");
    EXPECT_FALSE(path_exists(m_outside.path() + "/payload"));
}

TEST_F(CopyFilesTest, OwnerAndModeOptionsApplyToEverythingCopied) {
    if (::geteuid() != 0) GTEST_SKIP() << "chown to other ids needs root";
    ASSERT_TRUE(make_directories(src("d/sub")));
    ASSERT_TRUE(write_file_atomic(src("d/f"), "x", 0600));
    ASSERT_TRUE(copy("d", "/out/d", CopyOptions{.owner = CopyOwner{1234, 4321}, .mode = *ModeChange::parse("0751")}));
    for (const char* path : {"out/d/f", "out/d/sub"}) {
        struct stat st = lstat_of(dst(path));
        EXPECT_EQ(st.st_uid, 1234u) << path;
        EXPECT_EQ(st.st_gid, 4321u) << path;
        EXPECT_EQ(st.st_mode & 07777, 0751u) << path;
    }
    // Created on the way, and the destination directory itself: BuildKit makes them 0755 for the chown owner.
    for (const char* path : {"out", "out/d"}) {
        struct stat st = lstat_of(dst(path));
        EXPECT_EQ(st.st_uid, 1234u) << path;
        EXPECT_EQ(st.st_gid, 4321u) << path;
        EXPECT_EQ(st.st_mode & 07777, 0755u) << path;
    }
}

TEST_F(CopyFilesTest, NewDestinationDirectoryIs0755NotTheSourceDirectorysMode) {
    ASSERT_TRUE(make_directories(src("private")));
    ASSERT_EQ(::chmod(src("private").c_str(), 0700), 0);
    ASSERT_TRUE(write_file_atomic(src("private/f"), "x"));
    ASSERT_TRUE(copy("private", "/app", CopyOptions{.owner = CopyOwner{0, 0}}));
    EXPECT_EQ(lstat_of(dst("app")).st_mode & 07777, 0755u);
    EXPECT_NE(std::find(m_written.begin(), m_written.end(), "app"), m_written.end());
}

TEST_F(CopyFilesTest, SymbolicChmodChangesEachEntrysOwnMode) {
    ASSERT_TRUE(make_directories(src("tree/sub")));
    ASSERT_EQ(::chmod(src("tree/sub").c_str(), 0700), 0);
    ASSERT_TRUE(write_file_atomic(src("tree/plain"), "x", 0640));
    ASSERT_TRUE(write_file_atomic(src("tree/tool"), "x", 0700));
    ASSERT_TRUE(copy("tree", "/t", CopyOptions{.owner = CopyOwner{0, 0}, .mode = *ModeChange::parse("go+rX")}));
    EXPECT_EQ(lstat_of(dst("t/plain")).st_mode & 07777, 0644u);
    EXPECT_EQ(lstat_of(dst("t/tool")).st_mode & 07777, 0755u);
    EXPECT_EQ(lstat_of(dst("t/sub")).st_mode & 07777, 0755u);
}

TEST_F(CopyFilesTest, ExcludePatternsAreRelativeToTheCopiedDirectory) {
    ASSERT_TRUE(make_directories(src("app/docs")));
    ASSERT_TRUE(make_directories(src("app/src")));
    ASSERT_TRUE(write_file_atomic(src("app/src/main.c"), "x"));
    ASSERT_TRUE(write_file_atomic(src("app/src/notes.md"), "x"));
    ASSERT_TRUE(write_file_atomic(src("app/docs/keep.md"), "x"));
    ASSERT_TRUE(write_file_atomic(src("app/README.md"), "x"));
    auto exclude = dockerfile::IgnoreMatcher::from_patterns({"**/*.md", "!docs/keep.md"});
    ASSERT_TRUE(exclude);
    ASSERT_TRUE(copy("app", "/out", CopyOptions{.exclude = &*exclude}));
    EXPECT_TRUE(path_exists(dst("out/src/main.c")));
    EXPECT_FALSE(path_exists(dst("out/src/notes.md")));
    EXPECT_FALSE(path_exists(dst("out/README.md")));
    EXPECT_TRUE(path_exists(dst("out/docs/keep.md")));  // an exception re-includes it
}

TEST_F(CopyFilesTest, ParentsKeepThePathBelowThePivotWithTheSourcesMetadata) {
    if (::geteuid() != 0) GTEST_SKIP() << "chown to other ids needs root";
    ASSERT_TRUE(make_directories(src("a/b")));
    ASSERT_EQ(::chmod(src("a").c_str(), 0750), 0);
    ASSERT_TRUE(write_file_atomic(src("a/b/c.txt"), "c"));
    ASSERT_TRUE(copy_path_with_parents(*m_source, "", "a/b/c.txt", *m_target, "/dst",
                                       CopyOptions{.owner = CopyOwner{1234, 4321}}, m_written));
    EXPECT_EQ(*read_file(dst("dst/a/b/c.txt")), "c");
    struct stat a = lstat_of(dst("dst/a"));
    EXPECT_EQ(a.st_mode & 07777, 0750u);  // like its source
    EXPECT_EQ(a.st_uid, 1234u);           // but owned by --chown
    EXPECT_EQ(lstat_of(dst("dst/a/b/c.txt")).st_uid, 1234u);
    for (const char* path : {"dst/a", "dst/a/b", "dst/a/b/c.txt"})
        EXPECT_NE(std::find(m_written.begin(), m_written.end(), path), m_written.end()) << path;
    // With a pivot, only the part after it is kept.
    ASSERT_TRUE(copy_path_with_parents(*m_source, "a", "b/c.txt", *m_target, "/pivot", CopyOptions{}, m_written));
    EXPECT_TRUE(path_exists(dst("pivot/b/c.txt")));
    EXPECT_FALSE(path_exists(dst("pivot/a")));
}

TEST_F(CopyFilesTest, ExistingTargetDirectoryKeepsItsMode) {
    ASSERT_TRUE(make_directories(dst("tmp")));
    ASSERT_EQ(::chmod(dst("tmp").c_str(), 01777), 0);
    ASSERT_TRUE(make_directories(src("stuff")));
    ASSERT_TRUE(write_file_atomic(src("stuff/f"), "x"));
    ASSERT_TRUE(copy("stuff", "/tmp"));
    EXPECT_EQ(lstat_of(dst("tmp")).st_mode & 07777, 01777u);
    EXPECT_TRUE(path_exists(dst("tmp/f")));
}

TEST_F(CopyFilesTest, IgnoredPathsAreNotCopied) {
    ASSERT_TRUE(make_directories(src("ctx/logs")));
    ASSERT_TRUE(write_file_atomic(src("ctx/keep"), "x"));
    ASSERT_TRUE(write_file_atomic(src("ctx/logs/a.log"), "x"));
    ASSERT_TRUE(write_file_atomic(src("ctx/secret.env"), "x"));
    auto ignore = dockerfile::IgnoreMatcher::parse("ctx/logs\n*/*.env\n");
    ASSERT_TRUE(ignore);
    ASSERT_TRUE(copy("ctx", "/app", CopyOptions{.ignore = &*ignore}));
    EXPECT_TRUE(path_exists(dst("app/keep")));
    EXPECT_FALSE(path_exists(dst("app/logs")));
    EXPECT_FALSE(path_exists(dst("app/secret.env")));
}

TEST_F(CopyFilesTest, WrittenPathsFollowAResolvedTargetDirectory) {
    ASSERT_TRUE(make_directories(dst("srv")));
    ASSERT_EQ(::symlink("/srv", dst("app").c_str()), 0);
    ASSERT_TRUE(write_file_atomic(src("f"), "x"));
    ASSERT_TRUE(copy("f", "/app/f"));
    EXPECT_TRUE(path_exists(dst("srv/f")));
    EXPECT_EQ(m_written, std::vector<std::string>{"srv/f"});
}

TEST_F(CopyFilesTest, InlineFileGetsContentAndDefaultMode) {
    ASSERT_TRUE(write_inline_file(*m_target, "/etc/motd", "welcome\n", CopyOptions{}, m_written));
    EXPECT_EQ(*read_file(dst("etc/motd")), "welcome\n");
    EXPECT_EQ(lstat_of(dst("etc/motd")).st_mode & 07777, 0644u);
}

}  // namespace
}  // namespace kiln
