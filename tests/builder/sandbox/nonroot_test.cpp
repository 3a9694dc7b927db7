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

namespace kiln {
namespace {

enum class AccountKind { regular, system };  // useradd gives subordinate ids to regular accounts only

// A user account that exists for the lifetime of the object; userdel also drops its group and subordinate
// ids.
class TestUser {
public:
    TestUser(std::string name, uid_t uid, gid_t gid) : m_name(std::move(name)), m_uid(uid), m_gid(gid) {}
    TestUser(const TestUser&) = delete;
    TestUser& operator=(const TestUser&) = delete;
    ~TestUser() {
        auto removed = run_process({"userdel", m_name});
        EXPECT_TRUE(removed && removed->exit_code == 0) << "userdel " << m_name;
        for (const char* file : {"/etc/subuid", "/etc/subgid"})
            EXPECT_EQ(read_file(file).value_or("").find(m_name + ":"), std::string::npos)
                << m_name << " left in " << file;
    }
    const std::string& name() const { return m_name; }
    uid_t uid() const { return m_uid; }
    gid_t gid() const { return m_gid; }

private:
    std::string m_name;
    uid_t m_uid;
    gid_t m_gid;
};

// Creates a user, or returns why it could not.
Result<std::unique_ptr<TestUser>> create_user(AccountKind kind) {
    std::string name = str_cat("kilnsbx", ::getpid() % 100000, kind == AccountKind::system ? "s" : "r");
    std::vector<std::string> command = {"useradd", "--no-create-home", "--shell", "/usr/sbin/nologin"};
    if (kind == AccountKind::system) command.push_back("--system");
    command.push_back(name);
    KILN_ASSIGN(ProcessResult added, run_process(command));
    if (added.exit_code != 0) return fail(str_cat("useradd failed: ", trim(added.stderr_bytes)));
    const passwd* entry = ::getpwnam(name.c_str());
    if (!entry) return fail(str_cat("useradd succeeded but getpwnam(", name, ") finds nothing"));
    return std::make_unique<TestUser>(name, entry->pw_uid, entry->pw_gid);
}

enum class NoNewPrivs { off, on };

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

// setpriv's command line that runs `argv` as `user`, with no supplementary groups.
std::vector<std::string> as_user(const TestUser& user, NoNewPrivs no_new_privs,
                                 std::vector<std::string> argv) {
    std::vector<std::string> command = {"setpriv", str_cat("--reuid=", user.uid()),
                                        str_cat("--regid=", user.gid()), "--clear-groups"};
    if (no_new_privs == NoNewPrivs::on) command.push_back("--no-new-privs");
    command.push_back("--");
    command.insert(command.end(), argv.begin(), argv.end());
    return command;
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

    std::string rootfs = m_work.path() + "/rootfs";
    for (const char* path : {"/owned", "/tmp/made"}) {
        struct stat st = stat_of(rootfs + path);
        EXPECT_EQ(st.st_uid, (*uids)->start + 999) << path;
        EXPECT_EQ(st.st_gid, (*gids)->start + 999) << path;
    }
    struct stat by_root = stat_of(rootfs + "/by-root");
    EXPECT_EQ(by_root.st_uid, (*user)->uid());
    EXPECT_EQ(by_root.st_gid, (*user)->gid());
}

TEST_F(NonRootTest, NoNewPrivsFallsBackToASingleIdThatStillRuns) {
    auto user = create_user(AccountKind::regular);
    if (!user) GTEST_SKIP() << user.error().message();
    HelperRun run = run_helper(**user, m_work.path(), NoNewPrivs::on);
    ASSERT_EQ(run.exit_code, 0) << run.transcript;
    EXPECT_NE(run.transcript.find("no_new_privs"), std::string::npos) << run.transcript;
    EXPECT_NE(run.facts["mode"].find("a single id"), std::string::npos) << run.transcript;
    EXPECT_EQ(run.facts["root_exit"], "0") << run.transcript;
    EXPECT_NE(run.facts["chown_exit"], "0") << "chown to an unmapped id succeeded: " << run.transcript;
    EXPECT_TRUE(run.facts.contains("user_error")) << "uid 1000 cannot exist in a single-id namespace";
    struct stat by_root = stat_of(m_work.path() + "/rootfs/by-root");
    EXPECT_EQ(by_root.st_uid, (*user)->uid());
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
}

}  // namespace
}  // namespace kiln
