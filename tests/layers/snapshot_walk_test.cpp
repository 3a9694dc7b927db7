#include "layers/snapshot_walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/temp_dir.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class SnapshotTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-snapshot-"));
        m_root = std::make_unique<RootFs>(std::move(*RootFs::open(m_dir.path())));
        fs::create_directories(path("etc"));
        fs::create_directories(path("usr/lib/deep/er"));
        test::write_text(path("etc/passwd"), "root:x:0:0\n");
        test::write_text(path("usr/lib/deep/er/lib.so"), "library");
        test::write_text(path("usr/lib/deep/other"), "other");
        fs::create_symlink("/etc/passwd", path("link"));
    }

    std::string path(const std::string& relative) const { return m_dir.path() + "/" + relative; }

    Snapshot scan(const ScanOptions& options = {}) {
        auto snapshot = scan_snapshot(*m_root, options);
        EXPECT_TRUE(snapshot) << snapshot.error().message();
        return snapshot ? std::move(*snapshot) : Snapshot();
    }

    std::vector<Change> changes_since(const Snapshot& before) { return diff_snapshots(before, scan()); }

    // Timestamps tick in jiffies on some filesystems: make sure the next change gets a later ctime.
    static void let_the_clock_tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

    TempDir m_dir;
    std::unique_ptr<RootFs> m_root;
};

TEST_F(SnapshotTest, RecordsEveryEntryInDepthFirstOrder) {
    fs::create_directory(path("usr-local"));
    Snapshot snapshot = scan();
    std::vector<std::string> paths;
    for (size_t i = 0; i < snapshot.size(); ++i) paths.emplace_back(snapshot.path(i));
    EXPECT_EQ(paths, (std::vector<std::string>{"etc", "etc/passwd", "link", "usr", "usr/lib", "usr/lib/deep",
                                               "usr/lib/deep/er", "usr/lib/deep/er/lib.so",
                                               "usr/lib/deep/other", "usr-local"}));
}

TEST_F(SnapshotTest, RecordsLstatFieldsAndSymlinkTargetsWithoutFollowing) {
    Snapshot snapshot = scan();
    auto link = snapshot.find("link");
    ASSERT_TRUE(link);
    EXPECT_EQ(snapshot.info(*link).type, FileType::symlink);
    EXPECT_EQ(snapshot.symlink_target(*link), "/etc/passwd");
    auto passwd = snapshot.find("etc/passwd");
    ASSERT_TRUE(passwd);
    struct stat st;
    ASSERT_EQ(::lstat(path("etc/passwd").c_str(), &st), 0);
    const FileInfo& info = snapshot.info(*passwd);
    EXPECT_EQ(info.type, FileType::regular);
    EXPECT_EQ(info.size, 11u);
    EXPECT_EQ(info.ino, st.st_ino);
    EXPECT_EQ(info.mode, st.st_mode & 07777);
    EXPECT_EQ(info.mtime_ns, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec);
    EXPECT_FALSE(snapshot.find("nope"));
}

TEST_F(SnapshotTest, SymlinkToADirectoryIsNotDescended) {
    fs::create_directory_symlink(m_dir.path() + "/usr", path("usrlink"));
    Snapshot snapshot = scan();
    EXPECT_TRUE(snapshot.find("usrlink"));
    EXPECT_FALSE(snapshot.find("usrlink/lib"));
}

TEST_F(SnapshotTest, ExcludedPathsAndTheirSubtreesAreLeftOut) {
    Snapshot snapshot = scan({.excluded = {"/usr/lib", "etc/passwd"}});
    EXPECT_TRUE(snapshot.find("usr"));
    EXPECT_FALSE(snapshot.find("usr/lib"));
    EXPECT_FALSE(snapshot.find("usr/lib/deep"));
    EXPECT_FALSE(snapshot.find("etc/passwd"));
    EXPECT_TRUE(snapshot.find("etc"));
}

TEST_F(SnapshotTest, NoChangeGivesNoChanges) {
    Snapshot before = scan();
    EXPECT_TRUE(changes_since(before).empty());
}

TEST_F(SnapshotTest, AddedFileIsAddedAndItsDirectoryModified) {
    Snapshot before = scan();
    let_the_clock_tick();
    test::write_text(path("etc/hosts"), "127.0.0.1 localhost\n");
    EXPECT_EQ(changes_since(before),
              (std::vector<Change>{{"etc", ChangeKind::modified}, {"etc/hosts", ChangeKind::added}}));
}

TEST_F(SnapshotTest, RewriteWithSameSizeAndRestoredMtimeIsCaughtByCtime) {
    struct stat st;
    ASSERT_EQ(::lstat(path("etc/passwd").c_str(), &st), 0);
    Snapshot before = scan();
    let_the_clock_tick();
    test::write_text(path("etc/passwd"), "evil:x:0:0\n");
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, path("etc/passwd").c_str(), times, 0), 0);
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"etc/passwd", ChangeKind::modified}}));
}

TEST_F(SnapshotTest, ChmodIsAModification) {
    Snapshot before = scan();
    ASSERT_EQ(::chmod(path("usr/lib/deep/other").c_str(), 0600), 0);
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"usr/lib/deep/other", ChangeKind::modified}}));
}

TEST_F(SnapshotTest, ChownIsAModification) {
    if (!test::running_as_root()) GTEST_SKIP() << "chown to another uid needs root";
    Snapshot before = scan();
    ASSERT_EQ(::lchown(path("link").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::chown(path("etc").c_str(), 1000, 1000), 0);
    EXPECT_EQ(changes_since(before),
              (std::vector<Change>{{"etc", ChangeKind::modified}, {"link", ChangeKind::modified}}));
}

TEST_F(SnapshotTest, DeletedFileIsDeleted) {
    Snapshot before = scan();
    let_the_clock_tick();
    fs::remove(path("usr/lib/deep/other"));
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"usr/lib/deep", ChangeKind::modified},
                                                          {"usr/lib/deep/other", ChangeKind::deleted}}));
}

TEST_F(SnapshotTest, DeletedSubtreeCollapsesIntoOneDeletion) {
    Snapshot before = scan();
    let_the_clock_tick();
    fs::remove_all(path("usr/lib/deep"));
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"usr/lib", ChangeKind::modified},
                                                          {"usr/lib/deep", ChangeKind::deleted}}));
}

TEST_F(SnapshotTest, TypeChangeIsAModificationWithoutDeletionsBelow) {
    Snapshot before = scan();
    let_the_clock_tick();
    fs::remove_all(path("usr/lib/deep"));
    test::write_text(path("usr/lib/deep"), "now a file");
    fs::remove(path("link"));
    fs::create_directory(path("link"));
    test::write_text(path("link/inside"), "x");
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"link", ChangeKind::modified},
                                                          {"link/inside", ChangeKind::added},
                                                          {"usr/lib", ChangeKind::modified},
                                                          {"usr/lib/deep", ChangeKind::modified}}));
}

// A directory removed and made again hides what the lower layers had in it (an opaque directory in the layer),
// so its old children are not listed one by one and everything now in it is added, even a file that looks
// like one that was there before.
TEST_F(SnapshotTest, DirectoryRecreatedWithSameMetadataIsReplacedThroughItsInode) {
    fs::create_directory(path("d"));
    test::write_text(path("d/gone"), "old");
    test::write_text(path("d/again"), "same");
    Snapshot before = scan();
    // The old directory leaves the tree but stays alive, so that the new one cannot reuse its inode number
    // (a freed one may be reused at once on ext4).
    TempDir elsewhere = std::move(*TempDir::create(default_temp_parent(), "kiln-snapshot-old-"));
    fs::rename(path("d"), elsewhere.path() + "/d");
    fs::create_directory(path("d"));
    test::write_text(path("d/again"), "same");
    auto changes = changes_since(before);
    EXPECT_EQ(changes, (std::vector<Change>{{"d", ChangeKind::replaced}, {"d/again", ChangeKind::added}}));
}

TEST_F(SnapshotTest, XattrChangeOnAFileIsAModification) {
    Snapshot before = scan();
    if (::lsetxattr(path("etc/passwd").c_str(), "user.kiln-test", "1", 1, 0) != 0)
        GTEST_SKIP() << "this filesystem has no user xattrs: " << std::strerror(errno);
    auto changes = changes_since(before);
    EXPECT_NE(std::find(changes.begin(), changes.end(), Change{"etc/passwd", ChangeKind::modified}), changes.end());
}

TEST_F(SnapshotTest, XattrChangeOnADirectoryIsAModification) {
    Snapshot before = scan();
    if (::lsetxattr(path("usr/lib").c_str(), "user.kiln-test", "1", 1, 0) != 0)
        GTEST_SKIP() << "this filesystem has no user xattrs: " << std::strerror(errno);
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"usr/lib", ChangeKind::modified}}));
}

// The Kaniko modes, each on the change that tells it apart.
class SnapshotModeTest : public SnapshotTest {
protected:
    Snapshot scan_in(SnapshotMode mode, const Snapshot* previous = nullptr) {
        ScanOptions options;
        options.mode = mode;
        options.previous = previous;
        return scan(options);
    }
    // Rewrites etc/passwd with `content` and restores its mtime, as `touch -r` would.
    void rewrite_keeping_mtime(const std::string& content) {
        struct stat st;
        ASSERT_EQ(::lstat(path("etc/passwd").c_str(), &st), 0);
        let_the_clock_tick();
        test::write_text(path("etc/passwd"), content);
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        ASSERT_EQ(::utimensat(AT_FDCWD, path("etc/passwd").c_str(), times, 0), 0);
    }
};

TEST_F(SnapshotModeTest, ModeNamesParseAndUnknownNamesAreRefused) {
    EXPECT_EQ(*parse_snapshot_mode("full"), SnapshotMode::full);
    EXPECT_EQ(*parse_snapshot_mode("REDO"), SnapshotMode::redo);
    EXPECT_EQ(*parse_snapshot_mode("time"), SnapshotMode::time);
    EXPECT_EQ(*parse_snapshot_mode("metadata"), SnapshotMode::metadata);
    EXPECT_FALSE(parse_snapshot_mode("fast"));
}

TEST_F(SnapshotModeTest, FullCatchesNewContentWithRestoredMtimeAndSize) {
    Snapshot before = scan_in(SnapshotMode::full);
    rewrite_keeping_mtime("evil:x:0:0\n");
    EXPECT_EQ(diff_snapshots(before, scan_in(SnapshotMode::full, &before)),
              (std::vector<Change>{{"etc/passwd", ChangeKind::modified}}));
}

TEST_F(SnapshotModeTest, FullIgnoresARewriteWithTheSameBytesAndTimes) {
    Snapshot before = scan_in(SnapshotMode::full);
    rewrite_keeping_mtime("root:x:0:0\n");
    EXPECT_TRUE(diff_snapshots(before, scan_in(SnapshotMode::full, &before)).empty());
}

TEST_F(SnapshotModeTest, RedoMissesNewContentWithRestoredMtimeAndSize) {
    Snapshot before = scan_in(SnapshotMode::redo);
    rewrite_keeping_mtime("evil:x:0:0\n");
    EXPECT_TRUE(diff_snapshots(before, scan_in(SnapshotMode::redo)).empty());
}

TEST_F(SnapshotModeTest, RedoCatchesChmod) {
    Snapshot before = scan_in(SnapshotMode::redo);
    ASSERT_EQ(::chmod(path("usr/lib/deep/other").c_str(), 0600), 0);
    EXPECT_EQ(diff_snapshots(before, scan_in(SnapshotMode::redo)),
              (std::vector<Change>{{"usr/lib/deep/other", ChangeKind::modified}}));
}

TEST_F(SnapshotModeTest, TimeMissesChmod) {
    Snapshot before = scan_in(SnapshotMode::time);
    ASSERT_EQ(::chmod(path("usr/lib/deep/other").c_str(), 0600), 0);
    EXPECT_TRUE(diff_snapshots(before, scan_in(SnapshotMode::time)).empty());
}

TEST_F(SnapshotModeTest, TimeCatchesANewMtime) {
    Snapshot before = scan_in(SnapshotMode::time);
    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path("usr/lib/deep/other").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
    EXPECT_EQ(diff_snapshots(before, scan_in(SnapshotMode::time)),
              (std::vector<Change>{{"usr/lib/deep/other", ChangeKind::modified}}));
}

TEST_F(SnapshotTest, NewHardlinkModifiesTheOriginalToo) {
    Snapshot before = scan();
    let_the_clock_tick();
    fs::create_hard_link(path("etc/passwd"), path("etc/passwd-"));
    EXPECT_EQ(changes_since(before), (std::vector<Change>{{"etc", ChangeKind::modified},
                                                          {"etc/passwd", ChangeKind::modified},
                                                          {"etc/passwd-", ChangeKind::added}}));
}

TEST_F(SnapshotTest, ManyEntriesStayCompact) {
    // Not a benchmark: a guard against a record growing fat by accident.
    EXPECT_LE(sizeof(FileInfo), 64u);
}

}  // namespace
}  // namespace kiln
