// What a RUN step sees and leaves: exit codes, ownership on disk, the mounts it gets, its environment.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <map>

#include "common/strings.hpp"
#include "tests/builder/sandbox/sandbox_fixture.hpp"

namespace kiln {
namespace {

struct stat stat_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
}

// Every entry below `root` with the metadata a snapshotter compares, directories' mtimes included.
void list_tree(const std::string& root, const std::string& relative,
               std::map<std::string, std::string>& out) {
    std::string path = root + relative;
    struct stat st = stat_of(path);
    out[relative.empty() ? "/" : relative] =
        str_cat(std::oct, st.st_mode, std::dec, " ", st.st_uid, ":", st.st_gid, " ino=", st.st_ino,
                " size=", st.st_size, " mtime=", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
    if (!S_ISDIR(st.st_mode)) return;
    DIR* dir = ::opendir(path.c_str());
    ASSERT_NE(dir, nullptr) << path;
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    for (const std::string& name : names) list_tree(root, relative + "/" + name, out);
}

// Dates every directory below `root` back to 2001, so that any later change to one shows in its mtime even
// within the filesystem's timestamp granularity.
void age_directories(const std::string& root, const std::string& relative = "") {
    std::string path = root + relative;
    struct stat st = stat_of(path);
    if (!S_ISDIR(st.st_mode)) return;
    DIR* dir = ::opendir(path.c_str());
    ASSERT_NE(dir, nullptr) << path;
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    for (const std::string& name : names) age_directories(root, relative + "/" + name);
    const timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), old, AT_SYMLINK_NOFOLLOW), 0) << path;
}

std::map<std::string, std::string> snapshot(const std::string& root) {
    std::map<std::string, std::string> listing;
    list_tree(root, "", listing);
    return listing;
}

TEST_F(SandboxTest, ExitCodeOfTheCommandIsReturned) {
    EXPECT_EQ(run(shell("exit 7")).exit_code, 7);
}

TEST_F(SandboxTest, KillingSignalGives128PlusTheSignal) {
    EXPECT_EQ(run(shell("kill -9 $$")).exit_code, 128 + 9);
}

TEST_F(SandboxTest, UnknownCommandGives127) {
    EXPECT_EQ(run(spec({"no-such-command"})).exit_code, 127);
}

TEST_F(SandboxTest, FileCreatedAsRootIsOwnedByZeroOnDisk) {
    ASSERT_EQ(run(shell("echo data > /created")).exit_code, 0);
    struct stat st = stat_of(m_rootfs + "/created");
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, 0u);
}

TEST_F(SandboxTest, ChownInsideGivesTheImageIdsOnDisk) {
    ASSERT_EQ(run(shell("touch /owned && chown 1000:1000 /owned")).exit_code, 0);
    struct stat st = stat_of(m_rootfs + "/owned");
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1000u);
}

TEST_F(SandboxTest, CommandRunsAsTheGivenUserAndGroups) {
    RunSpec as_user = shell("id -u; id -G; touch /tmp/mine");
    as_user.uid = 1000;
    as_user.gid = 1000;
    as_user.supplementary_gids = {1001, 1002};
    RunOutput output = run(as_user);
    ASSERT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "1000\n1000 1001 1002\n");
    struct stat st = stat_of(m_rootfs + "/tmp/mine");
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1000u);
}

// kiln's own output (here a root-owned 0600 file) is not the step's to reopen: the step writes to a pipe of its
// own, which /dev/stdout and /dev/stderr reopen whoever the step runs as, as in Docker.
TEST_F(SandboxTest, TheStepReopensItsStdoutAndStderrAsRootAndAsAnotherUser) {
    for (uid_t uid : {0u, 1000u}) {
        RunSpec step = shell("echo to-err > /dev/stderr && echo to-out | tee /dev/stderr > /dev/null && "
                             "echo via-fd > /proc/self/fd/1");
        step.uid = uid;
        step.gid = uid;
        RunOutput output = run(step);
        EXPECT_EQ(output.exit_code, 0) << "uid " << uid << ": " << output.output;
        EXPECT_EQ(output.output, "to-err\nto-out\nvia-fd\n") << "uid " << uid;
    }
}

TEST_F(SandboxTest, EnvironmentIsExactlyTheGivenOne) {
    RunSpec env = spec({"env"});
    env.environment = {"PATH=/bin", "GREETING=hello world", "EMPTY="};
    EXPECT_EQ(run(env).output, "PATH=/bin\nGREETING=hello world\nEMPTY=\n");
}

TEST_F(SandboxTest, WorkingDirectoryIsTheGivenOne) {
    ASSERT_TRUE(make_directories(m_rootfs + "/work/dir"));
    RunSpec pwd = spec({"pwd"});
    pwd.working_directory = "/work/dir";
    EXPECT_EQ(run(pwd).output, "/work/dir\n");
}

TEST_F(SandboxTest, MissingWorkingDirectoryIsAnErrorNamingIt) {
    RunSpec pwd = spec({"pwd"});
    pwd.working_directory = "/no/such/dir";
    auto result = m_sandbox->run(pwd);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("/no/such/dir"), std::string::npos) << result.error().message();
}

TEST_F(SandboxTest, ProcIsAFreshProcOfItsOwnPidNamespace) {
    RunOutput output = run(shell("echo $$; head -1 /proc/self/status"));
    EXPECT_EQ(output.exit_code, 0);
    // PID 1 is the sandbox's init, so the command is PID 2.
    EXPECT_EQ(output.output, "2\nName:\thead\n");
}

TEST_F(SandboxTest, DevNullIsACharacterDeviceThatSwallowsWrites) {
    RunOutput output = run(shell("test -c /dev/null && echo discarded > /dev/null && cat /dev/null"));
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "");
}

// The mount options of `mount_point` in a /proc/PID/mountinfo listing, or "" when nothing is mounted there.
std::string mount_options(const std::string& mountinfo, const std::string& mount_point) {
    for (const std::string& line : split(mountinfo, '\n')) {
        std::vector<std::string> fields = split(line, ' ');
        if (fields.size() > 5 && fields[4] == mount_point) return fields[5];
    }
    return "";
}

TEST_F(SandboxTest, EtcHostsAndResolvConfAreTheHostsAndReadOnly) {
    std::string mounts = run(spec({"cat", "/proc/self/mountinfo"})).output;
    for (const char* file : {"/etc/hosts", "/etc/resolv.conf"}) {
        if (!path_exists(file)) GTEST_SKIP() << "the host has no " << file;
        auto host = read_file(file);
        ASSERT_TRUE(host);
        EXPECT_EQ(run(spec({"cat", file})).output, *host) << file;
        EXPECT_TRUE(mount_options(mounts, file).starts_with("ro,")) << file << " in\n" << mounts;
        EXPECT_NE(run(shell(str_cat("echo changed >> ", file))).exit_code, 0)
            << file << " is writable inside";
    }
}

TEST_F(SandboxTest, HostnameIsTheGivenOne) {
    RunSpec hostname = spec({"hostname"});
    hostname.hostname = "builder-7";
    EXPECT_EQ(run(hostname).output, "builder-7\n");
}

TEST_F(SandboxTest, NoTraceOfMountPointStubsIsLeftInTheRootfs) {
    ASSERT_FALSE(path_exists(m_rootfs + "/etc"));
    age_directories(m_rootfs);
    std::map<std::string, std::string> before = snapshot(m_rootfs);
    ASSERT_EQ(run(spec({"true"})).exit_code, 0);
    EXPECT_EQ(snapshot(m_rootfs), before);
}

TEST_F(SandboxTest, NoTraceIsLeftWhenOnlySomeMountPointsAreMissing) {
    ASSERT_TRUE(make_directories(m_rootfs + "/etc"));
    ASSERT_TRUE(make_directories(m_rootfs + "/proc"));
    ASSERT_TRUE(write_file_atomic(m_rootfs + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n"));
    age_directories(m_rootfs);
    std::map<std::string, std::string> before = snapshot(m_rootfs);
    ASSERT_EQ(run(shell("test -f /etc/hosts && test -d /sys")).exit_code, 0);
    EXPECT_EQ(snapshot(m_rootfs), before);
}

TEST_F(SandboxTest, WritesUnderDevLandInItsTmpfsNotInTheRootfs) {
    ASSERT_TRUE(make_directories(m_rootfs + "/dev"));
    age_directories(m_rootfs);
    std::map<std::string, std::string> before = snapshot(m_rootfs);
    ASSERT_EQ(run(shell("echo x > /dev/written && test -f /dev/written")).exit_code, 0);
    EXPECT_EQ(snapshot(m_rootfs), before);
}

TEST_F(SandboxTest, ChangesTheRunMakesNextToStubsAreKept) {
    ASSERT_EQ(run(shell("mkdir -p /etc/app && echo on > /etc/app/config")).exit_code, 0);
    EXPECT_EQ(read_file(m_rootfs + "/etc/app/config").value_or(""), "on\n");
    EXPECT_FALSE(path_exists(m_rootfs + "/etc/hosts")) << "the stub was left behind";
    EXPECT_FALSE(path_exists(m_rootfs + "/proc"));
}

class SandboxWithoutIdmapTest : public SandboxTest {
protected:
    SandboxOptions options() const override {
        SandboxOptions options;
        options.idmapped_mounts = IdmappedMounts::disabled;
        return options;
    }
};

TEST_F(SandboxWithoutIdmapTest, IdentityMapAlsoKeepsImageIdsOnDisk) {
    EXPECT_NE(m_sandbox->description().find("identity"), std::string::npos) << m_sandbox->description();
    ASSERT_EQ(run(shell("touch /owned && chown 1000:1000 /owned")).exit_code, 0);
    struct stat st = stat_of(m_rootfs + "/owned");
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1000u);
}

}  // namespace
}  // namespace kiln
