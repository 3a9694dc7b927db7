// What a RUN step cannot reach, and what it cannot leave behind: host files, mounts, processes, interfaces.

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "common/strings.hpp"
#include "tests/builder/sandbox/sandbox_fixture.hpp"

namespace kiln {
namespace {

std::string mountinfo() {
    return read_file("/proc/self/mountinfo").value_or("unreadable");
}

// Polls `condition` for up to ten seconds.
template <class Condition>
bool wait_until(Condition condition) {
    for (int attempt = 0; attempt < 200; ++attempt) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

bool directory_is_empty(const std::string& path) {
    DIR* dir = ::opendir(path.c_str());
    if (!dir) return false;
    int entries = 0;
    while (dirent* entry = ::readdir(dir))
        entries += std::string_view(entry->d_name) != "." && std::string_view(entry->d_name) != "..";
    ::closedir(dir);
    return entries == 0;
}

TEST_F(SandboxTest, HostFilesystemIsNotVisible) {
    std::string secret = m_work.path() + "/host-secret";
    ASSERT_TRUE(write_file_atomic(secret, "do not read"));
    RunOutput output = run(shell(str_cat("cat ", secret, " /var/tmp/", " 2>&1; test -e ", secret)));
    EXPECT_EQ(output.exit_code, 1);
    EXPECT_EQ(output.output.find("do not read"), std::string::npos) << output.output;
}

TEST_F(SandboxTest, NoMountIsLeftBehind) {
    std::string before = mountinfo();
    ASSERT_EQ(run(shell("test -d /proc/self && test -c /dev/null")).exit_code, 0);
    RunSpec failing = spec({"true"});
    failing.working_directory = "/missing";
    EXPECT_FALSE(m_sandbox->run(failing));
    EXPECT_EQ(mountinfo(), before);
}

TEST_F(SandboxTest, NoProcessOutlivesTheStep) {
    const std::vector<std::string> straggler = {"sleep", "31337"};
    auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(run(shell("sleep 31337 & exit 0")).exit_code, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
    std::vector<pid_t> survivors = processes_running(straggler);
    EXPECT_TRUE(survivors.empty()) << "a background process of the RUN step survived it";
    for (pid_t pid : survivors) ::kill(pid, SIGKILL);
}

TEST_F(SandboxTest, RunStepDiesWithKiln) {
    const std::vector<std::string> straggler = {"sleep", "31338"};
    pid_t kiln = ::fork();
    ASSERT_GE(kiln, 0);
    if (kiln == 0) ::_exit(m_sandbox->run(spec(straggler)) ? 0 : 1);
    bool started = wait_until([&] { return !processes_running(straggler).empty(); });
    ::kill(kiln, SIGKILL);
    ::waitpid(kiln, nullptr, 0);
    ASSERT_TRUE(started) << "the RUN step never started";
    EXPECT_TRUE(wait_until([&] { return processes_running(straggler).empty(); }))
        << "the RUN step outlived the kiln process that ran it";
    for (pid_t pid : processes_running(straggler)) ::kill(pid, SIGKILL);
}

TEST_F(SandboxTest, NetworkNoneHasOnlyALoopbackThatIsUp) {
    RunSpec isolated = shell("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip link show lo");
    isolated.network = NetworkMode::none;
    RunOutput output = run(isolated);
    ASSERT_EQ(output.exit_code, 0) << output.output;
    EXPECT_TRUE(output.output.starts_with("lo\n1: lo: <LOOPBACK,UP")) << output.output;
}

TEST_F(SandboxTest, NetworkHostSharesTheHostsInterfaces) {
    std::string host = read_file("/proc/net/dev").value_or("");
    if (host.find("eth0:") == std::string::npos) GTEST_SKIP() << "the host has no eth0 to look for";
    EXPECT_NE(run(spec({"cat", "/proc/net/dev"})).output.find("eth0:"), std::string::npos);
}

TEST_F(SandboxTest, EtcSymlinkToAHostPathCannotRedirectStubs) {
    std::string host_dir = m_work.path() + "/host-etc";
    ASSERT_TRUE(make_directories(host_dir));
    ASSERT_EQ(::symlink(host_dir.c_str(), (m_rootfs + "/etc").c_str()), 0);
    std::string before = mountinfo();
    RunOutput output = run(shell("test -e /etc/hosts"));
    // The link resolves inside the rootfs, where its target does not exist: no /etc/hosts at all, and the
    // step runs.
    EXPECT_EQ(output.exit_code, 1) << output.output;
    EXPECT_TRUE(directory_is_empty(host_dir)) << "a stub was created in the host directory";
    EXPECT_EQ(mountinfo(), before);
}

TEST_F(SandboxTest, DevSymlinkToAHostPathCannotRedirectMounts) {
    std::string host_dir = m_work.path() + "/host-dev";
    ASSERT_TRUE(make_directories(host_dir));
    ASSERT_EQ(::symlink(host_dir.c_str(), (m_rootfs + "/dev").c_str()), 0);
    std::string before = mountinfo();
    auto result = m_sandbox->run(spec({"true"}));
    ASSERT_FALSE(result) << "/dev resolved to a directory that the image does not have";
    EXPECT_NE(result.error().message().find("/dev"), std::string::npos) << result.error().message();
    EXPECT_TRUE(directory_is_empty(host_dir));
    EXPECT_EQ(mountinfo(), before);
}

TEST_F(SandboxTest, EtcSymlinkInsideTheImageIsFollowedInsideIt) {
    ASSERT_TRUE(make_directories(m_rootfs + "/private/etc"));
    ASSERT_EQ(::symlink("/private/etc", (m_rootfs + "/etc").c_str()), 0);
    ASSERT_EQ(run(shell("test -f /private/etc/hosts")).exit_code, 0);
    EXPECT_TRUE(directory_is_empty(m_rootfs + "/private/etc")) << "the stub was left behind";
}

}  // namespace
}  // namespace kiln
