#include "layers/overlay_mount.hpp"

#include <archive_entry.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "common/strings.hpp"
#include "tests/layers/overlay_fixture.hpp"
#include "tests/layers/userns_child.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using test::base_layer;
using test::second_layer;
using test::TestTar;
using test::third_layer;

bool is_whiteout_node(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0);
}

std::string opaque_value(const std::string& path) {
    char value[16];
    ssize_t n = ::lgetxattr(path.c_str(), "user.overlay.opaque", value, sizeof value);
    return n < 0 ? std::string() : std::string(value, static_cast<size_t>(n));
}

class OverlayFormatExtractionTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_base = std::move(*TempDir::create(default_temp_parent(), "kiln-ovl-extract-"));
        m_layer = m_base.path() + "/layer";
        fs::create_directory(m_layer);
    }

    TempDir m_base;
    std::string m_layer;
};

TEST_F(OverlayFormatExtractionTest, WhiteoutBecomesA00CharacterDevice) {
    auto stats = test::extract_tar(m_layer, second_layer(), WhiteoutFormat::overlay);
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_TRUE(is_whiteout_node(m_layer + "/etc/issue"));
    EXPECT_TRUE(is_whiteout_node(m_layer + "/usr/share/doc/b.txt"));
    EXPECT_FALSE(test::exists_nofollow(m_layer + "/etc/.wh.issue"));
    EXPECT_EQ(stats->whiteouts, 3u);
}

TEST_F(OverlayFormatExtractionTest, OpaqueMarkerBecomesTheUserOverlayOpaqueXattr) {
    auto stats = test::extract_tar(m_layer, second_layer(), WhiteoutFormat::overlay);
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(opaque_value(m_layer + "/var/log"), "y");
    EXPECT_EQ(opaque_value(m_layer + "/etc"), "");
    EXPECT_FALSE(test::exists_nofollow(m_layer + "/var/log/.wh..wh..opq"));
    EXPECT_EQ(test::read_text(m_layer + "/var/log/new.log"), "new\n");
}

TEST_F(OverlayFormatExtractionTest, NothingAlreadyInTheDirectoryIsDeleted) {
    // An opaque marker in apply format empties its directory of what the layer did not write.
    fs::create_directories(m_layer + "/var/log");
    test::write_text(m_layer + "/var/log/kept", "kept\n");
    auto stats = test::extract_tar(m_layer, second_layer(), WhiteoutFormat::overlay);
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(test::read_text(m_layer + "/var/log/kept"), "kept\n");
}

TEST_F(OverlayFormatExtractionTest, OpaqueMarkerBeforeItsDirectoryEntryStillMarksIt) {
    TestTar tar;
    tar.file("d/.wh..wh..opq", "");
    tar.dir("d", 0700);
    tar.file("d/f", "f\n");
    auto stats = test::extract_tar(m_layer, tar, WhiteoutFormat::overlay);
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(opaque_value(m_layer + "/d"), "y");
    struct stat st;
    ASSERT_EQ(::lstat((m_layer + "/d").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(OverlayFormatExtractionTest, A00CharacterDeviceEntryIsLeftOutRatherThanReadAsAWhiteout) {
    if (!test::running_as_root()) GTEST_SKIP() << "creating a 0/0 device from a tar entry needs CAP_MKNOD";
    TestTar tar;
    tar.add({.name = "dev0", .type = AE_IFCHR, .mode = 0600});
    tar.file("kept", "k\n");
    test::LogCapture log;
    auto stats = test::extract_tar(m_layer, tar, WhiteoutFormat::overlay);
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_FALSE(test::exists_nofollow(m_layer + "/dev0"));
    EXPECT_TRUE(test::exists_nofollow(m_layer + "/kept"));
    EXPECT_EQ(log.count(LogLevel::warn), 1u);
}

TEST_F(OverlayFormatExtractionTest, WhiteoutsAreCreatedInASingleIdUserNamespace) {
    std::string layer = m_layer;
    int code = test::run_in_user_namespace([&] {
        // Without CAP_MKNOD in the initial namespace real devices are refused: whiteouts are the exception.
        if (::mknod((layer + "/null").c_str(), S_IFCHR | 0600, ::makedev(1, 3)) == 0) return 3;
        auto stats = test::extract_tar(layer, second_layer(), WhiteoutFormat::overlay);
        if (!stats) {
            std::fprintf(stderr, "%s\n", stats.error().message().c_str());
            return 1;
        }
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    ASSERT_EQ(code, 0);
    EXPECT_TRUE(is_whiteout_node(m_layer + "/etc/issue"));
    EXPECT_EQ(opaque_value(m_layer + "/var/log"), "y");
}

TEST_F(OverlayFormatExtractionTest, OverlayXattrsFromTheLayerAreNotApplied) {
    // A layer could otherwise make a directory opaque to overlayfs while applying it would hide nothing.
    TestTar tar;
    tar.add({.name = "d", .type = AE_IFDIR, .mode = 0755, .xattrs = {{"user.overlay.opaque", "y"}}});
    tar.add({.name = "f", .type = AE_IFREG, .content = "f", .xattrs = {{"trusted.overlay.redirect", "/x"}}});
    auto stats = test::extract_tar(m_layer, tar, WhiteoutFormat::overlay);
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(opaque_value(m_layer + "/d"), "");
    char value[8];
    EXPECT_LT(::lgetxattr((m_layer + "/f").c_str(), "trusted.overlay.redirect", value, sizeof value), 0);
}

// The mount options /proc/self/mountinfo shows for the mount at `target`.
std::string mount_options(const std::string& target) {
    for (const std::string& line : split(test::read_text("/proc/self/mountinfo"), '\n')) {
        std::vector<std::string> fields = split(line, ' ');
        if (fields.size() > 4 && fields[4] == target) return line.substr(line.find(" - "));
    }
    return "";
}

bool kernel_at_least(int major, int minor) {
    struct utsname name;
    int found_major = 0;
    int found_minor = 0;
    if (::uname(&name) != 0 || std::sscanf(name.release, "%d.%d", &found_major, &found_minor) != 2)
        return false;
    return found_major > major || (found_major == major && found_minor >= minor);
}

// Mounts of real layer directories; skipped where this machine cannot mount overlays.
class OverlayMountTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_base = std::move(*TempDir::create(default_temp_parent(), "kiln-ovl-mount-"));
        std::string why = test::overlay_unavailable(m_base.path());
        if (!why.empty()) GTEST_SKIP() << "overlay mounts are not available here: " << why;
    }

    std::string make_dir(const std::string& name) {
        std::string path = m_base.path() + "/" + name;
        fs::create_directories(path);
        return path;
    }

    // Extracts the three layers in overlay format into l1, l2, l3; returns them topmost first.
    std::vector<std::string> layer_dirs() {
        std::vector<std::string> dirs;
        std::vector<TestTar> tars{base_layer(), second_layer(), third_layer()};
        for (size_t i = 0; i < tars.size(); ++i) {
            std::string dir = make_dir(str_cat("l", i + 1));
            auto stats = test::extract_tar(dir, tars[i], WhiteoutFormat::overlay);
            EXPECT_TRUE(stats) << stats.error().message();
            dirs.insert(dirs.begin(), dir);
        }
        return dirs;
    }

    TempDir m_base;
};

TEST_F(OverlayMountTest, LayerWhiteoutsAndOpaqueDirectoriesHideLowerEntries) {
    std::vector<std::string> lowers = layer_dirs();
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({{lowers[1], lowers[2]}}, merged);  // l2 over l1
    ASSERT_TRUE(mounted) << mounted.error().message();
    EXPECT_FALSE(test::exists_nofollow(merged + "/etc/issue"));
    EXPECT_FALSE(test::exists_nofollow(merged + "/usr/share/doc/b.txt"));
    EXPECT_FALSE(test::exists_nofollow(merged + "/var/log/old.log"));
    EXPECT_EQ(test::read_text(merged + "/var/log/new.log"), "new\n");
    EXPECT_EQ(test::read_text(merged + "/etc/motd"), "motd v2\n");
    EXPECT_EQ(test::read_text(merged + "/usr/share/doc/a/README"), "readme\n");
}

TEST_F(OverlayMountTest, StackOfThreeLayerDirectoriesEqualsApplyingTheLayers) {
    std::string applied = make_dir("applied");
    for (const TestTar& tar : {base_layer(), second_layer(), third_layer()}) {
        auto stats = test::extract_tar(applied, tar, WhiteoutFormat::apply);
        ASSERT_TRUE(stats) << stats.error().message();
    }
    std::vector<std::string> lowers = layer_dirs();
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({lowers}, merged);
    ASSERT_TRUE(mounted) << mounted.error().message();
    EXPECT_EQ(test::describe_tree(merged), test::describe_tree(applied));
}

TEST_F(OverlayMountTest, DirectoryDeletedAndMadeAgainInOneLayerHidesTheOldContents) {
    TestTar recreate;
    recreate.dir("opt");
    recreate.file("opt/.wh.sub", "");
    recreate.dir("opt/sub");
    recreate.file("opt/sub/new", "new\n");
    std::string applied = make_dir("applied");
    std::string base = make_dir("base");
    std::string top = make_dir("top");
    for (auto [dir, format] :
         {std::pair{applied, WhiteoutFormat::apply}, std::pair{base, WhiteoutFormat::overlay}}) {
        auto stats = test::extract_tar(dir, base_layer(), format);
        ASSERT_TRUE(stats) << stats.error().message();
    }
    for (auto [dir, format] :
         {std::pair{applied, WhiteoutFormat::apply}, std::pair{top, WhiteoutFormat::overlay}}) {
        auto stats = test::extract_tar(dir, recreate, format);
        ASSERT_TRUE(stats) << stats.error().message();
    }
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({{top, base}}, merged);
    ASSERT_TRUE(mounted) << mounted.error().message();
    EXPECT_FALSE(test::exists_nofollow(applied + "/opt/sub/data"));
    EXPECT_FALSE(test::exists_nofollow(merged + "/opt/sub/data"));
    EXPECT_EQ(test::describe_tree(merged), test::describe_tree(applied));
}

TEST_F(OverlayMountTest, ReadOnlyMountRefusesWrites) {
    std::vector<std::string> lowers = layer_dirs();
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({lowers}, merged);
    ASSERT_TRUE(mounted) << mounted.error().message();
    int fd = ::open((merged + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int err = errno;
    if (fd >= 0) ::close(fd);
    EXPECT_LT(fd, 0);
    EXPECT_EQ(err, EROFS);
}

// 200 lowers of ~150-byte paths: 30 kB of lowerdir= option, far past mount(2)'s page.
class ManyLowersTest : public OverlayMountTest, public ::testing::WithParamInterface<OverlayMountApi> {};

TEST_P(ManyLowersTest, TwoHundredLowersWithLongPathsMount) {
    std::string deep = make_dir(std::string(100, 'd'));
    std::vector<std::string> lowers;
    for (int i = 0; i < 200; ++i) {
        std::string dir = str_cat(deep, "/layer-", std::string(30, 'x'), "-", i);
        fs::create_directories(dir);
        test::write_text(str_cat(dir, "/only-", i), "");
        test::write_text(dir + "/shared", std::to_string(i));
        lowers.push_back(dir);
    }
    ASSERT_GT(lowers.front().size(), 150u);
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({lowers}, merged, GetParam());
    ASSERT_TRUE(mounted) << mounted.error().message();
    EXPECT_TRUE(test::exists_nofollow(merged + "/only-0"));
    EXPECT_TRUE(test::exists_nofollow(merged + "/only-199"));
    EXPECT_EQ(test::read_text(merged + "/shared"), "0");  // the topmost lower wins
    std::string options = mount_options(merged);
    EXPECT_NE(options.find("userxattr"), std::string::npos) << options;
    if (GetParam() == OverlayMountApi::legacy) {
        EXPECT_NE(options.find("lowerdir=/proc/self/fd/"), std::string::npos) << options.substr(0, 200);
    } else if (kernel_at_least(6, 8)) {
        EXPECT_NE(options.find("lowerdir+="), std::string::npos) << options.substr(0, 200);
    }
}

INSTANTIATE_TEST_SUITE_P(Apis, ManyLowersTest,
                         ::testing::Values(OverlayMountApi::automatic, OverlayMountApi::legacy),
                         [](const auto& param_info) {
                             return param_info.param == OverlayMountApi::automatic ? "automatic" : "legacy";
                         });

TEST_F(OverlayMountTest, LowerPathLongerThanFsconfigsStringLimitMounts) {
    // fsconfig(2) takes strings of at most 255 bytes; such a lower goes by its /proc/self/fd name.
    std::string lower =
        make_dir(str_cat(std::string(100, 'a'), "/", std::string(100, 'b'), "/", std::string(100, 'c')));
    ASSERT_GT(lower.size(), 300u);
    test::write_text(lower + "/file", "deep\n");
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({{lower}, make_dir("upper"), make_dir("work")}, merged);
    ASSERT_TRUE(mounted) << mounted.error().message();
    EXPECT_EQ(test::read_text(merged + "/file"), "deep\n");
}

TEST_F(OverlayMountTest, SingleLowerWithoutUpperIsAReadOnlyView) {
    std::vector<std::string> lowers = layer_dirs();
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({{lowers.back()}}, merged);
    ASSERT_TRUE(mounted) << mounted.error().message();
    EXPECT_EQ(test::read_text(merged + "/etc/hostname"), "vm\n");
    int fd = ::open((merged + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int err = errno;
    if (fd >= 0) ::close(fd);
    EXPECT_LT(fd, 0);
    EXPECT_EQ(err, EROFS);
}

TEST_F(OverlayMountTest, DetachedMountCanBeAttachedElsewhere) {
    std::vector<std::string> lowers = layer_dirs();
    for (OverlayMountApi api : {OverlayMountApi::automatic, OverlayMountApi::legacy}) {
        auto detached = make_overlay_mount({lowers}, api);
        ASSERT_TRUE(detached) << detached.error().message();
        std::string target = make_dir(api == OverlayMountApi::automatic ? "attached-new" : "attached-legacy");
        auto attached = attach_mount(detached->get(), target);
        ASSERT_TRUE(attached) << attached.error().message();
        EXPECT_EQ(test::read_text(target + "/etc/hostname"), "vm3\n");
    }
}

TEST_F(OverlayMountTest, UpperReceivesWritesAndWhiteouts) {
    std::vector<std::string> lowers = layer_dirs();
    std::string upper = make_dir("upper");
    std::string merged = make_dir("merged");
    auto mounted = mount_overlay({lowers, upper, make_dir("work")}, merged);
    ASSERT_TRUE(mounted) << mounted.error().message();
    test::write_text(merged + "/newfile", "n\n");
    ASSERT_EQ(::unlink((merged + "/etc/motd").c_str()), 0);
    ASSERT_TRUE(mounted->unmount());
    EXPECT_EQ(test::read_text(upper + "/newfile"), "n\n");
    EXPECT_TRUE(is_whiteout_node(upper + "/etc/motd"));
}

TEST_F(OverlayMountTest, MissingLowerErrorNamesTheTargetAndTheLower) {
    std::string merged = make_dir("merged");
    std::string missing = m_base.path() + "/no-such-layer";
    auto mounted = mount_overlay({{missing}}, merged);
    ASSERT_FALSE(mounted);
    EXPECT_NE(mounted.error().message().find(merged), std::string::npos) << mounted.error().message();
    EXPECT_NE(mounted.error().message().find(missing), std::string::npos) << mounted.error().message();
    EXPECT_NE(mounted.error().message().find("No such file"), std::string::npos) << mounted.error().message();
}

TEST_F(OverlayMountTest, UpperOnOverlayfsIsRefusedWithTheKernelsReason) {
    std::vector<std::string> lowers = layer_dirs();
    std::string outer = make_dir("outer");
    auto mounted = mount_overlay({{lowers.back()}, make_dir("outer-upper"), make_dir("outer-work")}, outer);
    ASSERT_TRUE(mounted) << mounted.error().message();
    fs::create_directories(outer + "/up");
    fs::create_directories(outer + "/work");
    std::string merged = make_dir("merged");
    auto inner = mount_overlay({{lowers.front()}, outer + "/up", outer + "/work"}, merged);
    ASSERT_FALSE(inner) << "an upper directory on overlayfs was accepted";
    EXPECT_NE(inner.error().message().find(merged), std::string::npos) << inner.error().message();
    EXPECT_NE(inner.error().message().find("upperdir"), std::string::npos) << inner.error().message();
}

TEST_F(OverlayMountTest, ProbeAcceptsAStoreOnThisFilesystem) {
    // SetUp ran the probe on m_base; a second run must leave no scratch behind.
    auto probed = probe_overlay(m_base.path());
    ASSERT_TRUE(probed) << probed.error().message();
    EXPECT_TRUE(fs::is_empty(m_base.path()));
}

TEST_F(OverlayMountTest, ProbeRejectsAStoreOnOverlayfs) {
    std::vector<std::string> lowers = layer_dirs();
    std::string outer = make_dir("outer");
    auto mounted = mount_overlay({{lowers.back()}, make_dir("outer-upper"), make_dir("outer-work")}, outer);
    ASSERT_TRUE(mounted) << mounted.error().message();
    fs::create_directories(outer + "/store");
    auto probed = probe_overlay(outer + "/store");
    ASSERT_FALSE(probed);
    EXPECT_NE(probed.error().message().find("the store is on overlayfs"), std::string::npos)
        << probed.error().message();
    EXPECT_NE(probed.error().message().find(outer + "/store"), std::string::npos) << probed.error().message();
}

TEST_F(OverlayMountTest, ProbeSaysWhyAnUnprivilegedUserCannotMount) {
    if (!test::running_as_root()) GTEST_SKIP() << "dropping to another user needs root";
    ASSERT_EQ(::chmod(m_base.path().c_str(), 0755), 0);
    std::string store = make_dir("store");
    ASSERT_EQ(::chown(store.c_str(), 65534, 65534), 0);
    int code = test::as_nobody([&] {
        auto probed = probe_overlay(store);
        if (probed) return 1;
        if (probed.error().message().find("Operation not permitted") == std::string::npos ||
            probed.error().message().find(store) == std::string::npos) {
            std::fprintf(stderr, "%s\n", probed.error().message().c_str());
            return 2;
        }
        return 0;
    });
    ASSERT_NE(code, 77) << "could not drop to uid 65534";
    EXPECT_EQ(code, 0);
}

TEST_F(OverlayMountTest, ProbeSucceedsRootlessInsideAUserNamespace) {
    if (!test::running_as_root()) GTEST_SKIP() << "dropping to another user needs root";
    ASSERT_EQ(::chmod(m_base.path().c_str(), 0755), 0);
    std::string store = make_dir("store");
    ASSERT_EQ(::chown(store.c_str(), 65534, 65534), 0);
    int code = test::as_nobody([&] {
        int entered = test::run_in_user_namespace([&] {
            if (::unshare(CLONE_NEWNS) != 0) return 77;
            auto probed = probe_overlay(store);
            if (!probed) std::fprintf(stderr, "%s\n", probed.error().message().c_str());
            return probed ? 0 : 1;
        });
        return entered == -1 ? 77 : entered;
    });
    if (code == 77) GTEST_SKIP() << "an unprivileged user cannot make a user namespace here";
    EXPECT_EQ(code, 0);
}

TEST_F(OverlayMountTest, MountsInsideASingleIdUserNamespace) {
    std::vector<std::string> lowers = layer_dirs();
    std::string upper = make_dir("upper");
    std::string work = make_dir("work");
    std::string merged = make_dir("merged");
    int code = test::run_in_user_namespace([&] {
        if (::unshare(CLONE_NEWNS) != 0) return 77;
        auto mounted = mount_overlay({lowers, upper, work}, merged);
        if (!mounted) {
            std::fprintf(stderr, "%s\n", mounted.error().message().c_str());
            return 1;
        }
        if (::rmdir((merged + "/usr/share/doc/a").c_str()) == 0) return 2;  // not empty
        if (::unlink((merged + "/usr/share/doc/a/README").c_str()) != 0) return 3;
        if (::unlink((merged + "/usr/share/doc/a/CHANGES").c_str()) != 0) return 4;
        if (::rmdir((merged + "/usr/share/doc/a").c_str()) != 0) return 5;  // EIO without userxattr
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    ASSERT_EQ(code, 0);
    EXPECT_TRUE(is_whiteout_node(upper + "/usr/share/doc/a"));
}

}  // namespace
}  // namespace kiln
