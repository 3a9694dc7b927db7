// kiln run by an unprivileged user with /etc/subuid and /etc/subgid ranges: it re-executes itself in a user
// namespace, and the layers it writes must carry the image's own ids, never the host's subordinate ids.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/support/test_user.hpp"

namespace kiln::test {
namespace {

using NonRootBuildTest = RegistryBuildTest;

// Copies a file the test user must be able to read or run into its work directory.
Status copy_for_user(const std::string& from, const std::string& to, mode_t mode) {
    KILN_ASSIGN(std::string bytes, read_file(from, 512 << 20));
    return write_file_atomic(to, bytes, mode);
}

TEST_F(NonRootBuildTest, LayersKeepImageOwnershipWhenBuiltWithoutRoot) {
    for (const char* tool : {"/usr/bin/newuidmap", "/usr/bin/newgidmap", "/usr/bin/setpriv", "/usr/sbin/useradd"})
        if (::access(tool, X_OK) != 0) GTEST_SKIP() << tool << " is not installed";
    auto user = TestUser::create("kilnit", AccountKind::regular);
    if (!user) GTEST_SKIP() << user.error().message();
    if (read_file("/etc/subuid").value_or("").find((*user)->name() + ":") == std::string::npos)
        GTEST_SKIP() << "useradd allocated no subordinate ids (SUB_UID_COUNT in login.defs)";

    // Everything the user touches lives in a directory it owns: the build tree may be unreachable for it.
    std::string work = m_dir.path() + "/user";
    std::string context = work + "/context";
    ASSERT_TRUE(make_directories(work + "/tmp"));
    ASSERT_TRUE(make_directories(context));
    ASSERT_TRUE(copy_for_user(kiln_binary(), work + "/kiln", 0755));
    for (const char* file : {"Dockerfile", "message.txt"})
        ASSERT_TRUE(copy_for_user(source_path(std::string("tests/integration/data/two-stage/") + file),
                                  context + "/" + file, 0644));
    ASSERT_EQ(::chown(m_dir.path().c_str(), (*user)->uid(), (*user)->gid()), 0);
    ASSERT_EQ(::chmod(parent_path(m_dir.path()).c_str(), 0711), 0);  // mkdtemp made it 0700: let the user through
    ASSERT_TRUE(run_process({"chown", "-R", str_cat((*user)->uid(), ":", (*user)->gid()), work}));

    std::vector<std::string> environment = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + work,
                                            "TMPDIR=" + work + "/tmp"};
    std::vector<std::string> argv = as_user(**user, NoNewPrivs::off,
                                            {work + "/kiln", "build", "--context", context, "--build-arg",
                                             "BASE=" + base(), "--insecure-pull", "--no-push",
                                             "--oci-layout-path", work + "/layout"});
    ProcessOptions options;
    options.environment = environment;
    auto run = run_process(argv, options);
    ASSERT_TRUE(run) << run.error().message();
    ASSERT_EQ(run->exit_code, 0) << run->stdout_bytes << run->stderr_bytes;
    EXPECT_NE(run->stderr_bytes.find("sandbox:"), std::string::npos) << run->stderr_bytes;

    auto unpacked = unpack_layout(work + "/layout", "latest", m_dir.path() + "/bundle");
    ASSERT_TRUE(unpacked) << unpacked.error().message();
    std::string rootfs = m_dir.path() + "/bundle/rootfs/";
    for (const char* path : {"srv/app/data", "srv/app/data/made-by-svc", "srv/app/data/copied.txt"}) {
        auto st = lstat_path(rootfs + path);
        ASSERT_TRUE(st) << path;
        EXPECT_EQ(st->st_uid, 1234u) << path;
        EXPECT_EQ(st->st_gid, 2345u) << path;
    }
    auto passwd = lstat_path(rootfs + "etc/passwd");
    ASSERT_TRUE(passwd);
    EXPECT_EQ(passwd->st_uid, 0u);  // root in the image, not the user who ran kiln
    EXPECT_EQ(*read_file(rootfs + "srv/app/data/whoami"), "1234\n");
    // The build left nothing owned by subordinate ids behind in the user's temporary directory, once its work
    // directory's background deletion is done.
    EXPECT_EQ(wait_for_no_kiln_entries(work + "/tmp", std::chrono::seconds(60)), std::vector<std::string>{});
    auto leftovers = run_process({"find", work + "/tmp", "-mindepth", "1"});
    ASSERT_TRUE(leftovers);
    EXPECT_EQ(leftovers->stdout_bytes, "");
    EXPECT_TRUE((*user)->remove()) << "the test user was not cleaned up";
}

}  // namespace
}  // namespace kiln::test
