// How the sandbox picks its id mapping, and what it says when it cannot make one.

#include <sched.h>
#include <sys/wait.h>

#include <cstring>

#include "builder/sandbox/id_map.hpp"
#include "tests/builder/sandbox/sandbox_fixture.hpp"

namespace kiln {
namespace {

class RootSubuidEntryTest : public SandboxTest {
protected:
    SandboxOptions options() const override {
        SandboxOptions options;
        options.subuid_file = m_work.path() + "/subuid";
        options.subgid_file = m_work.path() + "/subgid";
        EXPECT_TRUE(write_file_atomic(options.subuid_file, "builder:100000:65536\nroot:300000:65536\n"));
        EXPECT_TRUE(write_file_atomic(options.subgid_file, "root:400000:65536\n"));
        return options;
    }
};

TEST_F(RootSubuidEntryTest, RootsSubordinateRangeHoldsTheRunsIds) {
    RunOutput output = run(shell("cat /proc/self/uid_map; echo; cat /proc/self/gid_map; touch /by-root"));
    ASSERT_EQ(output.exit_code, 0) << output.output;
    std::vector<std::string> maps = split(output.output, '\n');
    ASSERT_GE(maps.size(), 3u) << output.output;
    EXPECT_EQ(parse_id_map(maps[0]).value_or(IdMap{}), (IdMap{{0, 300000, 65536}}));
    EXPECT_EQ(parse_id_map(maps[2]).value_or(IdMap{}), (IdMap{{0, 400000, 65536}}));
    // The idmapped rootfs still stores the container's ids.
    EXPECT_TRUE(::access((m_rootfs + "/by-root").c_str(), F_OK) == 0);
    struct stat st {};
    ASSERT_EQ(::stat((m_rootfs + "/by-root").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(SandboxTest, WithoutASubuidEntryRootUsesKilnsDefaultRange) {
    if (find_subordinate_range("/etc/subuid", "root", 0).value_or(std::nullopt))
        GTEST_SKIP() << "/etc/subuid has an entry for root";
    RunOutput output = run(spec({"cat", "/proc/self/uid_map"}));
    EXPECT_EQ(parse_id_map(output.output).value_or(IdMap{}), (IdMap{{0, k_default_host_id_base, 65536}}));
    EXPECT_NE(m_sandbox->description().find("default range"), std::string::npos) << m_sandbox->description();
}

// In a child process: a user namespace whose max_user_namespaces is 0, where the userns mode must explain
// the ENOSPC, and auto must fall back to a mode without a user namespace, saying why. Returns the userns
// error, a newline, then auto's mode and what it ruled out.
std::string detect_without_user_namespaces() {
    if (::unshare(CLONE_NEWUSER) != 0) return "skip: unshare(CLONE_NEWUSER) failed";
    const std::pair<const char*, const char*> writes[] = {{"/proc/self/setgroups", "deny"},
                                                          {"/proc/self/uid_map", "0 0 1"},
                                                          {"/proc/self/gid_map", "0 0 1"},
                                                          {"/proc/sys/user/max_user_namespaces", "0"}};
    for (auto [file, text] : writes) {
        UniqueFd fd(::open(file, O_WRONLY | O_CLOEXEC));
        if (!fd || ::write(fd.get(), text, std::strlen(text)) < 0)
            return str_cat("skip: cannot write ", file);
    }
    auto userns = Sandbox::detect(SandboxOptions{.mode = SandboxMode::userns});
    std::string report = userns ? "userns detect succeeded" : userns.error().message();
    auto automatic = Sandbox::detect();
    if (!automatic) return str_cat(report, "\nauto failed: ", automatic.error().message());
    return str_cat(report, "\n", sandbox_mode_name(automatic->mode()), ": ", join(automatic->ruled_out(), "; "));
}

TEST(SandboxDetect, NoUserNamespacesRulesOutUsernsNamingTheSysctl) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to set max_user_namespaces in a user namespace of its own";
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::string message = detect_without_user_namespaces();
        [[maybe_unused]] ssize_t written = ::write(fds[1], message.data(), message.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string message;
    char buffer[512];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, size_t(n));
    ::close(fds[0]);
    ::waitpid(child, nullptr, 0);
    if (message.starts_with("skip: ")) GTEST_SKIP() << message.substr(6);
    std::vector<std::string> lines = split(message, '\n');
    ASSERT_EQ(lines.size(), 2u) << message;
    EXPECT_NE(lines[0].find("--sandbox=userns cannot work here"), std::string::npos) << message;
    EXPECT_NE(lines[0].find("user.max_user_namespaces"), std::string::npos) << message;
    EXPECT_NE(lines[0].find("No space left on device"), std::string::npos) << message;
    // Root of that namespace may still mount in namespaces it owns.
    EXPECT_TRUE(lines[1].starts_with("rootns: userns: ")) << message;
    EXPECT_NE(lines[1].find("user.max_user_namespaces"), std::string::npos) << message;
}

// The chroot sandbox, run directly: real ids, no /proc, exit codes and exec failures as in the other modes,
// and nothing left running.
class ChrootSandboxTest : public SandboxTest {
protected:
    SandboxOptions options() const override { return SandboxOptions{.mode = SandboxMode::chroot}; }
};

TEST_F(ChrootSandboxTest, StepsRunWithTheHostsIdsAndWithoutProc) {
    ASSERT_EQ(m_sandbox->mode(), SandboxMode::chroot);
    RunSpec step = shell("id -u; test -e /proc/self && echo proc; touch /by-1000 2>/dev/null || echo denied; "
                         "echo x > /dev/null && echo null-ok");
    step.uid = 1000;
    step.gid = 1000;
    RunOutput output = run(step);
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "1000\ndenied\nnull-ok\n");
    RunOutput as_root = run(shell("touch /by-root && exit 3"));
    EXPECT_EQ(as_root.exit_code, 3) << as_root.output;
    struct stat st {};
    ASSERT_EQ(::stat((m_rootfs + "/by-root").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_FALSE(path_exists(m_rootfs + "/dev/null"));
}

TEST_F(ChrootSandboxTest, AMissingCommandExitsWith127) {
    RunOutput output = run(spec({"no-such-command"}));
    EXPECT_EQ(output.exit_code, 127) << output.output;
}

TEST_F(ChrootSandboxTest, ProcessesTheStepLeftAreKilledWhenItEnds) {
    std::vector<std::string> straggler = {"sleep", "7341"};
    RunOutput output = run(shell("(setsid sleep 7341 > /dev/null 2>&1 &); echo started"));
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_TRUE(processes_running(straggler).empty());
}

}  // namespace
}  // namespace kiln
