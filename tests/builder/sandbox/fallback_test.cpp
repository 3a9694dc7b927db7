// The sandbox's fallbacks, provoked for real in a forked child with a private mount namespace: a masked /proc
// (as in a container), a rootfs on a filesystem without idmapped mounts, root without CAP_SYS_ADMIN.

#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <functional>
#include <mutex>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "tests/builder/sandbox/sandbox_fixture.hpp"

namespace kiln {
namespace {

// Runs `body` in a forked child with a mount namespace of its own, so whatever it mounts vanishes with it,
// and returns what the body returned ("skip: <reason>" when the namespace cannot be made).
std::string in_private_mount_namespace(const std::function<std::string()>& body) {
    int fds[2];
    if (::pipe(fds) != 0) return "skip: pipe failed";
    pid_t child = ::fork();
    if (child < 0) return "skip: fork failed";
    if (child == 0) {
        std::string result = ::unshare(CLONE_NEWNS) != 0 ? "skip: unshare(CLONE_NEWNS) failed"
                             : ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0
                                 ? "skip: cannot make / private"
                                 : body();
        [[maybe_unused]] ssize_t written = ::write(fds[1], result.data(), result.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string result;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) result.append(buffer, size_t(n));
    ::close(fds[0]);
    ::waitpid(child, nullptr, 0);
    return result;
}

// Collects warnings into `into` for the rest of the (child) process.
void capture_warnings(std::string& into) {
    set_log_sink([&into](LogLevel level, std::string_view message) {
        if (level >= LogLevel::warn) into += str_cat(message, "\n");
    });
}

TEST_F(SandboxTest, MaskedProcFallsBackToBindingTheHostsProc) {
    std::string result = in_private_mount_namespace([&]() -> std::string {
        // Like a container runtime's masked paths: a mount over part of /proc makes a fresh procfs "too
        // revealing".
        if (::mount("tmpfs", "/proc/sys", "tmpfs", MS_RDONLY, nullptr) != 0)
            return "skip: cannot mask /proc/sys";
        std::string warnings;
        capture_warnings(warnings);
        RunOutput output = run(shell("head -1 /proc/self/status"));
        return str_cat("exit ", output.exit_code, "\n", output.output, warnings);
    });
    if (result.starts_with("skip: ")) GTEST_SKIP() << result.substr(6);
    EXPECT_TRUE(result.starts_with("exit 0\nName:\thead\n")) << result;
    EXPECT_NE(result.find("mount proc on"), std::string::npos) << result;
}

TEST_F(SandboxTest, RootfsWithoutIdmapSupportGetsTheIdentityMapForThatRun) {
    std::string ramfs = m_work.path() + "/ramfs";
    ASSERT_TRUE(make_directories(ramfs));
    std::string result = in_private_mount_namespace([&]() -> std::string {
        // ramfs has no idmapped mount support (no FS_ALLOW_IDMAP).
        if (::mount("ramfs", ramfs.c_str(), "ramfs", 0, nullptr) != 0) return "skip: cannot mount ramfs";
        if (!build_busybox_rootfs(ramfs)) return "skip: cannot build the rootfs on ramfs";
        std::string warnings;
        capture_warnings(warnings);
        RunSpec chown = shell("touch /owned && chown 1000:1000 /owned");
        chown.rootfs = ramfs;
        RunOutput output = run(chown);
        struct stat st {};
        ::lstat((ramfs + "/owned").c_str(), &st);
        return str_cat("exit ", output.exit_code, " owner ", st.st_uid, ":", st.st_gid, "\n", warnings);
    });
    if (result.starts_with("skip: ")) GTEST_SKIP() << result.substr(6);
    if (m_sandbox->description().find("idmapped") == std::string::npos)
        GTEST_SKIP() << m_sandbox->description();
    EXPECT_TRUE(result.starts_with("exit 0 owner 1000:1000\n")) << result;
    EXPECT_NE(result.find("identity map"), std::string::npos) << result;
}

TEST_F(SandboxTest, RootWithoutCapSysAdminLetsEachSandboxCloneItsRootfs) {
    std::string result = in_private_mount_namespace([&]() -> std::string {
        // Root as in a default container: CAP_SYS_ADMIN gone from every set, so kiln may not clone mounts.
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct caps[2]{};
        if (::syscall(SYS_capget, &header, caps) != 0) return "skip: capget failed";
        std::uint32_t bit = 1u << (CAP_SYS_ADMIN % 32);
        caps[CAP_SYS_ADMIN / 32].effective &= ~bit;
        caps[CAP_SYS_ADMIN / 32].permitted &= ~bit;
        caps[CAP_SYS_ADMIN / 32].inheritable &= ~bit;
        if (::prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN) != 0 || ::syscall(SYS_capset, &header, caps) != 0)
            return "skip: cannot drop CAP_SYS_ADMIN";
        std::string warnings;
        capture_warnings(warnings);
        auto sandbox = Sandbox::detect();
        if (!sandbox) return sandbox.error().message();
        m_sandbox = std::make_unique<Sandbox>(std::move(*sandbox));
        RunOutput output = run(shell("touch /owned && chown 1000:1000 /owned"));
        struct stat st {};
        ::lstat((m_rootfs + "/owned").c_str(), &st);
        return str_cat("exit ", output.exit_code, " owner ", st.st_uid, ":", st.st_gid, "\n",
                       m_sandbox->description(), "\n", warnings);
    });
    if (result.starts_with("skip: ")) GTEST_SKIP() << result.substr(6);
    EXPECT_TRUE(result.starts_with("exit 0 owner 1000:1000\n")) << result;
    EXPECT_NE(result.find("may not clone mounts"), std::string::npos) << result;
}

}  // namespace
}  // namespace kiln
