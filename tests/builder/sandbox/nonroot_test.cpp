// kiln as an unprivileged user: the re-exec into its own user namespace and RUN steps nested in it. A test
// user is created with useradd (and removed), and the helper executable runs as that user through setpriv.

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "builder/sandbox/id_map.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/test_user.hpp"

namespace kiln {
namespace {

using test::AccountKind;
using test::as_user;
using test::NoNewPrivs;
using test::TestUser;

// Creates a user for one test, or returns why it could not.
Result<std::unique_ptr<TestUser>> create_user(AccountKind kind) { return TestUser::create("kilnsbx", kind); }

// What the helper printed: its "key value" lines, and everything it wrote for failure messages.
struct HelperRun {
    int exit_code = -1;
    std::map<std::string, std::string> facts;
    std::string transcript;
};

// A copy of the helper inside `work`, which becomes the user's: reachable wherever the build tree lives.
std::string install_helper(const TestUser& user, const std::string& work) {
    std::string helper = work + "/helper";
    auto binary = read_file(KILN_SANDBOX_NONROOT_HELPER, 256 << 20);
    EXPECT_TRUE(binary && write_file_atomic(helper, *binary, 0755));
    EXPECT_EQ(::chown(work.c_str(), user.uid(), user.gid()), 0);
    return helper;
}

// Runs the helper as `user` on `work`, a fresh directory it is given.
HelperRun run_helper(const TestUser& user, const std::string& work, NoNewPrivs no_new_privs) {
    HelperRun run;
    std::string helper = install_helper(user, work);
    auto result = run_process(as_user(user, no_new_privs, {helper, work}));
    EXPECT_TRUE(result) << result.error().message();
    if (!result) return run;
    run.exit_code = result->exit_code;
    run.transcript = result->stdout_bytes + result->stderr_bytes;
    for (const std::string& line : split(result->stdout_bytes, '\n')) {
        size_t space = line.find(' ');
        if (line.starts_with("stat ")) {
            size_t second = line.find(' ', 5);
            run.facts["stat " + line.substr(5, second - 5)] =
                second == std::string::npos ? "" : line.substr(second + 1);
        } else if (space != std::string::npos) {
            run.facts[line.substr(0, space)] = line.substr(space + 1);
        }
    }
    return run;
}

struct stat stat_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
}

class NonRootTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a test user with useradd";
        for (const char* tool :
             {"/usr/sbin/useradd", "/usr/bin/setpriv", "/usr/bin/newuidmap", "/usr/bin/newgidmap"})
            if (!path_exists(tool)) GTEST_SKIP() << tool << " is missing";
        auto work = TempDir::create(default_temp_parent(), "kiln-sandbox-nonroot-");
        ASSERT_TRUE(work) << work.error().message();
        m_work = std::move(*work);
    }
    TempDir m_work;
};

TEST_F(NonRootTest, SubordinateIdsGiveImageIdsInsideAndShiftedIdsOnTheHost) {
    auto user = create_user(AccountKind::regular);
    if (!user) GTEST_SKIP() << user.error().message();
    auto uids = find_subordinate_range("/etc/subuid", (*user)->name(), (*user)->uid());
    auto gids = find_subordinate_range("/etc/subgid", (*user)->name(), (*user)->gid());
    if (!uids || !*uids || !gids || !*gids)
        GTEST_SKIP() << "useradd allocated no subordinate ids (login.defs)";

    HelperRun run = run_helper(**user, m_work.path(), NoNewPrivs::off);
    ASSERT_EQ(run.exit_code, 0) << run.transcript;
    EXPECT_NE(run.facts["mode"].find("0-65535"), std::string::npos) << run.transcript;
    EXPECT_EQ(run.facts["chown_exit"], "0") << run.transcript;
    EXPECT_EQ(run.facts["user_exit"], "0") << run.transcript;
    EXPECT_EQ(run.facts["stat by-root"], "0 0");
    EXPECT_EQ(run.facts["stat owned"], "1000 1000");
    EXPECT_EQ(run.facts["stat tmp/made"], "1000 1000");
    EXPECT_EQ(run.facts["mounts_exit"], "0") << run.transcript;
    for (const char* stub : {"src", "scratch", "run"})
        EXPECT_EQ(run.facts[str_cat("stat ", stub)], "missing") << stub;

    std::string rootfs = m_work.path() + "/rootfs";
    for (const char* path : {"/owned", "/tmp/made"}) {
        struct stat st = stat_of(rootfs + path);
        EXPECT_EQ(st.st_uid, (*uids)->start + 999) << path;
        EXPECT_EQ(st.st_gid, (*gids)->start + 999) << path;
    }
    struct stat by_root = stat_of(rootfs + "/by-root");
    EXPECT_EQ(by_root.st_uid, (*user)->uid());
    EXPECT_EQ(by_root.st_gid, (*user)->gid());
    EXPECT_TRUE((*user)->remove()) << "the test user was not cleaned up";
}

// Under no_new_privs only the user's own id can be mapped. The ownership supervisor pretends what RUN steps do
// with other ids: chown succeeds and records the owner, a step as uid 1000 runs as that user in its own eyes,
// and what it makes is recorded as that user's. On disk everything stays the user's.
TEST_F(NonRootTest, NoNewPrivsGivesASingleIdWhereOwnershipIsPretendedAndRecorded) {
    auto user = create_user(AccountKind::regular);
    if (!user) GTEST_SKIP() << user.error().message();
    HelperRun run = run_helper(**user, m_work.path(), NoNewPrivs::on);
    ASSERT_EQ(run.exit_code, 0) << run.transcript;
    EXPECT_NE(run.transcript.find("no_new_privs"), std::string::npos) << run.transcript;
    EXPECT_NE(run.facts["mode"].find("a single id: a seccomp supervisor pretends"), std::string::npos) << run.transcript;
    for (const char* step : {"root", "chown", "user", "tree", "switch"})
        EXPECT_EQ(run.facts[str_cat(step, "_exit")], "0") << step << "\n" << run.transcript;
    EXPECT_FALSE(run.facts.contains("override_by-root"));
    EXPECT_EQ(run.facts["override_owned"], "1000:1000");
    EXPECT_EQ(run.facts["override_tmp/made"], "1000:1000");
    EXPECT_EQ(run.facts["override_app"], "1234:5678");
    EXPECT_EQ(run.facts["override_app/sub/f"], "1234:5678");
    EXPECT_EQ(run.facts["override_tmp/by-user"], "1000:1000");
    EXPECT_EQ(run.facts["override_tmp/by-user/f"], "1000:1000");
    for (const char* path : {"/by-root", "/owned", "/tmp/made", "/app/sub/f", "/tmp/by-user/f"})
        EXPECT_EQ(stat_of(m_work.path() + "/rootfs" + path).st_uid, (*user)->uid()) << path;
    EXPECT_TRUE((*user)->remove()) << "the test user was not cleaned up";
}

TEST_F(NonRootTest, UserWithoutSubordinateIdsGetsASingleIdNamespace) {
    auto user = create_user(AccountKind::system);
    if (!user) GTEST_SKIP() << user.error().message();
    auto uids = find_subordinate_range("/etc/subuid", (*user)->name(), (*user)->uid());
    if (!uids || *uids) GTEST_SKIP() << "useradd --system allocated subordinate ids";
    HelperRun run = run_helper(**user, m_work.path(), NoNewPrivs::off);
    ASSERT_EQ(run.exit_code, 0) << run.transcript;
    EXPECT_NE(run.transcript.find("/etc/subuid has no range"), std::string::npos) << run.transcript;
    EXPECT_EQ(run.facts["root_exit"], "0") << run.transcript;
    EXPECT_EQ(run.facts["stat by-root"], "0 0");
    EXPECT_EQ(stat_of(m_work.path() + "/rootfs/by-root").st_uid, (*user)->uid());
    EXPECT_TRUE((*user)->remove()) << "the test user was not cleaned up";
}

TEST_F(NonRootTest, SigtermReachesTheReexecutedKiln) {
    auto user = create_user(AccountKind::regular);
    if (!user) GTEST_SKIP() << user.error().message();
    std::vector<std::string> command =
        as_user(**user, NoNewPrivs::off, {install_helper(**user, m_work.path()), "--wait"});
    std::vector<char*> argv;
    for (std::string& arg : command) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    pid_t outer = ::fork();
    ASSERT_GE(outer, 0);
    if (outer == 0) {
        ::dup2(out[1], 1);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    char ready[6] = {};
    ssize_t n = ::read(out[0], ready, 6);
    ::close(out[0]);
    // Only once the inner kiln runs is the signal the outer one's to forward.
    EXPECT_EQ(std::string(ready, n > 0 ? size_t(n) : 0), "ready\n");
    ::kill(outer, SIGTERM);
    int status = 0;
    pid_t reaped = 0;
    for (int attempt = 0; attempt < 200 && reaped == 0; ++attempt) {
        reaped = ::waitpid(outer, &status, WNOHANG);
        if (reaped == 0) ::usleep(50000);
    }
    if (reaped == 0) {
        ::kill(outer, SIGKILL);
        ::waitpid(outer, &status, 0);
        FAIL() << "the outer kiln did not end within 10 s of SIGTERM";
    }
    ASSERT_TRUE(WIFEXITED(status)) << "the outer kiln was killed instead of forwarding the signal";
    EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
    EXPECT_TRUE((*user)->remove()) << "the test user was not cleaned up";
}

}  // namespace
}  // namespace kiln
