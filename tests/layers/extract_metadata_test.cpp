// What extraction keeps besides names and bytes: file capabilities in every mode, ownership that a single-id
// user namespace cannot hold (recorded for the layer writer), long link targets, and holes.

#include <archive.h>
#include <archive_entry.h>
#include <sys/xattr.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "extract_fixture.hpp"
#include "layers/file_metadata.hpp"
#include "layers/layer_writer.hpp"
#include "userns_child.hpp"

namespace kiln {
namespace {

using test::run_in_user_namespace;
using test::run_in_user_namespace_as;

constexpr std::uint32_t k_cap_net_raw = 1u << 13;
constexpr std::uint32_t k_cap_net_bind_service = 1u << 10;

std::string le32(std::uint32_t value) {
    std::string bytes(4, '\0');
    for (size_t i = 0; i < 4; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
    return bytes;
}

// security.capability values: effective flag set, `permitted` in the low word.
std::string cap_v2(std::uint32_t permitted) {
    return le32(0x02000001) + le32(permitted) + le32(0) + le32(0) + le32(0);
}
std::string cap_v3(std::uint32_t permitted, std::uint32_t rootid) {
    return le32(0x03000001) + le32(permitted) + le32(0) + le32(0) + le32(0) + le32(rootid);
}

std::string get_xattr(const std::string& path, const char* name) {
    char value[256];
    ssize_t size = ::lgetxattr(path.c_str(), name, value, sizeof value);
    return size < 0 ? std::string("<none>") : std::string(value, static_cast<size_t>(size));
}

// uid:gid and xattr names of every entry of a tar, read with libarchive directly.
std::map<std::string, std::string> tar_owners(const std::string& tar) {
    std::map<std::string, std::string> owners;
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    archive_read_open_memory(a.get(), tar.data(), tar.size());
    archive_entry* entry = nullptr;
    while (archive_read_next_header(a.get(), &entry) == ARCHIVE_OK) {
        std::string line = str_cat(archive_entry_uid(entry), ":", archive_entry_gid(entry));
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        archive_entry_xattr_reset(entry);
        while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK)
            line += str_cat(" ", name);
        owners[archive_entry_pathname(entry)] = line;
    }
    return owners;
}

// Every uname and gname a tar carries, concatenated.
std::string tar_user_names(const std::string& tar) {
    std::string names;
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    archive_read_open_memory(a.get(), tar.data(), tar.size());
    archive_entry* entry = nullptr;
    while (archive_read_next_header(a.get(), &entry) == ARCHIVE_OK) {
        const char* uname = archive_entry_uname(entry);
        const char* gname = archive_entry_gname(entry);
        names += str_cat(uname ? uname : "", gname ? gname : "");
    }
    return names;
}

TEST_F(ExtractTest, FileCapabilityIsAppliedAfterChownAndChmod) {
    if (!test::running_as_root()) GTEST_SKIP() << "security.capability needs CAP_SETFCAP";
    apply_ok(TestTar().add({.name = "bin/ping",
                            .type = AE_IFREG,
                            .content = "elf",
                            .mode = 04755,
                            .uid = 1000,
                            .gid = 1000,
                            .xattrs = {{"security.capability", cap_v2(k_cap_net_raw)}}}));
    EXPECT_EQ(get_xattr(m_root_path + "/bin/ping", "security.capability"), cap_v2(k_cap_net_raw));
    EXPECT_EQ(lstat_of("bin/ping").st_mode & 07777, 04755u);
    EXPECT_EQ(lstat_of("bin/ping").st_uid, 1000u);
}

TEST_F(ExtractTest, NamespacedFileCapabilityFromALayerIsAppliedInItsPlainForm) {
    if (!test::running_as_root()) GTEST_SKIP() << "security.capability needs CAP_SETFCAP";
    // A layer written by a builder that read the capability outside its user namespace (rootid 100000).
    apply_ok(TestTar().add({.name = "bin/server",
                            .type = AE_IFREG,
                            .content = "elf",
                            .mode = 0755,
                            .xattrs = {{"security.capability", cap_v3(k_cap_net_bind_service, 100000)}}}));
    EXPECT_EQ(get_xattr(m_root_path + "/bin/server", "security.capability"), cap_v2(k_cap_net_bind_service))
        << "a v3 capability would only work in a user namespace whose root is host uid 100000";
}

TEST_F(ExtractTest, FileCapabilityInAUserNamespaceReadsBackInItsPlainForm) {
    TestTar tar;
    tar.add({.name = "bin/ping",
             .type = AE_IFREG,
             .content = "elf",
             .mode = 0755,
             .xattrs = {{"security.capability", cap_v3(k_cap_net_raw, 4242)}}});
    int code = run_in_user_namespace([&] {
        if (!apply(tar, OwnershipFailure::warn_once)) return 1;
        // Inside the namespace the kernel hands back what a layer must carry.
        if (get_xattr(m_root_path + "/bin/ping", "security.capability") != cap_v2(k_cap_net_raw)) return 2;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0) << "1: extraction failed, 2: the capability did not read back as v2";
    // Outside, the kernel stored it for the namespace's root, the host uid that ran the extraction, and shows
    // it as such: namespaced (v3, that uid as rootid) to an unprivileged caller, but plain (v2) to host root,
    // for whom a capability rooted at uid 0 is an ordinary one.
    std::string stored = get_xattr(m_root_path + "/bin/ping", "security.capability");
    uid_t host_uid = ::geteuid();
    EXPECT_EQ(stored, host_uid == 0 ? cap_v2(k_cap_net_raw) : cap_v3(k_cap_net_raw, host_uid));
}

TEST_F(ExtractTest, OwnershipASingleIdNamespaceCannotHoldIsRecorded) {
    TestTar tar;
    tar.dir("home/app", 0750, 1234, 2345)
        .file("home/app/tool", "elf", 04755, 1234, 2345)
        .file("home/app/mine", "root's", 0600, 0, 0);
    int code = run_in_user_namespace([&] {
        if (!apply(tar, OwnershipFailure::warn_once)) return 1;
        if (get_xattr(m_root_path + "/home/app/tool", "user.containers.override_stat") !=
            "1234:2345:4755:file")
            return 2;
        if (get_xattr(m_root_path + "/home/app", "user.containers.override_stat") != "1234:2345:0750:dir")
            return 3;
        if (get_xattr(m_root_path + "/home/app/mine", "user.containers.override_stat") != "<none>") return 4;
        if ((lstat_of("home/app/tool").st_mode & 07777) != 04755) return 5;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0) << "1: extraction failed, 2: file override, 3: directory override, 4: override where "
                          "chown worked, 5: set-id bits lost";
}

TEST_F(ExtractTest, ApplyingRealOwnershipClearsAStaleOverride) {
    int code = run_in_user_namespace([&] {
        if (!apply(TestTar().dir("srv", 0755, 1234, 1234), OwnershipFailure::warn_once)) return 1;
        if (get_xattr(m_root_path + "/srv", "user.containers.override_stat") == "<none>") return 2;
        if (!apply(TestTar().dir("srv", 0755, 0, 0), OwnershipFailure::warn_once)) return 3;
        if (get_xattr(m_root_path + "/srv", "user.containers.override_stat") != "<none>") return 4;
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    EXPECT_EQ(code, 0) << "1, 3: extraction failed, 2: nothing recorded, 4: the stale override stayed";
}

TEST_F(ExtractTest, LayersWrittenInASingleIdNamespaceCarryTheRecordedOwners) {
    TestTar tar;
    tar.dir("home/app", 0750, 1234, 2345).file("home/app/tool", "elf", 04755, 1234, 2345);
    std::string tar_path = m_base.path() + "/written.tar";
    int code = run_in_user_namespace([&] {
        if (!apply(tar, OwnershipFailure::warn_once)) return 1;
        test::write_text(m_root_path + "/home/app/new", "made by a RUN step");
        StringWriter out;
        auto written = write_layer(
            *m_root, {{LayerEntryKind::path, "home/app/tool"}, {LayerEntryKind::path, "home/app/new"}}, out,
            {.compression = {.compression = Compression::none}});
        if (!written) return 2;
        test::write_text(tar_path, out.bytes());
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces are not available here";
    ASSERT_EQ(code, 0) << "1: extraction failed, 2: writing the layer failed";
    auto owners = tar_owners(test::read_text(tar_path));
    EXPECT_EQ(owners["home/"], "0:0");
    EXPECT_EQ(owners["home/app/"], "1234:2345") << "the parent directory keeps its recorded owner";
    EXPECT_EQ(owners["home/app/tool"], "1234:2345") << "and no override xattr is stored";
    EXPECT_EQ(owners["home/app/new"], "0:0");
}

TEST_F(ExtractTest, LayersWrittenInANamespaceCarryTheImagesIdsNeverTheHosts) {
    // Host root maps the namespace's root to an id of its own choosing, so that host and image ids differ;
    // anyone else is mapped to their own (non-zero) id.
    uid_t host_uid = ::geteuid() == 0 ? 100000 : ::geteuid();
    gid_t host_gid = ::geteuid() == 0 ? 100000 : ::getegid();
    if (::geteuid() == 0) {
        // The namespace's root must be able to reach and write the rootfs.
        ASSERT_EQ(::chmod(m_base.path().c_str(), 0755), 0);
        ASSERT_EQ(::chown(m_root_path.c_str(), host_uid, host_gid), 0);
    }
    TestTar tar;
    tar.dir("srv", 0755, 0, 0)
        .file("srv/app", "elf", 0755, 1234, 1234)
        .file("srv/config", "root's", 0644, 0, 0);
    std::string tar_path = m_root_path + "/written.tar";
    int code = run_in_user_namespace_as(host_uid, host_gid, [&] {
        if (!apply(tar, OwnershipFailure::warn_once)) return 1;
        test::write_text(m_root_path + "/srv/new", "made by a RUN step");
        StringWriter out;
        auto written = write_layer(*m_root,
                                   {{LayerEntryKind::path, "srv/app"},
                                    {LayerEntryKind::path, "srv/config"},
                                    {LayerEntryKind::path, "srv/new"}},
                                   out, {.compression = {.compression = Compression::none}});
        if (!written) return 2;
        test::write_text(tar_path, out.bytes());
        return 0;
    });
    if (code == -1) GTEST_SKIP() << "user namespaces with a chosen mapping are not available here";
    ASSERT_EQ(code, 0) << "1: extraction failed, 2: writing the layer failed";
    EXPECT_EQ(lstat_of("srv/new").st_uid, host_uid)
        << "on the host, the namespace's files belong to the host id";
    auto owners = tar_owners(test::read_text(tar_path));
    EXPECT_EQ(owners["srv/"], "0:0");
    EXPECT_EQ(owners["srv/app"], "1234:1234") << "the recorded owner";
    EXPECT_EQ(owners["srv/config"], "0:0");
    EXPECT_EQ(owners["srv/new"], "0:0") << "not the host id " << host_uid;
    EXPECT_EQ(tar_user_names(test::read_text(tar_path)), "") << "layers carry no user or group names";
}

TEST_F(ExtractTest, LongSymlinkAndHardlinkTargetsArriveWhole) {
    std::string deep = "opt/" + std::string(120, 'd') + "/" + std::string(150, 'e');
    std::string target = "/" + deep + "/" + std::string(200, 'f');
    apply_ok(TestTar()
                 .file(deep + "/" + std::string(200, 'f'), "far away")
                 .symlink("link", target)
                 .hardlink("hard", deep + "/" + std::string(200, 'f')));
    EXPECT_EQ(std::filesystem::read_symlink(m_root_path + "/link").string(), target);
    EXPECT_EQ(lstat_of("hard").st_ino, lstat_of(deep + "/" + std::string(200, 'f')).st_ino);
}

TEST_F(ExtractTest, RunsOfZerosInADenseEntryStayHoles) {
    std::string data = "head" + std::string(8 << 20, '\0') + "tail";
    apply_ok(TestTar().file("disk.img", data));
    struct stat st = lstat_of("disk.img");
    EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
    EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the zeros took disk space";
    EXPECT_TRUE(content("disk.img") == data);
}

TEST_F(ExtractTest, TrailingZerosKeepTheFileSize) {
    std::string data = "head" + std::string(1 << 20, '\0');
    apply_ok(TestTar().file("tail-hole", data));
    EXPECT_EQ(lstat_of("tail-hole").st_size, static_cast<off_t>(data.size()));
    EXPECT_TRUE(content("tail-hole") == data);
}

}  // namespace
}  // namespace kiln
