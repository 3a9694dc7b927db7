// Layers written from a rootfs say what the image means, and replay exactly: replacements of every kind,
// deletions, hardlinks into lower layers, set-id and sticky bits, mtimes, file capabilities in their plain
// form, recorded ownership, and the layer timestamp on every entry.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "layers/file_metadata.hpp"
#include "layers/layer_writer.hpp"
#include "layers/snapshot_walk.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

struct TarHeader {
    std::string type;  // "file", "dir", "link", "hardlink", "other"
    std::string owner;
    unsigned mode = 0;
    std::int64_t mtime = 0;
    std::map<std::string, std::string> xattrs;
};

std::map<std::string, TarHeader> read_headers(const std::string& tar) {
    std::map<std::string, TarHeader> headers;
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    archive_read_open_memory(a.get(), tar.data(), tar.size());
    archive_entry* entry = nullptr;
    while (archive_read_next_header(a.get(), &entry) == ARCHIVE_OK) {
        TarHeader header;
        unsigned type = archive_entry_filetype(entry);
        header.type = archive_entry_hardlink(entry) ? "hardlink"
                      : type == AE_IFREG            ? "file"
                      : type == AE_IFDIR            ? "dir"
                      : type == AE_IFLNK            ? "link"
                                                    : "other";
        header.owner = str_cat(archive_entry_uid(entry), ":", archive_entry_gid(entry));
        header.mode = archive_entry_perm(entry);
        header.mtime = archive_entry_mtime(entry);
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        archive_entry_xattr_reset(entry);
        while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK)
            header.xattrs[name] = std::string(static_cast<const char*>(value), size);
        headers[archive_entry_pathname(entry)] = header;
    }
    return headers;
}

class LayerFidelityTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-fidelity-"));
        fs::create_directory(work(""));
        m_work = std::make_unique<RootFs>(std::move(*RootFs::open(work(""))));
    }

    std::string work(const std::string& path) const { return work_root() + "/" + path; }
    // Without a trailing slash: describe_tree() names entries relative to exactly this string.
    std::string work_root() const { return m_dir.path() + "/work"; }

    // Uncompressed, so that both replay() and read_headers() take the bytes as they are.
    Result<std::string> write(const std::vector<LayerEntry>& entries,
                              LayerWriteOptions options = {
                                  .compression = {.compression = Compression::none}}) {
        StringWriter out;
        KILN_TRY(write_layer(*m_work, entries, out, options));
        return out.take();
    }

    // Every path of the work tree, as a first layer would list them.
    std::vector<LayerEntry> everything() {
        std::vector<LayerEntry> entries;
        auto snapshot = scan_snapshot(*m_work);
        EXPECT_TRUE(snapshot);
        for (size_t i = 0; snapshot && i < snapshot->size(); ++i)
            entries.push_back({LayerEntryKind::path, std::string(snapshot->path(i))});
        return entries;
    }

    // Applies `layers` in order to a fresh directory and returns it.
    std::string replay(const std::vector<std::string>& layers) {
        std::string path = m_dir.path() + "/replay-" + std::to_string(++m_replays);
        fs::create_directory(path);
        auto root = RootFs::open(path);
        EXPECT_TRUE(root);
        for (const std::string& layer : layers) {
            StringReader reader(layer);
            auto stats = apply_layer(*root, reader, {.layer_name = "replayed"});
            EXPECT_TRUE(stats) << stats.error().message();
        }
        return path;
    }

    TempDir m_dir;
    std::unique_ptr<RootFs> m_work;
    int m_replays = 0;
};

void set_mtime(const std::string& path, std::int64_t seconds) {
    struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

TEST_F(LayerFidelityTest, ReplacementsDeletionsAndLowerHardlinksReplayExactly) {
    // The lower layer.
    for (const char* dir :
         {"dir-to-file/sub", "dir-to-link/sub", "real", "recreated", "gone-dir/deep", "modes"})
        fs::create_directories(work(dir));
    test::write_text(work("dir-to-file/sub/old"), "lower");
    test::write_text(work("dir-to-link/sub/old"), "lower");
    test::write_text(work("file-to-dir"), "lower file");
    fs::create_symlink("real", work("link-to-dir"));
    fs::create_symlink("real", work("link-to-file"));
    test::write_text(work("file-to-link"), "lower file");
    test::write_text(work("real/keep"), "kept");
    test::write_text(work("recreated/old"), "lower");
    test::write_text(work("gone"), "deleted later");
    test::write_text(work("gone-dir/deep/file"), "deleted later");
    test::write_text(work("shared"), "linked from the upper layer");
    ::chmod(work("modes").c_str(), 01777);
    set_mtime(work("shared"), 1'234'567'890);
    auto lower = write(everything());
    ASSERT_TRUE(lower) << lower.error().message();
    auto before = scan_snapshot(*m_work);
    ASSERT_TRUE(before);

    // What a RUN step does, in both directions for every kind of replacement.
    fs::remove_all(work("dir-to-file"));
    test::write_text(work("dir-to-file"), "now a file");
    fs::remove_all(work("dir-to-link"));
    fs::create_symlink("real", work("dir-to-link"));
    fs::remove(work("file-to-dir"));
    fs::create_directories(work("file-to-dir/inner"));
    test::write_text(work("file-to-dir/inner/new"), "upper");
    fs::remove(work("link-to-dir"));
    fs::create_directory(work("link-to-dir"));
    test::write_text(work("link-to-dir/new"), "upper");
    fs::remove(work("link-to-file"));
    test::write_text(work("link-to-file"), "now a file");
    fs::remove(work("file-to-link"));
    fs::create_symlink("/real/keep", work("file-to-link"));
    // Held open so that the new directory cannot reuse the old inode within the same clock tick: telling
    // those apart is the snapshotter's own test (snapshot_walk_test.cpp); this one is about the layer.
    int old_recreated = ::open(work("recreated").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(old_recreated, 0);
    fs::remove_all(work("recreated"));
    fs::create_directory(work("recreated"));
    test::write_text(work("recreated/new"), "upper");
    fs::remove(work("gone"));
    fs::remove_all(work("gone-dir"));
    fs::create_hard_link(work("shared"), work("modes/hardlink"));
    fs::create_directory(work("modes/setgid-dir"));
    ::chmod(work("modes/setgid-dir").c_str(), 02775);
    test::write_text(work("modes/setuid"), "elf");
    ::chmod(work("modes/setuid").c_str(), 04755);
    set_mtime(work("modes/setuid"), 1'111'111'111);

    auto after = scan_snapshot(*m_work);
    ASSERT_TRUE(after);
    ::close(old_recreated);
    auto upper = write(layer_entries_from_changes(diff_snapshots(*before, *after)));
    ASSERT_TRUE(upper) << upper.error().message();

    std::string replayed = replay({*lower, *upper});
    EXPECT_EQ(test::describe_tree(replayed), test::describe_tree(work_root()));
    EXPECT_EQ(fs::read_symlink(replayed + "/dir-to-link"), "real");
    EXPECT_EQ(test::read_text(replayed + "/real/keep"), "kept") << "replacing a link left its target alone";
    struct stat shared, linked;
    ASSERT_EQ(::lstat((replayed + "/shared").c_str(), &shared), 0);
    ASSERT_EQ(::lstat((replayed + "/modes/hardlink").c_str(), &linked), 0);
    EXPECT_EQ(shared.st_ino, linked.st_ino) << "the hardlink to a lower layer's file";

    auto headers = read_headers(*upper);
    EXPECT_EQ(headers["dir-to-file"].type, "file");
    EXPECT_EQ(headers["file-to-link"].type, "link");
    EXPECT_TRUE(headers.count(".wh.gone")) << "deletions are whiteouts";
    EXPECT_TRUE(headers.count(".wh.gone-dir"));
    // However the snapshot saw it (its old entries deleted, or the directory replaced), the lower contents of
    // the recreated directory are hidden by the layer itself.
    EXPECT_TRUE(headers.count("recreated/.wh.old") || headers.count("recreated/.wh..wh..opq"));
}

TEST_F(LayerFidelityTest, LongNamesAndLongLinkTargetsReplayWhole) {
    // Past ustar's 100-byte name and linkname fields, so that only PAX records can carry them.
    std::string deep = std::string(120, 'd') + "/" + std::string(140, 'e');
    std::string file = deep + "/" + std::string(200, 'f');
    fs::create_directories(work(deep));
    test::write_text(work(file), "far away");
    fs::create_symlink("/" + file, work("symlink"));
    fs::create_hard_link(work(file), work(deep + "/" + std::string(180, 'h')));
    auto tar = write(everything());
    ASSERT_TRUE(tar) << tar.error().message();
    auto headers = read_headers(*tar);
    EXPECT_EQ(headers[deep + "/" + std::string(180, 'h')].type, "hardlink");

    std::string replayed = replay({*tar});
    EXPECT_EQ(test::describe_tree(replayed), test::describe_tree(work_root()));
    EXPECT_EQ(fs::read_symlink(replayed + "/symlink").string(), "/" + file);
    struct stat original, linked;
    ASSERT_EQ(::lstat((replayed + "/" + file).c_str(), &original), 0);
    ASSERT_EQ(::lstat((replayed + "/" + deep + "/" + std::string(180, 'h')).c_str(), &linked), 0);
    EXPECT_EQ(original.st_ino, linked.st_ino) << "the hardlink with a long target";
}

TEST_F(LayerFidelityTest, SparseFileIsStoredWithItsDataWhereItWas) {
    // Data, a hole, data that does not start on a block boundary, and a hole up to the end.
    std::string expected(3 << 20, '\0');
    expected.replace(0, 5, "first");
    expected.replace((1 << 20) + 7, 6, "second");
    {
        int fd = ::open(work("sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0);
        EXPECT_EQ(::pwrite(fd, "first", 5, 0), 5);
        EXPECT_EQ(::pwrite(fd, "second", 6, (1 << 20) + 7), 6);
        EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(expected.size())), 0);
        ::close(fd);
    }
    auto tar = write({{LayerEntryKind::path, "sparse"}});
    ASSERT_TRUE(tar) << tar.error().message();
    std::string replayed = replay({*tar});
    EXPECT_TRUE(test::read_text(replayed + "/sparse") == expected) << "the content moved or was lost";
}

TEST_F(LayerFidelityTest, NamespacedFileCapabilityIsStoredInItsPlainForm) {
    if (::geteuid() != 0) GTEST_SKIP() << "writing a v3 capability needs CAP_SETFCAP";
    test::write_text(work("ping"), "elf");
    // What the host sees after `setcap cap_net_raw+ep` ran in a user namespace whose root is host uid 100000.
    const unsigned char v3[24] = {0x01, 0, 0, 0x03, 0, 0x20, 0, 0, 0,    0,    0,    0,
                                  0,    0, 0, 0,    0, 0,    0, 0, 0xa0, 0x86, 0x01, 0};
    ASSERT_EQ(::setxattr(work("ping").c_str(), "security.capability", v3, sizeof v3, 0), 0);
    auto tar = write({{LayerEntryKind::path, "ping"}});
    ASSERT_TRUE(tar) << tar.error().message();
    std::string stored = read_headers(*tar)["ping"].xattrs["security.capability"];
    const unsigned char v2[20] = {0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    EXPECT_EQ(stored, std::string(reinterpret_cast<const char*>(v2), sizeof v2));
}

TEST_F(LayerFidelityTest, RecordedOwnershipGivesTheEntrysIdsAndStaysOutOfTheLayer) {
    fs::create_directories(work("home/app"));
    test::write_text(work("home/app/tool"), "elf");
    auto root_fd = RootFs::open(work("home"));
    ASSERT_TRUE(root_fd);
    if (!write_override_stat(root_fd->fd(), "app", {1000, 1001, S_IFDIR | 0750}))
        GTEST_SKIP() << "this filesystem does not take user xattrs";
    ASSERT_TRUE(write_override_stat(root_fd->fd(), "app/tool", {1000, 1001, S_IFREG | 04755}));
    // A record of the wrong type (left by an older file at the same path) is not believed.
    test::write_text(work("home/other"), "");
    ASSERT_TRUE(write_override_stat(root_fd->fd(), "other", {7, 7, S_IFDIR | 0755}));
    auto tar = write({{LayerEntryKind::path, "home/app/tool"}, {LayerEntryKind::path, "home/other"}});
    ASSERT_TRUE(tar) << tar.error().message();
    auto headers = read_headers(*tar);
    EXPECT_EQ(headers["home/app/"].owner, "1000:1001");
    EXPECT_EQ(headers["home/app/tool"].owner, "1000:1001");
    EXPECT_EQ(headers["home/other"].owner, "0:0");
    EXPECT_EQ(tar->find("override_stat"), std::string::npos);
}

TEST_F(LayerFidelityTest, TimestampReachesEveryEntryIncludingWhiteouts) {
    fs::create_directories(work("etc"));
    test::write_text(work("etc/file"), "x");
    fs::create_symlink("file", work("etc/link"));
    auto tar = write({{LayerEntryKind::path, "etc/file"},
                      {LayerEntryKind::path, "etc/link"},
                      {LayerEntryKind::whiteout, "etc/old"},
                      {LayerEntryKind::opaque_marker, "etc"}},
                     {.compression = {.compression = Compression::none}, .timestamp = 1'700'000'000});
    ASSERT_TRUE(tar) << tar.error().message();
    auto headers = read_headers(*tar);
    ASSERT_EQ(headers.size(), 5u);
    for (const auto& [name, header] : headers) EXPECT_EQ(header.mtime, 1'700'000'000) << name;
}

}  // namespace
}  // namespace kiln
