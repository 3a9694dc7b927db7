#include "layers/extract.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <functional>

#include "common/process.hpp"
#include "extract_fixture.hpp"
#include "userns_child.hpp"

namespace kiln {
namespace {

using test::run_in_user_namespace;

TEST_F(ExtractTest, RegularFileGetsContentModeOwnerAndMtime) {
    apply_ok(TestTar().file("etc/config", "key=value\n", 0640, other_uid(), other_gid()));
    EXPECT_EQ(content("etc/config"), "key=value\n");
    struct stat st = lstat_of("etc/config");
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_uid, other_uid());
    EXPECT_EQ(st.st_gid, other_gid());
    EXPECT_EQ(st.st_mtim.tv_sec, k_mtime);
}

TEST_F(ExtractTest, SetuidSetgidAndStickyBitsSurviveChown) {
    if (!test::running_as_root()) GTEST_SKIP() << "needs root to chown to another uid";
    apply_ok(TestTar()
                 .file("bin/su", "elf", 04755, 0, 0)
                 .file("bin/wall", "elf", 02755, 1000, 5)
                 .dir("tmp", 01777, 1000, 1000)
                 .file("bin/both", "elf", 06711, 1000, 1000));
    EXPECT_EQ(lstat_of("bin/su").st_mode & 07777, 04755u);
    EXPECT_EQ(lstat_of("bin/wall").st_mode & 07777, 02755u);
    EXPECT_EQ(lstat_of("tmp").st_mode & 07777, 01777u);
    EXPECT_EQ(lstat_of("bin/both").st_mode & 07777, 06711u);
    EXPECT_EQ(lstat_of("bin/both").st_uid, 1000u);
}

TEST_F(ExtractTest, MissingParentsAreCreated) {
    apply_ok(TestTar().file("a/b/c/file", "x"));
    EXPECT_TRUE(S_ISDIR(lstat_of("a/b/c").st_mode));
    EXPECT_EQ(lstat_of("a/b").st_mode & 07777, 0755u);
    EXPECT_EQ(content("a/b/c/file"), "x");
}

TEST_F(ExtractTest, DirectoryModeAndMtimeAreAppliedAfterItsEntries) {
    apply_ok(
        TestTar().dir("data", 0555).file("data/one", "1").dir("data/sub", 0500).file("data/sub/two", "2"));
    EXPECT_EQ(lstat_of("data").st_mtim.tv_sec, k_mtime);
    EXPECT_EQ(lstat_of("data").st_mode & 07777, 0555u);
    EXPECT_EQ(lstat_of("data/sub").st_mode & 07777, 0500u);
    EXPECT_EQ(content("data/sub/two"), "2");
}

TEST_F(ExtractTest, DirectoryOverDirectoryKeepsContentsAndUpdatesMetadata) {
    apply_ok(TestTar().dir("d", 0755).file("d/lower", "from layer 1"));
    apply_ok(TestTar().dir("d", 0700, other_uid(), other_gid()));
    EXPECT_EQ(content("d/lower"), "from layer 1");
    EXPECT_EQ(lstat_of("d").st_mode & 07777, 0700u);
    EXPECT_EQ(lstat_of("d").st_uid, other_uid());
}

TEST_F(ExtractTest, SymlinkKeepsItsTargetAndOwner) {
    apply_ok(TestTar().add({.name = "link",
                            .type = AE_IFLNK,
                            .link = "/etc/passwd",
                            .mode = 0777,
                            .uid = other_uid(),
                            .gid = other_gid()}));
    EXPECT_EQ(std::filesystem::read_symlink(m_root_path + "/link"), "/etc/passwd");
    EXPECT_EQ(lstat_of("link").st_uid, other_uid());
    EXPECT_EQ(lstat_of("link").st_mtim.tv_sec, k_mtime);
}

TEST_F(ExtractTest, HardlinkWithinALayerSharesTheInode) {
    apply_ok(TestTar().file("bin/a", "binary").hardlink("bin/b", "bin/a"));
    EXPECT_EQ(lstat_of("bin/a").st_ino, lstat_of("bin/b").st_ino);
    EXPECT_EQ(lstat_of("bin/a").st_nlink, 2u);
}

TEST_F(ExtractTest, HardlinkToAFileFromAnEarlierLayer) {
    apply_ok(TestTar().file("usr/lib/libc.so", "library"));
    apply_ok(TestTar().hardlink("lib/libc.so", "./usr/lib/libc.so"));
    EXPECT_EQ(lstat_of("lib/libc.so").st_ino, lstat_of("usr/lib/libc.so").st_ino);
    EXPECT_EQ(content("lib/libc.so"), "library");
}

TEST_F(ExtractTest, HardlinkToAMissingTargetIsAnError) {
    expect_refused(TestTar().hardlink("link", "nowhere"), "link");
}

TEST_F(ExtractTest, FifoIsCreatedWithItsMode) {
    apply_ok(TestTar().add({.name = "run/pipe", .type = AE_IFIFO, .mode = 0620}));
    EXPECT_TRUE(S_ISFIFO(lstat_of("run/pipe").st_mode));
    EXPECT_EQ(lstat_of("run/pipe").st_mode & 07777, 0620u);
}

TEST_F(ExtractTest, DevicesAreCreatedWhenPermitted) {
    if (!test::running_as_root()) GTEST_SKIP() << "mknod of devices needs root";
    auto stats =
        apply(TestTar()
                  .add({.name = "dev/null", .type = AE_IFCHR, .mode = 0666, .rdev_major = 1, .rdev_minor = 3})
                  .add({.name = "dev/loop0", .type = AE_IFBLK, .mode = 0660, .rdev_major = 7}));
    ASSERT_TRUE(stats) << stats.error().message();
    if (stats->skipped_devices > 0)
        GTEST_SKIP() << "this root may not create devices (a container without CAP_MKNOD)";
    EXPECT_TRUE(S_ISCHR(lstat_of("dev/null").st_mode));
    EXPECT_EQ(lstat_of("dev/null").st_rdev, ::makedev(1, 3));
    EXPECT_TRUE(S_ISBLK(lstat_of("dev/loop0").st_mode));
    EXPECT_EQ(lstat_of("dev/null").st_mode & 07777, 0666u);
}

TEST_F(ExtractTest, DevicesAreSkippedWithOneWarningWhereMknodIsForbidden) {
    TestTar tar;
    tar.add({.name = "dev/null", .type = AE_IFCHR, .mode = 0666, .rdev_major = 1, .rdev_minor = 3})
        .add({.name = "dev/zero", .type = AE_IFCHR, .mode = 0666, .rdev_major = 1, .rdev_minor = 5})
        .add({.name = "dev/sda", .type = AE_IFBLK, .mode = 0660, .rdev_major = 8})
        .add({.name = "dev/pipe", .type = AE_IFIFO, .mode = 0600})
        .file("etc/after", "still extracted");
    int code = run_in_user_namespace([&] {
        test::LogCapture log;
        auto stats = apply(tar);
        if (!stats) return 1;
        if (stats->skipped_devices != 3) return 2;
        if (log.count(LogLevel::warn) != 1) return 3;
        if (exists("dev/null") || exists("dev/sda")) return 4;
        if (!exists("dev/pipe") || content("etc/after") != "still extracted") return 5;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0) << "1: extraction failed, 2: wrong skip count, 3: not exactly one warning, "
                          "4: a device was created, 5: other entries missing";
}

TEST_F(ExtractTest, EachLayerWarnsOnceAboutTheDevicesItSkips) {
    TestTar first, second;
    first.add({.name = "dev/null", .type = AE_IFCHR, .mode = 0666, .rdev_major = 1, .rdev_minor = 3})
        .add({.name = "dev/zero", .type = AE_IFCHR, .mode = 0666, .rdev_major = 1, .rdev_minor = 5});
    second.add({.name = "dev/sda", .type = AE_IFBLK, .mode = 0660, .rdev_major = 8})
        .add({.name = "dev/sdb", .type = AE_IFBLK, .mode = 0660, .rdev_major = 8, .rdev_minor = 16});
    int code = run_in_user_namespace([&] {
        test::LogCapture log;
        if (!apply(first) || log.count(LogLevel::warn) != 1) return 1;
        if (!apply(second) || log.count(LogLevel::warn) != 2) return 2;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0) << "1: the first layer did not warn exactly once, 2: the second layer did not warn once "
                          "of its own";
}

TEST_F(ExtractTest, UnmappedOwnershipIsRecordedOrFailsAsAsked) {
    TestTar tar;
    tar.file("a", "x", 0644, 1234, 1234).file("b", "y", 0644, 4321, 4321);
    int code = run_in_user_namespace([&] {
        if (apply(tar, OwnershipFailure::error)) return 1;
        test::LogCapture log;
        auto stats = apply(tar, OwnershipFailure::warn_once);
        if (!stats) return 2;
        if (log.count(LogLevel::warn) != 0) return 3;  // regular files hold the override: nothing is lost
        if (content("b") != "y") return 4;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0)
        << "1: unmapped ids accepted, 2: warn_once failed, 3: a warning for ownership that was kept, 4: file missing";
}

TEST_F(ExtractTest, OwnershipThatCannotBeRecordedWarnsOncePerLayer) {
    TestTar tar;
    tar.add({.name = "l1", .type = AE_IFLNK, .link = "a", .mode = 0777, .uid = 1234, .gid = 1234})
        .add({.name = "l2", .type = AE_IFLNK, .link = "b", .mode = 0777, .uid = 4321, .gid = 4321})
        .add({.name = "pipe", .type = AE_IFIFO, .mode = 0600, .uid = 1234, .gid = 1234});
    int code = run_in_user_namespace([&] {
        test::LogCapture log;
        auto stats = apply(tar, OwnershipFailure::warn_once);
        if (!stats) return 1;
        if (log.count(LogLevel::warn) != 1) return 2;
        if (!exists("l2") || !exists("pipe")) return 3;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0) << "1: extraction failed, 2: not exactly one warning, 3: entries missing";
}

TEST_F(ExtractTest, GnuSparseFileKeepsItsSizeHolesAndData) {
    std::string work = m_base.path() + "/sparse-src";
    std::filesystem::create_directory(work);
    {
        UniqueFd fd(::open((work + "/disk.img").c_str(), O_WRONLY | O_CREAT, 0644));
        ASSERT_TRUE(fd);
        ASSERT_EQ(::pwrite(fd.get(), "head", 4, 0), 4);
        ASSERT_EQ(::pwrite(fd.get(), "tail", 4, (64 << 20) - 4), 4);
    }
    auto tar = run_process({"tar", "--sparse", "--format=gnu", "-cf", "-", "-C", work, "disk.img"});
    ASSERT_TRUE(tar && tar->exit_code == 0);
    ASSERT_LT(tar->stdout_bytes.size(), 1u << 20) << "GNU tar stored the holes";
    StringReader source(tar->stdout_bytes);
    auto stats = apply_layer(*m_root, source, {.layer_name = "sparse"});
    ASSERT_TRUE(stats) << stats.error().message();
    struct stat st = lstat_of("disk.img");
    EXPECT_EQ(st.st_size, 64 << 20);
    EXPECT_LT(st.st_blocks * 512, 1 << 20) << "holes stay holes";
    std::string data = content("disk.img");
    EXPECT_EQ(data.substr(0, 4), "head");
    EXPECT_EQ(data.substr(data.size() - 4), "tail");
    EXPECT_EQ(data.find_first_not_of('\0', 4), data.size() - 4);
}

TEST_F(ExtractTest, XattrsFromPaxHeadersAreApplied) {
    test::write_text(m_root_path + "/probe", "");
    if (::setxattr((m_root_path + "/probe").c_str(), "user.probe", "1", 1, 0) != 0)
        GTEST_SKIP() << "this filesystem does not take user xattrs";
    apply_ok(TestTar().add(
        {.name = "file", .type = AE_IFREG, .content = "x", .xattrs = {{"user.kiln", "value"}}}));
    char value[16] = {};
    ASSERT_EQ(::getxattr((m_root_path + "/file").c_str(), "user.kiln", value, sizeof value), 5);
    EXPECT_STREQ(value, "value");
}

TEST_F(ExtractTest, OverlayPrivateXattrsAreNotApplied) {
    if (!test::running_as_root()) GTEST_SKIP() << "trusted.* xattrs need root";
    apply_ok(TestTar().add(
        {.name = "d", .type = AE_IFDIR, .mode = 0755, .xattrs = {{"trusted.overlay.opaque", "y"}}}));
    char value[4];
    EXPECT_LT(::getxattr((m_root_path + "/d").c_str(), "trusted.overlay.opaque", value, sizeof value), 0);
}

TEST_F(ExtractTest, UnsettableXattrsWarnOncePerLayer) {
    test::LogCapture log;
    apply_ok(TestTar()
                 .add({.name = "a", .type = AE_IFREG, .xattrs = {{"bogus.namespace", "1"}}})
                 .add({.name = "b", .type = AE_IFREG, .xattrs = {{"bogus.namespace", "2"}}}));
    EXPECT_EQ(log.count(LogLevel::warn), 1u);
    EXPECT_TRUE(exists("b"));
}

TEST_F(ExtractTest, DotSlashPrefixesAreNormal) {
    struct stat root_before = lstat_of("");
    apply_ok(TestTar().dir("./", 0700).dir("./etc/").file("./etc/hostname", "kiln\n"));
    EXPECT_EQ(content("etc/hostname"), "kiln\n");
    EXPECT_EQ(lstat_of("").st_mode, root_before.st_mode) << "the root's own metadata is not the layer's";
}

TEST_F(ExtractTest, StatsCountEntriesBytesAndWhiteouts) {
    apply_ok(TestTar().file("gone", "x"));
    auto stats = apply(TestTar().dir("d").file("d/f", "12345").file("g", "678").file(".wh.gone", ""));
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(stats->entries, 4u);
    EXPECT_EQ(stats->bytes, 8u);
    EXPECT_EQ(stats->whiteouts, 1u);
    EXPECT_EQ(stats->skipped_devices, 0u);
}

TEST_F(ExtractTest, WholeStreamIsConsumedIncludingPaddingAfterTheArchive) {
    std::string bytes = TestTar().file("f", "x").bytes() + std::string(20000, '\0');
    StringReader source(bytes);
    HashingReader hashing(source);
    auto stats = apply_layer(*m_root, hashing, {.layer_name = "padded"});
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(hashing.size(), bytes.size());
}

TEST_F(ExtractTest, EmptyStreamIsALayerWithoutEntries) {
    StringReader source("");
    auto stats = apply_layer(*m_root, source, {.layer_name = "empty"});
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(stats->entries, 0u);
}

TEST_F(ExtractTest, TruncatedArchiveIsAnError) {
    std::string bytes = TestTar().file("big", std::string(100'000, 'b')).bytes();
    StringReader source(bytes.substr(0, 50'000));
    auto stats = apply_layer(*m_root, source, {.layer_name = "sha256:truncated"});
    ASSERT_FALSE(stats);
    EXPECT_NE(stats.error().message().find("sha256:truncated"), std::string::npos);
}

TEST_F(ExtractTest, GarbageIsAnError) {
    StringReader source(std::string(4096, 'x'));
    EXPECT_FALSE(apply_layer(*m_root, source, {.layer_name = "garbage"}));
}

TEST_F(ExtractTest, SourceErrorsArePassedOn) {
    class FailingReader final : public Reader {
    public:
        Result<size_t> read(char*, size_t) override { return fail("digest mismatch in the source"); }
    } source;
    auto stats = apply_layer(*m_root, source, {.layer_name = "failing"});
    ASSERT_FALSE(stats);
    EXPECT_NE(stats.error().message().find("digest mismatch in the source"), std::string::npos);
}

}  // namespace
}  // namespace kiln
