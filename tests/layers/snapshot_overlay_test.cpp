#include "layers/snapshot_overlay.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <ctime>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "layers/layer_writer.hpp"
#include "layers/snapshot_walk.hpp"
#include "tests/layers/overlay_fixture.hpp"
#include "tests/layers/userns_child.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t k_layer_time = 1'700'000'000;

// Every entry of a layer tar with its whole header and a digest of its content, read with libarchive.
std::vector<std::string> describe_layer(const std::string& tar) {
    std::vector<std::string> lines;
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    archive_read_open_memory(a.get(), tar.data(), tar.size());
    archive_entry* entry = nullptr;
    while (archive_read_next_header(a.get(), &entry) == ARCHIVE_OK) {
        std::string line = str_cat(archive_entry_pathname(entry), " ", std::oct,
                                   archive_entry_filetype(entry), " ", archive_entry_perm(entry), std::dec,
                                   " ", archive_entry_uid(entry), ":", archive_entry_gid(entry), " ",
                                   archive_entry_mtime(entry), " ", archive_entry_size(entry));
        if (const char* target = archive_entry_symlink(entry)) line += str_cat(" -> ", target);
        if (const char* target = archive_entry_hardlink(entry)) line += str_cat(" link ", target);
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        archive_entry_xattr_reset(entry);
        while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK)
            line += str_cat(" ", name, "=", std::string(static_cast<const char*>(value), size));
        std::string content;
        char buffer[4096];
        la_ssize_t n;
        while ((n = archive_read_data(a.get(), buffer, sizeof buffer)) > 0)
            content.append(buffer, static_cast<size_t>(n));
        if (!content.empty()) line += " " + sha256_hex(content).substr(0, 16);
        lines.push_back(line);
    }
    return lines;
}

std::vector<std::string> without_path(std::vector<std::string> lines, const std::string& path) {
    std::erase_if(lines, [&](const std::string& line) {
        return line.starts_with(path + " ") || line.starts_with(path + "/ ");
    });
    return lines;
}

bool has_path(const std::vector<std::string>& lines, const std::string& path) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
        return line.starts_with(path + " ") || line.starts_with(path + "/ ");  // directories end in "/"
    });
}

Result<std::string> write_layer_tar(const std::string& root_path, const std::vector<LayerEntry>& entries) {
    KILN_ASSIGN(RootFs root, RootFs::open(root_path));
    StringWriter out;
    LayerWriteOptions options;
    options.compression.compression = Compression::none;
    options.timestamp = k_layer_time;  // the two runs create their files at different times
    KILN_TRY(write_layer(root, entries, out, options));
    return out.take();
}

// `mv`: rename, or where the kernel refuses (overlay without redirect_dir gives EXDEV for a lower directory)
// copy the tree with its modes and owners and remove the original, as coreutils does.
void copy_tree(const fs::path& from, const fs::path& to) {
    struct stat st;
    if (::lstat(from.c_str(), &st) != 0) throw std::runtime_error("lstat " + from.string());
    if (S_ISDIR(st.st_mode)) {
        fs::create_directory(to);
        for (const auto& child : fs::directory_iterator(from))
            copy_tree(child.path(), to / child.path().filename());
    } else if (S_ISLNK(st.st_mode)) {
        fs::create_symlink(fs::read_symlink(from), to);
    } else {
        fs::copy_file(from, to);
    }
    if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0) throw std::runtime_error("lchown " + to.string());
    if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
        throw std::runtime_error("chmod " + to.string());
}

void move_tree(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) == 0) return;
    if (errno != EXDEV) throw std::runtime_error("rename " + from);
    copy_tree(from, to);
    fs::remove_all(from);
}

enum class Chown { allowed, not_in_this_namespace };

// What a RUN step does to the tree at `root`: every kind of change a layer must record, and two copy-ups that
// change nothing. Throws on failure; returns "" or the exception's message.
std::string run_change_script(const std::string& root, Chown chown) {
    try {
        auto path = [&](const std::string& relative) { return root + "/" + relative; };
        auto check = [](bool ok, const std::string& what) {
            if (!ok) throw std::runtime_error(what + ": " + std::strerror(errno));
        };
        test::write_text(path("newfile"), "new\n");
        fs::create_directories(path("newdir/sub"));
        test::write_text(path("newdir/sub/f"), "f\n");
        {
            int fd = ::open(path("etc/hostname").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
            check(fd >= 0 && ::write(fd, "mod\n", 4) == 4, "append etc/hostname");
            ::close(fd);
        }
        check(::unlink(path("usr/share/doc/a/README").c_str()) == 0, "rm README");
        fs::remove_all(path("srv"));
        {
            // Held open across the removal so that the new directory cannot reuse the inode number: the walk
            // tells a replaced directory by its inode.
            int held = ::open(path("var/log").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            check(held >= 0, "open var/log");
            fs::remove_all(path("var/log"));
            check(::mkdir(path("var/log").c_str(), 0755) == 0, "mkdir var/log");
            test::write_text(path("var/log/fresh.log"), "fresh\n");
            ::close(held);
        }
        check(::chmod(path("etc/motd").c_str(), 0600) == 0, "chmod etc/motd");
        if (chown == Chown::allowed)
            check(::chown(path("etc/owned").c_str(), 1000, 1000) == 0, "chown etc/owned");
        move_tree(path("opt"), path("opt2"));
        check(::link(path("etc/group").c_str(), path("etc/group-hard").c_str()) == 0, "ln etc/group");
        fs::remove_all(path("usr/lib/old"));
        check(::symlink("libc.so.6", path("usr/lib/old").c_str()) == 0, "ln -s usr/lib/old");
        check(::setxattr(path("etc/noted").c_str(), "user.kiln.note", "v2", 2, 0) == 0, "setfattr etc/noted");
        test::write_text(path("tmp/scratch"), "s\n");
        check(::unlink(path("tmp/scratch").c_str()) == 0, "rm tmp/scratch");
        // Copy-ups that change nothing: opened for writing and closed, touched with its own times.
        int fd = ::open(path("etc/passwd").c_str(), O_RDWR | O_CLOEXEC);
        check(fd >= 0, "open etc/passwd O_RDWR");
        ::close(fd);
        struct stat st;
        check(::lstat(path("etc/services").c_str(), &st) == 0, "stat etc/services");
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        check(::utimensat(AT_FDCWD, path("etc/services").c_str(), times, AT_SYMLINK_NOFOLLOW) == 0,
              "touch etc/services");
        return "";
    } catch (const std::exception& error) {
        return error.what();
    }
}

// The same RUN step done twice: on an overlay of the layers extracted in overlay format (the upper is the
// diff), and on a plain copy of the same layers applied one over another (walked before and after).
class SnapshotComparisonTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_base = std::move(*TempDir::create(default_temp_parent(), "kiln-snap-ovl-"));
        std::string why = test::overlay_unavailable(m_base.path());
        if (!why.empty()) GTEST_SKIP() << "overlay mounts are not available here: " << why;
        std::vector<test::TestTar> tars{test::base_layer(), test::second_layer(), test::third_layer()};
        m_plain = make_dir("plain");
        for (size_t i = 0; i < tars.size(); ++i) {
            std::string dir = make_dir(str_cat("l", i + 1));
            auto stats = test::extract_tar(dir, tars[i], WhiteoutFormat::overlay);
            ASSERT_TRUE(stats) << stats.error().message();
            m_lowers.insert(m_lowers.begin(), dir);
            stats = test::extract_tar(m_plain, tars[i], WhiteoutFormat::apply);
            ASSERT_TRUE(stats) << stats.error().message();
        }
        m_upper = make_dir("upper");
        m_work = make_dir("work");
        m_merged = make_dir("merged");
    }

    std::string make_dir(const std::string& name) {
        std::string path = m_base.path() + "/" + name;
        fs::create_directories(path);
        return path;
    }

    void run_on_overlay(Chown chown) {
        auto mounted = mount_overlay({m_lowers, m_upper, m_work}, m_merged);
        ASSERT_TRUE(mounted) << mounted.error().message();
        ASSERT_EQ(run_change_script(m_merged, chown), "");
    }

    // The layer of the upper, read against a read-only mount of the lowers.
    void overlay_layer(std::vector<std::string>& lines, UpperScanStats& stats) {
        std::string lower_view = make_dir("lower-view");
        auto mounted = mount_overlay({m_lowers}, lower_view);
        ASSERT_TRUE(mounted) << mounted.error().message();
        auto upper = RootFs::open(m_upper);
        auto lower = RootFs::open(lower_view);
        ASSERT_TRUE(upper && lower);
        auto changes = scan_overlay_upper(*upper, *lower);
        ASSERT_TRUE(changes) << changes.error().message();
        stats = changes->stats;
        auto tar = write_layer_tar(m_upper, changes->entries);
        ASSERT_TRUE(tar) << tar.error().message();
        lines = describe_layer(*tar);
    }

    void walk_layer(Chown chown, std::vector<std::string>& lines) {
        auto root = RootFs::open(m_plain);
        ASSERT_TRUE(root);
        auto before = scan_snapshot(*root);
        ASSERT_TRUE(before) << before.error().message();
        ASSERT_EQ(run_change_script(m_plain, chown), "");
        auto after = scan_snapshot(*root);
        ASSERT_TRUE(after) << after.error().message();
        auto tar = write_layer_tar(m_plain, layer_entries_from_changes(diff_snapshots(*before, *after)));
        ASSERT_TRUE(tar) << tar.error().message();
        lines = describe_layer(*tar);
    }

    TempDir m_base;
    std::vector<std::string> m_lowers;  // topmost first
    std::string m_plain;
    std::string m_upper;
    std::string m_work;
    std::string m_merged;
};

TEST_F(SnapshotComparisonTest, OverlayAndWalkSnapshottersWriteTheSameLayer) {
    std::vector<std::string> overlay;
    std::vector<std::string> walk;
    UpperScanStats stats;
    ASSERT_NO_FATAL_FAILURE(run_on_overlay(Chown::allowed));
    ASSERT_NO_FATAL_FAILURE(overlay_layer(overlay, stats));
    ASSERT_NO_FATAL_FAILURE(walk_layer(Chown::allowed, walk));
    // The walk sees the touch by its ctime; the overlay snapshotter finds the copy-up unchanged.
    ASSERT_TRUE(has_path(walk, "etc/services"));
    EXPECT_EQ(overlay, without_path(walk, "etc/services"));
    // Guards against two equally empty layers: each kind of change is there.
    for (const char* path : {".wh.srv", ".wh.opt", "opt2/tool", "var/log/.wh..wh..opq", "var/log/fresh.log",
                             "usr/share/doc/a/.wh.README", "etc/group-hard", "usr/lib/old", "etc/owned",
                             "etc/noted", "newdir/sub/f", "tmp"})
        EXPECT_TRUE(has_path(overlay, path)) << path;
}

TEST_F(SnapshotComparisonTest, UnchangedCopyUpsAreLeftOut) {
    std::vector<std::string> overlay;
    UpperScanStats stats;
    ASSERT_NO_FATAL_FAILURE(run_on_overlay(Chown::allowed));
    // Overlay did copy them up: the filter, not overlay, keeps them out.
    ASSERT_TRUE(test::exists_nofollow(m_upper + "/etc/passwd"));
    ASSERT_TRUE(test::exists_nofollow(m_upper + "/etc/services"));
    ASSERT_NO_FATAL_FAILURE(overlay_layer(overlay, stats));
    EXPECT_FALSE(has_path(overlay, "etc/passwd"));
    EXPECT_FALSE(has_path(overlay, "etc/services"));
    EXPECT_GE(stats.unchanged_copy_ups, 2u);
}

TEST_F(SnapshotComparisonTest, UpperWrittenInASingleIdUserNamespaceGivesTheWalksLayer) {
    std::vector<std::string> lowers = m_lowers;
    std::string upper = m_upper;
    std::string work = m_work;
    std::string merged = m_merged;
    int code = test::run_in_user_namespace([&] {
        if (::unshare(CLONE_NEWNS) != 0) return 77;
        auto mounted = mount_overlay({lowers, upper, work}, merged);
        if (!mounted) {
            std::fprintf(stderr, "%s\n", mounted.error().message().c_str());
            return 1;
        }
        std::string failed = run_change_script(merged, Chown::not_in_this_namespace);
        if (!failed.empty()) {
            std::fprintf(stderr, "%s\n", failed.c_str());
            return 2;
        }
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    ASSERT_EQ(code, 0);
    std::vector<std::string> overlay;
    std::vector<std::string> walk;
    UpperScanStats stats;
    ASSERT_NO_FATAL_FAILURE(overlay_layer(overlay, stats));
    ASSERT_NO_FATAL_FAILURE(walk_layer(Chown::not_in_this_namespace, walk));
    EXPECT_EQ(overlay, without_path(walk, "etc/services"));
    EXPECT_TRUE(has_path(overlay, "var/log/.wh..wh..opq"));
    EXPECT_TRUE(has_path(overlay, ".wh.srv"));
}

// The whole overlay path as an unprivileged user does it: uid 65534 maps itself to root in a user namespace,
// extracts the layers (other owners become ownership overrides), runs the step, and scans and writes the
// upper there. The layer still equals the walk's of the same step done as root.
Status rootless_overlay_layer(const std::string& dir, const std::string& tar_path) {
    std::vector<std::string> lowers;
    std::vector<test::TestTar> tars{test::base_layer(), test::second_layer(), test::third_layer()};
    for (size_t i = 0; i < tars.size(); ++i) {
        std::string layer = str_cat(dir, "/l", i + 1);
        fs::create_directory(layer);
        KILN_TRY(test::extract_tar(layer, tars[i], WhiteoutFormat::overlay));
        lowers.insert(lowers.begin(), layer);
    }
    for (const char* name : {"/upper", "/work", "/merged", "/view"}) fs::create_directory(dir + name);
    KILN_ASSIGN(MountGuard merged, mount_overlay({lowers, dir + "/upper", dir + "/work"}, dir + "/merged"));
    std::string failed = run_change_script(dir + "/merged", Chown::not_in_this_namespace);
    KILN_TRY(merged.unmount());
    if (!failed.empty()) return fail(failed);
    KILN_ASSIGN(MountGuard view, mount_overlay({lowers}, dir + "/view"));
    KILN_ASSIGN(RootFs upper, RootFs::open(dir + "/upper"));
    KILN_ASSIGN(RootFs lower, RootFs::open(dir + "/view"));
    KILN_ASSIGN(UpperChanges changes, scan_overlay_upper(upper, lower));
    KILN_ASSIGN(std::string tar, write_layer_tar(dir + "/upper", changes.entries));
    test::write_text(tar_path, tar);
    return {};
}

TEST_F(SnapshotComparisonTest, RootlessUserGetsTheWalksLayer) {
    if (!test::running_as_root()) GTEST_SKIP() << "dropping to another user needs root";
    ASSERT_EQ(::chmod(m_base.path().c_str(), 0755), 0);
    std::string dir = make_dir("rootless");
    ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
    std::string tar_path = dir + "/layer.tar";
    int code = test::as_nobody([&] {
        int entered = test::run_in_user_namespace([&] {
            if (::unshare(CLONE_NEWNS) != 0) return 77;
            auto made = rootless_overlay_layer(dir, tar_path);
            if (!made) std::fprintf(stderr, "%s\n", made.error().message().c_str());
            return made ? 0 : 1;
        });
        return entered == -1 ? 77 : entered;
    });
    if (code == 77) GTEST_SKIP() << "an unprivileged user cannot make a user namespace here";
    ASSERT_EQ(code, 0);
    std::vector<std::string> walk;
    ASSERT_NO_FATAL_FAILURE(walk_layer(Chown::not_in_this_namespace, walk));
    std::vector<std::string> overlay = describe_layer(test::read_text(tar_path));
    EXPECT_EQ(overlay, without_path(walk, "etc/services"));
    EXPECT_TRUE(has_path(overlay, "var/log/.wh..wh..opq"));
}

// scan_overlay_upper on hand-made upper and lower trees: each rule on its own, no mount needed.
class UpperScanTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_base = std::move(*TempDir::create(default_temp_parent(), "kiln-upper-scan-"));
        m_lower = m_base.path() + "/lower";
        m_upper = m_base.path() + "/upper";
        fs::create_directories(m_lower + "/etc");
        fs::create_directories(m_lower + "/var/log");
        fs::create_directories(m_upper);
        test::write_text(m_lower + "/etc/passwd", "root:x:0:0\n");
        test::write_text(m_lower + "/var/log/old", "old\n");
    }

    // What overlay's copy-up makes: the lower entry's content, mode, owner and times, plus its own xattrs.
    void copy_up(const std::string& relative) {
        std::string from = m_lower + "/" + relative;
        std::string to = m_upper + "/" + relative;
        fs::create_directories(fs::path(to).parent_path());
        struct stat st;
        ASSERT_EQ(::lstat(from.c_str(), &st), 0);
        if (S_ISDIR(st.st_mode))
            fs::create_directory(to);
        else
            fs::copy_file(from, to);
        ASSERT_EQ(::chmod(to.c_str(), st.st_mode & 07777), 0);
        ASSERT_EQ(::setxattr(to.c_str(), "user.overlay.origin", "", 0, 0), 0);
        set_times_like(relative);
    }

    void set_times_like(const std::string& relative) {
        struct stat st;
        ASSERT_EQ(::lstat((m_lower + "/" + relative).c_str(), &st), 0);
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        ASSERT_EQ(::utimensat(AT_FDCWD, (m_upper + "/" + relative).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
    }

    void whiteout(const std::string& relative) {
        fs::create_directories(fs::path(m_upper + "/" + relative).parent_path());
        ASSERT_EQ(::mknod((m_upper + "/" + relative).c_str(), S_IFCHR | 0600, ::makedev(0, 0)), 0)
            << std::strerror(errno);
    }

    UpperChanges scan(const UpperScanOptions& options = {}) {
        auto upper = RootFs::open(m_upper);
        auto lower = RootFs::open(m_lower);
        EXPECT_TRUE(upper && lower);
        auto changes = scan_overlay_upper(*upper, *lower, options);
        EXPECT_TRUE(changes) << changes.error().message();
        return changes ? std::move(*changes) : UpperChanges{};
    }

    static std::vector<std::string> listed(const UpperChanges& changes) {
        std::vector<std::string> lines;
        for (const LayerEntry& entry : changes.entries) {
            const char* kind = entry.kind == LayerEntryKind::path       ? "path"
                               : entry.kind == LayerEntryKind::whiteout ? "whiteout"
                                                                        : "opaque";
            lines.push_back(str_cat(kind, " ", entry.path));
        }
        return lines;
    }

    TempDir m_base;
    std::string m_lower;
    std::string m_upper;
};

using Lines = std::vector<std::string>;

TEST_F(UpperScanTest, WhiteoutOverALowerEntryIsADeletion) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc"));
    ASSERT_NO_FATAL_FAILURE(whiteout("etc/passwd"));
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    UpperChanges changes = scan();
    EXPECT_EQ(listed(changes), (Lines{"whiteout etc/passwd"}));
    EXPECT_EQ(changes.stats.whiteouts, 1u);
}

TEST_F(UpperScanTest, WhiteoutOverNothingIsDropped) {
    ASSERT_NO_FATAL_FAILURE(whiteout("etc/never-there"));
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    EXPECT_EQ(listed(scan()), Lines{});
}

TEST_F(UpperScanTest, WhiteoutInTheLowerCountsAsAbsent) {
    ASSERT_EQ(::mknod((m_lower + "/etc/gone").c_str(), S_IFCHR | 0600, ::makedev(0, 0)), 0);
    ASSERT_NO_FATAL_FAILURE(whiteout("etc/gone"));
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    EXPECT_EQ(listed(scan()), Lines{});
}

TEST_F(UpperScanTest, OpaqueDirectoryOverALowerDirectoryGetsAMarker) {
    fs::create_directories(m_upper + "/var/log");
    ASSERT_EQ(::setxattr((m_upper + "/var/log").c_str(), "user.overlay.opaque", "y", 1, 0), 0);
    test::write_text(m_upper + "/var/log/new", "new\n");
    ASSERT_NO_FATAL_FAILURE(set_times_like("var"));
    UpperChanges changes = scan();
    EXPECT_EQ(listed(changes), (Lines{"path var/log", "opaque var/log", "path var/log/new"}));
    EXPECT_EQ(changes.stats.opaque_directories, 1u);
}

TEST_F(UpperScanTest, OpaqueMarkerOfANewDirectoryIsDropped) {
    fs::create_directories(m_upper + "/var/cache");
    ASSERT_EQ(::setxattr((m_upper + "/var/cache").c_str(), "user.overlay.opaque", "y", 1, 0), 0);
    UpperChanges changes = scan();
    EXPECT_EQ(listed(changes), (Lines{"path var", "path var/cache"}));
    EXPECT_EQ(changes.stats.opaque_directories, 0u);
}

TEST_F(UpperScanTest, UnchangedCopyUpIsLeftOut) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    UpperChanges changes = scan();
    EXPECT_EQ(listed(changes), Lines{});
    EXPECT_EQ(changes.stats.unchanged_copy_ups, 2u);  // the file and its directory
}

TEST_F(UpperScanTest, CopyUpWithOtherContentOfTheSameSizeAndTimesStays) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    test::write_text(m_upper + "/etc/passwd", "ROOT:x:0:0\n");
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc/passwd"));
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    EXPECT_EQ(listed(scan()), (Lines{"path etc/passwd"}));
}

TEST_F(UpperScanTest, CopyUpWithOtherModeStays) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    ASSERT_EQ(::chmod((m_upper + "/etc/passwd").c_str(), 0600), 0);
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    EXPECT_EQ(listed(scan()), (Lines{"path etc/passwd"}));
}

TEST_F(UpperScanTest, CopyUpWithAnotherXattrStays) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    ASSERT_EQ(::setxattr((m_upper + "/etc/passwd").c_str(), "user.note", "x", 1, 0), 0);
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    EXPECT_EQ(listed(scan()), (Lines{"path etc/passwd"}));
}

TEST_F(UpperScanTest, CopyUpWithAnotherMtimeStays) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    struct timespec times[2] = {{1, 0}, {1, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (m_upper + "/etc/passwd").c_str(), times, 0), 0);
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    EXPECT_EQ(listed(scan()), (Lines{"path etc/passwd"}));
}

TEST_F(UpperScanTest, HardlinkedCopyUpStays) {
    // The link changes etc; the file system's coarse clock could give etc in the upper the very time the
    // fixture gave etc in the lower, and the scan would then see the directory unchanged.
    struct timespec long_ago[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (m_lower + "/etc").c_str(), long_ago, 0), 0);
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    ASSERT_EQ(::link((m_upper + "/etc/passwd").c_str(), (m_upper + "/etc/passwd-").c_str()), 0);
    EXPECT_EQ(listed(scan()), (Lines{"path etc", "path etc/passwd", "path etc/passwd-"}));
}

TEST_F(UpperScanTest, ExcludedPathsAndEverythingBelowAreLeftOut) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc"));
    test::write_text(m_upper + "/etc/hosts", "");
    test::write_text(m_upper + "/etc/kept", "");
    fs::create_directories(m_upper + "/run/secrets");
    test::write_text(m_upper + "/run/secrets/token", "");
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    UpperChanges changes = scan({.excluded = {"/etc/hosts", "run/"}});
    EXPECT_EQ(listed(changes), (Lines{"path etc/kept"}));
}

TEST_F(UpperScanTest, DirectoryCopiedUpForAChildIsStillWrittenAsItsParent) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc"));
    ASSERT_EQ(::chmod((m_lower + "/etc").c_str(), 0750), 0);
    ASSERT_EQ(::chmod((m_upper + "/etc").c_str(), 0750), 0);
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    test::write_text(m_upper + "/etc/passwd", "changed\n");
    ASSERT_NO_FATAL_FAILURE(set_times_like("etc"));
    UpperChanges changes = scan();
    ASSERT_EQ(listed(changes), (Lines{"path etc/passwd"}));
    auto tar = write_layer_tar(m_upper, changes.entries);
    ASSERT_TRUE(tar) << tar.error().message();
    Lines lines = describe_layer(*tar);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_TRUE(lines[0].starts_with("etc/ 40000 750 ")) << lines[0];
}

TEST_F(UpperScanTest, OverlaysPrivateXattrsDoNotReachTheLayer) {
    ASSERT_NO_FATAL_FAILURE(copy_up("etc/passwd"));
    ASSERT_EQ(::setxattr((m_upper + "/etc/passwd").c_str(), "user.note", "kept", 4, 0), 0);
    ASSERT_EQ(::setxattr((m_upper + "/etc").c_str(), "user.overlay.impure", "y", 1, 0), 0);
    UpperChanges changes = scan();
    auto tar = write_layer_tar(m_upper, changes.entries);
    ASSERT_TRUE(tar) << tar.error().message();
    Lines lines = describe_layer(*tar);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].find("overlay"), std::string::npos) << lines[0];
    EXPECT_EQ(lines[1].find("overlay"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("user.note=kept"), std::string::npos) << lines[1];
}

TEST(WithoutExcluded, DropsExcludedPathsAndTheirDescendantsOnly) {
    std::vector<LayerEntry> entries{{LayerEntryKind::path, "etc/hosts"},
                                    {LayerEntryKind::path, "etc/hostsfile"},
                                    {LayerEntryKind::whiteout, "/proc/x"},
                                    {LayerEntryKind::path, "usr/bin/sh"}};
    std::vector<LayerEntry> kept = without_excluded(entries, {"/etc/hosts", "proc"});
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0].path, "etc/hostsfile");
    EXPECT_EQ(kept[1].path, "usr/bin/sh");
}

}  // namespace
}  // namespace kiln
