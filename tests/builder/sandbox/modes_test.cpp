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

// In a child process: a user namespace whose max_user_namespaces is 0, where detect() must explain the
// ENOSPC.
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
    auto sandbox = Sandbox::detect();
    return sandbox ? "detect succeeded" : sandbox.error().message();
}

TEST(SandboxDetect, NoUserNamespacesIsAnErrorNamingTheSysctl) {
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
    EXPECT_NE(message.find("user.max_user_namespaces"), std::string::npos) << message;
    EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
}

}  // namespace
}  // namespace kiln
