#include "layers/layer_writer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// The entries of a tar as "name type", read with libarchive directly.
std::vector<std::string> list_tar(const std::string& tar) {
    std::vector<std::string> names;
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    archive_read_support_filter_all(a.get());
    archive_read_open_memory(a.get(), tar.data(), tar.size());
    archive_entry* entry = nullptr;
    while (archive_read_next_header(a.get(), &entry) == ARCHIVE_OK) {
        std::string line = archive_entry_pathname(entry);
        if (archive_entry_hardlink(entry)) {
            line += std::string(" link ") + archive_entry_hardlink(entry);
        } else {
            line += str_cat(" ", std::oct, archive_entry_filetype(entry), " ", archive_entry_perm(entry),
                            std::dec, " ", archive_entry_uid(entry), ":", archive_entry_gid(entry), " ",
                            archive_entry_mtime(entry), " ", archive_entry_size(entry));
            const char* uname = archive_entry_uname(entry);
            const char* gname = archive_entry_gname(entry);
            if (uname && *uname) line += str_cat(" uname=", uname);
            if (gname && *gname) line += str_cat(" gname=", gname);
        }
        names.push_back(line);
    }
    return names;
}

class LayerWriterTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-writer-"));
        fs::create_directories(source("usr/bin"));
        fs::create_directories(source("etc/conf.d"));
        test::write_text(source("usr/bin/tool"), "#!/bin/sh\necho tool\n");
        ::chmod(source("usr/bin/tool").c_str(), 04755);
        test::write_text(source("etc/conf.d/app.conf"), std::string(100'000, 'c'));
        fs::create_hard_link(source("usr/bin/tool"), source("usr/bin/tool-alias"));
        fs::create_symlink("../etc", source("usr/etc-link"));
        ::mkfifo(source("etc/fifo").c_str(), 0640);
        ::chmod(source("etc").c_str(), 0750);
        if (test::running_as_root()) {
            ::lchown(source("etc/conf.d").c_str(), 1000, 2000);
            ::lchown(source("usr/etc-link").c_str(), 33, 33);
        }
        m_source = std::make_unique<RootFs>(std::move(*RootFs::open(m_dir.path() + "/source")));
    }

    std::string source(const std::string& relative) const { return m_dir.path() + "/source/" + relative; }

    Result<LayerWriteResult> write(const std::vector<LayerEntry>& entries, std::string& out,
                                   LayerWriteOptions options = {}) {
        StringWriter writer;
        auto result = write_layer(*m_source, entries, writer, options);
        out = writer.take();
        return result;
    }

    std::vector<LayerEntry> everything() const {
        return {{LayerEntryKind::path, "usr/bin/tool"}, {LayerEntryKind::path, "usr/bin/tool-alias"},
                {LayerEntryKind::path, "usr/etc-link"}, {LayerEntryKind::path, "etc/conf.d/app.conf"},
                {LayerEntryKind::path, "/etc/fifo"},    {LayerEntryKind::path, "usr/bin/tool"}};
    }

    TempDir m_dir;
    std::unique_ptr<RootFs> m_source;
};

TEST_F(LayerWriterTest, RoundTripRecreatesTheTree) {
    std::string blob;
    auto result = write(everything(), blob, {.compression = {.compression = Compression::gzip}});
    ASSERT_TRUE(result) << result.error().message();
    fs::create_directory(m_dir.path() + "/copy");
    auto copy = RootFs::open(m_dir.path() + "/copy");
    StringReader compressed(blob);
    auto tar = make_decompressor(compressed, Compression::gzip);
    auto stats = apply_layer(*copy, **tar, {.layer_name = "round-trip"});
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(test::describe_tree(m_dir.path() + "/copy"), test::describe_tree(m_dir.path() + "/source"));
    struct stat a, b;
    ASSERT_EQ(::lstat((m_dir.path() + "/copy/usr/bin/tool").c_str(), &a), 0);
    ASSERT_EQ(::lstat((m_dir.path() + "/copy/usr/bin/tool-alias").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino) << "the hardlink survives the round trip";
}

TEST_F(LayerWriterTest, UnusualNamesSurviveTheRoundTrip) {
    std::string long_dir = "very/" + std::string(120, 'd') + "/" + std::string(90, 'e');
    fs::create_directories(source(long_dir));
    test::write_text(source(long_dir + "/" + std::string(150, 'f')), "long");
    test::write_text(source("caf\xc3\xa9.txt"), "utf-8");
    test::write_text(source("raw\xff\xfe"), "not utf-8");
    std::string blob;
    auto result = write({{LayerEntryKind::path, long_dir + "/" + std::string(150, 'f')},
                         {LayerEntryKind::path, "caf\xc3\xa9.txt"},
                         {LayerEntryKind::path, "raw\xff\xfe"}},
                        blob, {.compression = {.compression = Compression::none}});
    ASSERT_TRUE(result) << result.error().message();
    fs::create_directory(m_dir.path() + "/copy");
    auto copy = RootFs::open(m_dir.path() + "/copy");
    StringReader tar(blob);
    auto stats = apply_layer(*copy, tar, {.layer_name = "names"});
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(test::read_text(m_dir.path() + "/copy/" + long_dir + "/" + std::string(150, 'f')), "long");
    EXPECT_EQ(test::read_text(m_dir.path() + "/copy/caf\xc3\xa9.txt"), "utf-8");
    EXPECT_EQ(test::read_text(m_dir.path() + "/copy/raw\xff\xfe"), "not utf-8");
    // UTF-8 is stored as standard PAX; only the name that is not UTF-8 is marked as raw bytes.
    EXPECT_NE(blob.find("path=caf\xc3\xa9.txt\n"), std::string::npos);
    EXPECT_EQ(blob.find("hdrcharset"), blob.rfind("hdrcharset"));
    EXPECT_NE(blob.find("hdrcharset=BINARY"), std::string::npos);
}

TEST_F(LayerWriterTest, SameTreeGivesTheSameBytes) {
    std::string first, second;
    auto a = write(everything(), first, {.compression = {.compression = Compression::zstd}});
    // Touching atime and reordering the request must not matter.
    test::read_text(source("etc/conf.d/app.conf"));
    auto entries = everything();
    std::reverse(entries.begin(), entries.end());
    auto b = write(entries, second, {.compression = {.compression = Compression::zstd}});
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->digest, b->digest);
    EXPECT_EQ(a->diff_id, b->diff_id);
    EXPECT_TRUE(first == second);
}

class LayerWriterDigests : public LayerWriterTest, public ::testing::WithParamInterface<Compression> {};

TEST_P(LayerWriterDigests, DigestAndDiffIdMatchIndependentTools) {
    std::string blob;
    auto result = write(everything(), blob, {.compression = {.compression = GetParam()}});
    ASSERT_TRUE(result) << result.error().message();
    std::string blob_path = m_dir.path() + "/blob";
    ASSERT_TRUE(write_file_atomic(blob_path, blob));
    std::string decompress = GetParam() == Compression::gzip   ? "gzip -dc"
                             : GetParam() == Compression::zstd ? "zstd -dc"
                                                               : "cat";
    auto diff_id = run_process({"sh", "-c", decompress + " < '" + blob_path + "' | sha256sum"});
    auto digest = run_process({"sha256sum", blob_path});
    auto size = run_process({"sh", "-c", decompress + " < '" + blob_path + "' | wc -c"});
    ASSERT_TRUE(diff_id && digest && size);
    EXPECT_EQ(diff_id->stdout_bytes.substr(0, 64), result->diff_id.encoded());
    EXPECT_EQ(digest->stdout_bytes.substr(0, 64), result->digest.encoded());
    EXPECT_EQ(std::stoull(size->stdout_bytes), result->uncompressed_size);
    EXPECT_EQ(blob.size(), result->compressed_size);
    EXPECT_EQ(result->compression, GetParam());
    if (GetParam() == Compression::none) {
        EXPECT_EQ(result->digest, result->diff_id);
    }
}

INSTANTIATE_TEST_SUITE_P(Compressions, LayerWriterDigests,
                         ::testing::Values(Compression::none, Compression::gzip, Compression::zstd),
                         [](const auto& param_info) {
                             return std::string(compression_name(param_info.param));
                         });

// The empty layer's diff_id, by which a step that changed nothing is spotted, is what a layer of no entries
// has, as tar itself writes one.
TEST_F(LayerWriterTest, ALayerOfNoEntriesHasTheEmptyLayerDiffId) {
    std::string blob;
    auto result = write({}, blob);
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->diff_id, empty_layer_diff_id());
    auto from_tar = run_process({"sh", "-c", "tar -cf - --files-from /dev/null --blocking-factor=2 | sha256sum"});
    ASSERT_TRUE(from_tar && from_tar->exit_code == 0);
    EXPECT_EQ(from_tar->stdout_bytes.substr(0, 64), empty_layer_diff_id().encoded());
}

TEST_F(LayerWriterTest, EntriesAreSortedWithParentsAndWrittenOnce) {
    std::string tar;
    auto result = write(everything(), tar, {.compression = {.compression = Compression::none}});
    ASSERT_TRUE(result) << result.error().message();
    std::vector<std::string> names;
    for (const std::string& line : list_tar(tar)) names.push_back(line.substr(0, line.find(' ')));
    EXPECT_EQ(names,
              (std::vector<std::string>{"etc/", "etc/conf.d/", "etc/conf.d/app.conf", "etc/fifo", "usr/",
                                        "usr/bin/", "usr/bin/tool", "usr/bin/tool-alias", "usr/etc-link"}));
}

TEST_F(LayerWriterTest, HeadersCarryLstatMetadataAndNoNames) {
    std::string tar;
    ASSERT_TRUE(write(everything(), tar, {.compression = {.compression = Compression::none}}));
    auto lines = list_tar(tar);
    struct stat st;
    ASSERT_EQ(::lstat(source("etc").c_str(), &st), 0);
    EXPECT_EQ(lines[0], str_cat("etc/ 40000 750 0:0 ", st.st_mtim.tv_sec, " 0")) << "no uname/gname";
    EXPECT_EQ(lines[7], "usr/bin/tool-alias link usr/bin/tool");
    EXPECT_EQ(tar.find("PaxHeader"), std::string::npos) << "plain entries need only a ustar header";
    EXPECT_EQ(tar.size() % 512, 0u);
    EXPECT_NE(lines[6].find(" 4755 "), std::string::npos) << lines[6];
    if (test::running_as_root()) {
        EXPECT_NE(lines[1].find(" 1000:2000 "), std::string::npos) << lines[1];
    }
}

TEST_F(LayerWriterTest, DeviceNodesAreRecordedWithTheirNumbers) {
    if (!test::running_as_root()) GTEST_SKIP() << "mknod of devices needs root";
    if (::mknod(source("etc/null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)) != 0)
        GTEST_SKIP() << "this root may not create devices";
    std::string tar;
    ASSERT_TRUE(write({{LayerEntryKind::path, "etc/null"}}, tar,
                      {.compression = {.compression = Compression::none}}));
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    archive_read_open_memory(a.get(), tar.data(), tar.size());
    archive_entry* entry = nullptr;
    ASSERT_EQ(archive_read_next_header(a.get(), &entry), ARCHIVE_OK);  // etc/
    ASSERT_EQ(archive_read_next_header(a.get(), &entry), ARCHIVE_OK);
    EXPECT_STREQ(archive_entry_pathname(entry), "etc/null");
    EXPECT_EQ(archive_entry_filetype(entry), static_cast<unsigned>(AE_IFCHR));
    EXPECT_EQ(archive_entry_rdevmajor(entry), 1u);
    EXPECT_EQ(archive_entry_rdevminor(entry), 3u);
}

TEST_F(LayerWriterTest, TimestampOptionOverridesEveryMtime) {
    std::string tar;
    ASSERT_TRUE(
        write(everything(), tar, {.compression = {.compression = Compression::none}, .timestamp = 12345}));
    for (const std::string& line : list_tar(tar)) {
        if (line.find(" link ") != std::string::npos) continue;
        EXPECT_NE(line.find(" 12345 "), std::string::npos) << line;
    }
}

TEST_F(LayerWriterTest, WhiteoutsAndOpaqueMarkersHaveTheirNamesAndZeroMetadata) {
    std::string tar;
    auto result = write({{LayerEntryKind::whiteout, "etc/conf.d/old.conf"},
                         {LayerEntryKind::opaque_marker, "usr/bin"},
                         {LayerEntryKind::path, "usr/bin/tool"}},
                        tar, {.compression = {.compression = Compression::none}});
    ASSERT_TRUE(result) << result.error().message();
    auto lines = list_tar(tar);
    ASSERT_EQ(lines.size(), 7u);
    EXPECT_EQ(lines[1].substr(0, lines[1].find(' ')), "etc/conf.d/");
    EXPECT_EQ(lines[2], "etc/conf.d/.wh.old.conf 100000 0 0:0 0 0");
    EXPECT_EQ(lines[4].substr(0, lines[4].find(' ')), "usr/bin/");
    EXPECT_EQ(lines[5], "usr/bin/.wh..wh..opq 100000 0 0:0 0 0") << "the marker comes first in its directory";
    EXPECT_EQ(lines[6].substr(0, lines[6].find(' ')), "usr/bin/tool");
}

TEST_F(LayerWriterTest, EntriesFromChangesTurnDeletionsIntoWhiteouts) {
    auto entries = layer_entries_from_changes(
        {{"etc", ChangeKind::modified}, {"etc/new", ChangeKind::added}, {"old", ChangeKind::deleted}});
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].kind, LayerEntryKind::path);
    EXPECT_EQ(entries[1].kind, LayerEntryKind::path);
    EXPECT_EQ(entries[2].kind, LayerEntryKind::whiteout);
    EXPECT_EQ(entries[2].path, "old");
}

TEST_F(LayerWriterTest, EntriesFromChangesMarkAReplacedDirectoryOpaque) {
    auto entries =
        layer_entries_from_changes({{"var/log", ChangeKind::replaced}, {"var/log/new", ChangeKind::added}});
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].kind, LayerEntryKind::path);
    EXPECT_EQ(entries[1].kind, LayerEntryKind::opaque_marker);
    EXPECT_EQ(entries[1].path, "var/log");
    EXPECT_EQ(entries[2].kind, LayerEntryKind::path);
    EXPECT_EQ(entries[2].path, "var/log/new");
}

TEST_F(LayerWriterTest, AncestorThatIsASymlinkIsAnError) {
    std::string tar;
    auto result = write({{LayerEntryKind::path, "usr/etc-link/conf.d"}}, tar, {});
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("usr/etc-link"), std::string::npos) << result.error().message();
}

TEST_F(LayerWriterTest, PathNamedLikeAWhiteoutIsRefused) {
    test::write_text(source(".wh.trick"), "");
    std::string tar;
    EXPECT_FALSE(write({{LayerEntryKind::path, ".wh.trick"}}, tar, {}));
}

TEST_F(LayerWriterTest, MissingPathIsAnError) {
    std::string tar;
    auto result = write({{LayerEntryKind::path, "etc/missing"}}, tar, {});
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("etc/missing"), std::string::npos);
}

TEST_F(LayerWriterTest, XattrsAreRecordedExceptOverlayPrivateOnes) {
    if (::setxattr(source("usr/bin/tool").c_str(), "user.kiln", "yes", 3, 0) != 0)
        GTEST_SKIP() << "this filesystem does not take user xattrs";
    ::setxattr(source("usr/bin/tool").c_str(), "user.overlay.origin", "x", 1, 0);
    std::string tar;
    ASSERT_TRUE(write({{LayerEntryKind::path, "usr/bin/tool"}}, tar,
                      {.compression = {.compression = Compression::none}}));
    EXPECT_NE(tar.find("SCHILY.xattr.user.kiln=yes"), std::string::npos);
    EXPECT_EQ(tar.find("overlay"), std::string::npos);
}

// A writer that only counts, standing in for a blob upload.
class CountingWriter final : public Writer {
public:
    using Writer::write;
    Status write(const char*, size_t size) override {
        m_size += size;
        return {};
    }
    std::uint64_t m_size = 0;
};

TEST_F(LayerWriterTest, LargeFileIsStreamedInBoundedMemory) {
    constexpr off_t k_size = 300LL << 20;
    {
        UniqueFd fd(::open(source("big.img").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
        ASSERT_TRUE(fd);
        ASSERT_EQ(::ftruncate(fd.get(), k_size), 0);
        ASSERT_EQ(::pwrite(fd.get(), "end", 3, k_size - 3), 3);
    }
    // In a child, so that ru_maxrss measures this write alone.
    pid_t pid = ::fork();
    if (pid == 0) {
        CountingWriter sink;
        auto result = write_layer(*m_source, {{LayerEntryKind::path, "big.img"}}, sink,
                                  {.compression = {.compression = Compression::gzip, .level = 1}});
        if (!result || result->uncompressed_size < static_cast<std::uint64_t>(k_size)) ::_exit(1);
        ::_exit(0);
    }
    ASSERT_GT(pid, 0);
    int status = 0;
    struct rusage usage {};
    ASSERT_EQ(::wait4(pid, &status, 0, &usage), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_LT(usage.ru_maxrss, 100 * 1024) << "peak RSS in KiB";
    RecordProperty("peak_rss_kib", static_cast<int>(usage.ru_maxrss));
}

}  // namespace
}  // namespace kiln
