// RUN --mount with kiln run by an unprivileged user: the sandbox child clones the mount sources inside kiln's
// user namespace, the default cache directory is under the user's home, and the mounts leave no trace.

#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/run_build_fixture.hpp"
#include "tests/support/test_user.hpp"

namespace kiln::test {
namespace {

using RunMountNonRootTest = RunBuildTest;

TEST_F(RunMountNonRootTest, MountsWorkAndLeaveNoTraceWithoutRoot) {
    for (const char* tool :
         {"/usr/bin/newuidmap", "/usr/bin/newgidmap", "/usr/bin/setpriv", "/usr/sbin/useradd"})
        if (::access(tool, X_OK) != 0) GTEST_SKIP() << tool << " is not installed";
    auto user = TestUser::create("kilnrm", AccountKind::regular);
    if (!user) GTEST_SKIP() << user.error().message();
    if (read_file("/etc/subuid").value_or("").find((*user)->name() + ":") == std::string::npos)
        GTEST_SKIP() << "useradd allocated no subordinate ids (SUB_UID_COUNT in login.defs)";

    // Everything the user touches lives in a directory it owns.
    std::string work = case_path("user");
    std::string context = work + "/context";
    ASSERT_TRUE(make_directories(context + "/data"));
    ASSERT_TRUE(make_directories(work + "/tmp"));
    ASSERT_TRUE(write_file_atomic(context + "/data/file", "from the context\n"));
    ASSERT_TRUE(write_file_atomic(work + "/token", "user-secret", 0600));
    ASSERT_TRUE(write_file_atomic(context + "/Dockerfile", R"DF(FROM base
RUN --mount=type=cache,target=/cache,uid=1000 --mount=type=bind,source=data,target=/src \
    --mount=type=secret,id=token --mount=type=tmpfs,target=/scratch \
    cat /src/file > /copied && ! touch /src/new 2>/dev/null && stat -c %u /cache > /cache-owner && \
    echo kept > /cache/file && test "$(cat /run/secrets/token)" = user-secret && echo t > /scratch/t
)DF"));
    auto copied = run_process({"cp", "-a", kiln_binary(), work + "/kiln"});
    ASSERT_TRUE(copied && copied->exit_code == 0);
    copied = run_process({"cp", "-a", s_work->path() + "/base", work + "/base"});
    ASSERT_TRUE(copied && copied->exit_code == 0);
    ASSERT_TRUE(run_process({"chown", "-R", str_cat((*user)->uid(), ":", (*user)->gid()), work}));
    // mkdtemp made both 0700: let the user through.
    ASSERT_EQ(::chmod(m_dir.path().c_str(), 0711), 0);
    ASSERT_EQ(::chmod(s_work->path().c_str(), 0711), 0);

    ProcessOptions options;
    options.environment = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + work, "TMPDIR=" + work + "/tmp"};
    auto run = run_process(as_user(**user, NoNewPrivs::off,
                                   {work + "/kiln", "build", "--context", context, "--build-context",
                                    "base=oci-layout://" + work + "/base", "--no-push", "--oci-layout-path",
                                    work + "/layout", "--secret", "id=token,src=" + work + "/token"}),
                           options);
    ASSERT_TRUE(run) << run.error().message();
    ASSERT_EQ(run->exit_code, 0) << run->stdout_bytes << run->stderr_bytes;

    m_layout = work + "/layout";
    m_bundle = case_path("bundle");
    ASSERT_TRUE(unpack_layout(m_layout, "latest", m_bundle));
    EXPECT_EQ(content_of("copied"), "from the context\n");
    EXPECT_EQ(content_of("cache-owner"), "1000\n");
    for (const char* mount_point : {"cache", "src", "run", "scratch"})
        EXPECT_FALSE(any_layer_has(mount_point)) << mount_point;
    EXPECT_FALSE(path_exists(context + "/data/new"));
    // The cache is kept under the user's ${HOME}/.cache/kiln, the default cache directory.
    auto cached = run_process({"find", work + "/.cache/kiln/run-mounts", "-path", "*/data/file"});
    ASSERT_TRUE(cached);
    EXPECT_NE(cached->stdout_bytes, "") << "no cache directory under the user's home";
    EXPECT_TRUE((*user)->remove()) << "the test user was not cleaned up";
}

}  // namespace
}  // namespace kiln::test
