// ADD's local archives: recognised by content whatever their compression, unpacked into the destination the
// way Docker's untar does, and hostile ones refused without a byte landing outside the destination.

#include "builder/sources/archive_source.hpp"

#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

using test::TestTar;

class ArchiveSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_base = std::move(*TempDir::create(default_temp_parent(), "kiln-archive-"));
        for (const char* dir : {"/context", "/root", "/outside"})
            std::filesystem::create_directory(m_base.path() + dir);
        test::write_text(m_base.path() + "/outside/secret", "HOST SECRET");
        m_outside_before = test::describe_tree(m_base.path() + "/outside");
        m_context = std::make_unique<RootFs>(std::move(*RootFs::open(m_base.path() + "/context")));
        m_root = std::make_unique<RootFs>(std::move(*RootFs::open(m_base.path() + "/root")));
    }
    void TearDown() override { EXPECT_EQ(test::describe_tree(m_base.path() + "/outside"), m_outside_before); }

    std::string context(const std::string& path) const { return m_base.path() + "/context/" + path; }
    std::string root(const std::string& path) const { return m_base.path() + "/root/" + path; }
    void put(const std::string& name, const std::string& bytes) { test::write_text(context(name), bytes); }

    // `bytes` compressed by the real tool (gzip, bzip2, xz, zstd), or nullopt when it is not installed.
    static std::optional<std::string> compress(const std::string& tool, const std::string& bytes) {
        ProcessOptions options;
        options.stdin_bytes = bytes;
        auto result = run_process({tool, "-c"}, options);
        if (!result || result->exit_code != 0) return std::nullopt;
        return result->stdout_bytes;
    }

    Status unpack(const std::string& name, const std::string& target, ArchiveUnpack options = {}) {
        return unpack_archive(*m_context, name, *m_root, target, options, m_written);
    }
    bool written(const std::string& path) const {
        return std::find(m_written.begin(), m_written.end(), path) != m_written.end();
    }

    TempDir m_base;
    std::unique_ptr<RootFs> m_context, m_root;
    std::vector<std::string> m_outside_before;
    std::vector<std::string> m_written;
};

TEST(ArchiveCompressionTest, MagicBytesNameTheCompression) {
    EXPECT_EQ(detect_archive_compression("\x1f\x8b\x08\x00"), ArchiveCompression::gzip);
    EXPECT_EQ(detect_archive_compression("BZh91AY"), ArchiveCompression::bzip2);
    EXPECT_EQ(detect_archive_compression(std::string_view("\xfd"
                                                          "7zXZ\x00\x00",
                                                          7)),
              ArchiveCompression::xz);
    EXPECT_EQ(detect_archive_compression("\x28\xb5\x2f\xfd\x00"), ArchiveCompression::zstd);
    EXPECT_EQ(detect_archive_compression("ustar"), ArchiveCompression::none);
    EXPECT_EQ(detect_archive_compression("\x1f\x8b"), ArchiveCompression::none);  // too short to tell
}

TEST_F(ArchiveSourceTest, EveryCompressionIsRecognisedByContentAndUnpacked) {
    std::string tar =
        TestTar().dir("app", 0750, 1234, 2345).file("app/run.sh", "#!/bin/sh\n", 0755, 1234, 2345).bytes();
    for (std::string tool : {"", "gzip", "bzip2", "xz", "zstd"}) {
        SCOPED_TRACE(tool.empty() ? "plain tar" : tool);
        std::optional<std::string> bytes = tool.empty() ? tar : compress(tool, tar);
        if (!bytes) {
            GTEST_SKIP() << tool << " is not installed (Debian: gzip, bzip2, xz-utils, zstd)";
        }
        std::string name = "archive-" + (tool.empty() ? "plain" : tool) + ".data";  // the name says nothing
        put(name, *bytes);
        auto archive = is_tar_archive(*m_context, name);
        ASSERT_TRUE(archive) << archive.error().message();
        EXPECT_TRUE(*archive);
        std::string target = "/dst/" + (tool.empty() ? "plain" : tool);
        auto unpacked = unpack(name, target);
        ASSERT_TRUE(unpacked) << unpacked.error().message();
        std::string file = root(target.substr(1) + "/app/run.sh");
        EXPECT_EQ(test::read_text(file), "#!/bin/sh\n");
        struct stat st;
        ASSERT_EQ(::lstat(file.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0755u);
        if (test::running_as_root()) {
            EXPECT_EQ(st.st_uid, 1234u);  // the archive's owner, without --chown
        }
        ASSERT_EQ(::lstat(root(target.substr(1) + "/app").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0750u);
    }
}

TEST_F(ArchiveSourceTest, FilesThatAreNotTarArchivesAreNot) {
    put("text", "just some text\n");
    put("empty", "");
    put("zeros", std::string(4096, '\0'));  // an empty tar: no first entry, so Docker copies it
    put("garbage-ustar", std::string(257, 'x') + "ustar" + std::string(762, 'y'));
    if (auto gz = compress("gzip", "not a tar inside\n")) put("text.gz", *gz);
    std::filesystem::create_directory(context("dir"));
    for (const char* name : {"text", "empty", "zeros", "garbage-ustar", "text.gz", "dir"}) {
        if (!path_exists(context(name))) continue;
        auto archive = is_tar_archive(*m_context, name);
        ASSERT_TRUE(archive) << name << ": " << archive.error().message();
        EXPECT_FALSE(*archive) << name;
    }
}

TEST_F(ArchiveSourceTest, PathTraversalAndAbsoluteNamesAreRefused) {
    put("climb.tar", TestTar().file("ok", "x").file("../../outside/secret", "PWNED").bytes());
    auto climb = unpack("climb.tar", "/dst");
    ASSERT_FALSE(climb);
    EXPECT_NE(climb.error().message().find("climb.tar"), std::string::npos) << climb.error().message();
    EXPECT_NE(climb.error().message().find("../../outside/secret"), std::string::npos)
        << climb.error().message();
    put("absolute.tar", TestTar().file("/etc/passwd", "root::0:0::/:/bin/sh\n").bytes());
    auto absolute = unpack("absolute.tar", "/dst");
    ASSERT_FALSE(absolute);
    EXPECT_NE(absolute.error().message().find("absolute"), std::string::npos) << absolute.error().message();
    EXPECT_FALSE(path_exists(root("etc/passwd")));
}

TEST_F(ArchiveSourceTest, SymlinkThenWriteStaysInsideTheDestination) {
    // Docker refuses a relative link that climbs above the directory it unpacks into.
    put("climbing-link.tar", TestTar().symlink("up", "../../..").file("up/outside/secret", "PWNED").bytes());
    auto climbing = unpack("climbing-link.tar", "/dst/a");
    ASSERT_FALSE(climbing);
    EXPECT_NE(climbing.error().message().find("climbs above"), std::string::npos)
        << climbing.error().message();
    // An absolute link is resolved inside the destination, as in Docker's chrooted untar.
    put("absolute-link.tar", TestTar().symlink("top", "/").file("top/evil", "x").bytes());
    auto absolute = unpack("absolute-link.tar", "/dst/b");
    ASSERT_TRUE(absolute) << absolute.error().message();
    EXPECT_EQ(test::read_text(root("dst/b/evil")), "x");
    EXPECT_FALSE(path_exists(root("evil")));
    EXPECT_TRUE(written("dst/b/evil"));  // reported where it really is, not as "dst/b/top/evil"
    EXPECT_FALSE(written("dst/b/top/evil"));
}

TEST_F(ArchiveSourceTest, WhiteoutNamesAreRefusedNotApplied) {
    std::filesystem::create_directories(root("dst"));
    test::write_text(root("dst/victim"), "keep me");
    put("whiteout.tar", TestTar().file(".wh.victim", "").bytes());
    auto result = unpack("whiteout.tar", "/dst");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find(".wh."), std::string::npos) << result.error().message();
    EXPECT_EQ(test::read_text(root("dst/victim")), "keep me");
}

TEST_F(ArchiveSourceTest, ExistingDirectoriesTakeTheArchivesMetadataExceptTheRoot) {
    std::filesystem::create_directories(root("srv/data"));
    ASSERT_EQ(::chmod(root("srv/data").c_str(), 0700), 0);
    struct stat before;
    ASSERT_EQ(::lstat(root("srv/data").c_str(), &before), 0);
    put("merge.tar",
        TestTar().dir("./", 0777, 1234, 1234).dir("data", 0777, 1234, 1234).file("data/new", "n").bytes());
    ASSERT_TRUE(unpack("merge.tar", "/srv"));
    // Docker's untar, and so Kaniko and buildah: a directory the archive names is redefined by it, but the
    // archive's root entry "./" never touches the destination itself.
    struct stat srv;
    ASSERT_EQ(::lstat(root("srv").c_str(), &srv), 0);
    EXPECT_EQ(srv.st_uid, 0u);
    struct stat data;
    ASSERT_EQ(::lstat(root("srv/data").c_str(), &data), 0);
    if (test::running_as_root()) {
        EXPECT_EQ(data.st_uid, 1234u);
    }
    EXPECT_EQ(data.st_mode & 07777, 0777u);
    EXPECT_EQ(test::read_text(root("srv/data/new")), "n");
}

TEST_F(ArchiveSourceTest, ChownReplacesEveryOwnerIncludingImpliedDirectories) {
    if (!test::running_as_root()) GTEST_SKIP() << "chown to other ids needs root";
    put("owned.tar",
        TestTar().file("implied/deep/file", "f", 0640, 1234, 2345).dir("d", 0700, 1234, 2345).bytes());
    ASSERT_TRUE(unpack("owned.tar", "/new/dst", ArchiveUnpack{.owner = CopyOwner{42, 43}}));
    for (const char* path : {"new", "new/dst", "new/dst/implied", "new/dst/implied/deep",
                             "new/dst/implied/deep/file", "new/dst/d"}) {
        struct stat st;
        ASSERT_EQ(::lstat(root(path).c_str(), &st), 0) << path;
        EXPECT_EQ(st.st_uid, 42u) << path;
        EXPECT_EQ(st.st_gid, 43u) << path;
    }
    struct stat file;
    ASSERT_EQ(::lstat(root("new/dst/implied/deep/file").c_str(), &file), 0);
    EXPECT_EQ(file.st_mode & 07777, 0640u);  // the archive's mode stays
}

TEST_F(ArchiveSourceTest, WrittenPathsAreTheResolvedDestinationAndEveryEntry) {
    std::filesystem::create_directories(root("real"));
    ASSERT_EQ(::symlink("/real", root("link").c_str()), 0);
    put("small.tar", TestTar().dir("sub").file("sub/f", "f").bytes());
    ASSERT_TRUE(unpack("small.tar", "/link/out"));
    EXPECT_TRUE(written("real/out"));
    EXPECT_TRUE(written("real/out/sub"));
    EXPECT_TRUE(written("real/out/sub/f"));
    EXPECT_FALSE(written("link/out/sub/f"));
}

TEST_F(ArchiveSourceTest, CompressedStreamBrokenAfterAGoodStartFailsNamingTheArchive) {
    std::string big;
    for (int i = 0; i < 64; ++i) big += std::string(4096, static_cast<char>('a' + i % 26));
    TestTar tar;
    for (int i = 0; i < 8; ++i) tar.file("f" + std::to_string(i), big);
    auto gz = compress("gzip", tar.bytes());
    if (!gz) GTEST_SKIP() << "gzip is not installed";
    put("cut.tar.gz", gz->substr(0, gz->size() / 2));
    auto archive = is_tar_archive(*m_context, "cut.tar.gz");
    ASSERT_TRUE(archive);
    EXPECT_TRUE(*archive);  // the first header is fine: it is an archive, and a broken one
    auto result = unpack("cut.tar.gz", "/dst");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("cut.tar.gz"), std::string::npos) << result.error().message();
}

}  // namespace
}  // namespace kiln
