// A RUN step's own mounts (RunSpec::mounts): what the command sees at each target, what it may write there,
// and that neither a stub nor a mount is left behind, whatever an image's symlinks say.

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "common/strings.hpp"
#include "tests/builder/sandbox/sandbox_fixture.hpp"

namespace kiln {
namespace {

// Mounts this process sees: a mount left behind by a step shows up here.
// The mounts of this process's namespace at or below `root`: tests running beside this one mount elsewhere.
size_t mount_count(const std::string& root) {
    size_t count = 0;
    for (const std::string& line : split(read_file("/proc/self/mountinfo").value_or(""), '\n')) {
        std::vector<std::string> fields = split(line, ' ');  // the fifth is the mount point
        if (fields.size() > 4 && (fields[4] == root || fields[4].starts_with(root + "/"))) ++count;
    }
    return count;
}

// Every path below `root` with the metadata a snapshot compares (directories' mtimes included).
void list_tree(const std::string& root, const std::string& relative,
               std::map<std::string, std::string>& out) {
    struct stat st {};
    std::string path = root + relative;
    ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path;
    out[relative.empty() ? "/" : relative] =
        str_cat(std::oct, st.st_mode, std::dec, " ", st.st_uid, ":", st.st_gid, " ino=", st.st_ino,
                " mtime=", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, " size=", st.st_size);
    if (!S_ISDIR(st.st_mode)) return;
    DIR* dir = ::opendir(path.c_str());
    ASSERT_NE(dir, nullptr) << path;
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir))
        if (std::string(entry->d_name) != "." && std::string(entry->d_name) != "..")
            names.push_back(entry->d_name);
    ::closedir(dir);
    for (const std::string& name : names) list_tree(root, relative + "/" + name, out);
}

std::map<std::string, std::string> snapshot(const std::string& root) {
    std::map<std::string, std::string> listing;
    list_tree(root, "", listing);
    return listing;
}

class RunMountsTest : public SandboxTest {
protected:
    void SetUp() override {
        SandboxTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        m_source = m_work.path() + "/source";
        ASSERT_TRUE(make_directories(m_source + "/dir"));
        ASSERT_TRUE(write_file_atomic(m_source + "/dir/file", "from the source\n"));
        m_mounts_before = mount_count(m_work.path());
    }

    RunMount bind(const std::string& target, const std::string& source, MountAccess access) const {
        return RunMount{.kind = RunMountKind::bind,
                        .target = target,
                        .source_root = m_source,
                        .source = source,
                        .access = access};
    }

    // Runs `script` with `mounts` and checks that the rootfs is exactly as it was before.
    RunOutput run_leaving_no_trace(const std::string& script, std::vector<RunMount> mounts) {
        std::map<std::string, std::string> before = snapshot(m_rootfs);
        RunSpec step = shell(script);
        step.mounts = std::move(mounts);
        RunOutput output = run(step);
        EXPECT_EQ(snapshot(m_rootfs), before) << "the RUN's mounts left a trace in the rootfs";
        EXPECT_EQ(mount_count(m_work.path()), m_mounts_before) << "a mount was left behind";
        return output;
    }

    std::string m_source;
    size_t m_mounts_before = 0;  // below the test's directory, when it starts
};

TEST_F(RunMountsTest, ReadOnlyBindShowsTheSourceAndRefusesWrites) {
    RunOutput output = run_leaving_no_trace("cat /src/file && ! touch /src/new 2>/dev/null",
                                            {bind("/src", "dir", MountAccess::read_only)});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "from the source\n");
    EXPECT_FALSE(path_exists(m_source + "/dir/new"));
}

TEST_F(RunMountsTest, ReadOnlyBindCannotBeRemountedWritable) {
    for (const char* applet : {"/bin/mount", "/bin/umount"})
        ASSERT_EQ(::symlink("busybox", (m_rootfs + applet).c_str()), 0);
    RunOutput output = run_leaving_no_trace(
        "mount -o remount,rw,bind /src 2>/dev/null; umount /src 2>/dev/null; echo x > /src/new",
        {bind("/src", "dir", MountAccess::read_only)});
    EXPECT_NE(output.exit_code, 0) << output.output;
    EXPECT_FALSE(path_exists(m_source + "/dir/new")) << "the step wrote into a read-only source";
}

TEST_F(RunMountsTest, ReadWriteBindWritesReachTheSource) {
    RunOutput output =
        run_leaving_no_trace("echo written > /src/new", {bind("/src", "dir", MountAccess::read_write)});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(read_file(m_source + "/dir/new").value_or(""), "written\n");
}

TEST_F(RunMountsTest, FilesWrittenInABindKeepTheirContainerIdsOnDisk) {
    RunOutput output = run_leaving_no_trace("touch /src/owned && chown 1234:2345 /src/owned",
                                            {bind("/src", "dir", MountAccess::read_write)});
    ASSERT_EQ(output.exit_code, 0) << output.output;
    struct stat st {};
    ASSERT_EQ(::lstat((m_source + "/dir/owned").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 2345u);
}

TEST_F(RunMountsTest, SourceOwnersAppearAsTheyAreOnDisk) {
    ASSERT_EQ(::chown((m_source + "/dir/file").c_str(), 1000, 1001), 0);
    RunOutput output =
        run_leaving_no_trace("stat -c '%u %g' /src/file", {bind("/src", "dir", MountAccess::read_only)});
    EXPECT_EQ(output.output, "1000 1001\n");
}

TEST_F(RunMountsTest, FileBindLandsAtATargetWhoseParentsAreMissing) {
    RunOutput output = run_leaving_no_trace("cat /deep/er/copy.txt && test -f /deep/er/copy.txt",
                                            {bind("/deep/er/copy.txt", "dir/file", MountAccess::read_only)});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "from the source\n");
}

TEST_F(RunMountsTest, TmpfsIsEmptyWritableAndGoneAfterwards) {
    RunOutput output =
        run_leaving_no_trace("ls -A /scratch && echo kept > /scratch/file && cat /scratch/file",
                             {RunMount{.kind = RunMountKind::tmpfs, .target = "/scratch"}});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "kept\n");
}

TEST_F(RunMountsTest, TmpfsSizeIsHonoured) {
    RunOutput output = run_leaving_no_trace(
        "head -c 1048576 /dev/zero > /small/a 2>/dev/null && echo fitted; rm /small/a; "
        "head -c 65536 /dev/zero > /small/b && echo fits",
        {RunMount{.kind = RunMountKind::tmpfs, .target = "/small", .tmpfs_size = 256 * 1024}});
    EXPECT_EQ(output.output.find("fitted"), std::string::npos) << output.output;
    EXPECT_NE(output.output.find("fits"), std::string::npos) << output.output;
}

TEST_F(RunMountsTest, FileMountHasItsModeAndOwnerAndIsReadOnly) {
    RunMount secret{.kind = RunMountKind::file,
                    .target = "/run/secrets/token",
                    .content = "hunter2",
                    .mode = 0440,
                    .uid = 1000,
                    .gid = 1001};
    RunOutput output = run_leaving_no_trace(
        "stat -c '%a %u %g' /run/secrets/token; cat /run/secrets/token; echo; "
        "(echo x >> /run/secrets/token) 2>/dev/null && echo writable; ls -A /dev | grep -c kiln-run-mount",
        {secret});
    // The last line counts scratch copies left in /dev.
    EXPECT_EQ(output.output, "440 1000 1001\nhunter2\n0\n");
}

TEST_F(RunMountsTest, ExecutableFileMountRuns) {
    RunMount script{.kind = RunMountKind::file,
                    .target = "/dev/pipes/EOF",
                    .content = "#!/bin/sh\necho ran $0\n",
                    .mode = 0755};
    RunOutput output = run_leaving_no_trace("/dev/pipes/EOF", {script});
    EXPECT_EQ(output.output, "ran /dev/pipes/EOF\n");
}

TEST_F(RunMountsTest, MountInsideAnotherMountLandsInIt) {
    RunOutput output = run_leaving_no_trace("cat /outer/inner/file && ls -A /outer",
                                            {bind("/outer/inner", "dir", MountAccess::read_only),
                                             RunMount{.kind = RunMountKind::tmpfs, .target = "/outer"}});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "from the source\ninner\n");
}

TEST_F(RunMountsTest, TargetThroughAnImageSymlinkStaysInsideTheRootfs) {
    // The symlink names a host directory; inside the rootfs the same path exists too, and is where it leads.
    std::string outside = m_work.path() + "/outside";
    ASSERT_TRUE(make_directories(outside));
    ASSERT_TRUE(make_directories(m_rootfs + outside));
    ASSERT_EQ(::symlink(outside.c_str(), (m_rootfs + "/escape").c_str()), 0);
    RunOutput output = run_leaving_no_trace("echo inside > /escape/sub/file && cat " + outside + "/sub/file",
                                            {RunMount{.kind = RunMountKind::tmpfs, .target = "/escape/sub"}});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(output.output, "inside\n");
    EXPECT_FALSE(path_exists(outside + "/sub")) << "a mount point was created outside the rootfs";
}

TEST_F(RunMountsTest, TargetThroughASymlinkDanglingInsideTheRootfsIsRefused) {
    std::string outside = m_work.path() + "/outside";
    ASSERT_TRUE(make_directories(outside));
    ASSERT_EQ(::symlink(outside.c_str(), (m_rootfs + "/escape").c_str()), 0);
    RunSpec step = shell("true");
    step.mounts = {RunMount{.kind = RunMountKind::tmpfs, .target = "/escape/sub"}};
    EXPECT_FALSE(m_sandbox->run(step));
    EXPECT_FALSE(path_exists(outside + "/sub")) << "a mount point was created outside the rootfs";
}

TEST_F(RunMountsTest, SourceSymlinkCannotLeaveItsRoot) {
    ASSERT_TRUE(path_exists("/etc/passwd"));
    ASSERT_TRUE(make_directories(m_source + "/etc"));
    ASSERT_EQ(::symlink("/etc", (m_source + "/host-etc").c_str()), 0);
    RunOutput output =
        run_leaving_no_trace("test -e /src/passwd", {bind("/src", "host-etc", MountAccess::read_only)});
    EXPECT_NE(output.exit_code, 0) << "the source's symlink reached the host's /etc";
}

TEST_F(RunMountsTest, TargetsAreCheckedBeforeAnythingRuns) {
    for (const char* target : {"/", "relative/path"}) {
        RunSpec step = shell("true");
        step.mounts = {RunMount{.kind = RunMountKind::tmpfs, .target = target}};
        EXPECT_FALSE(m_sandbox->run(step)) << target;
    }
    RunSpec twice = shell("true");
    twice.mounts = {RunMount{.kind = RunMountKind::tmpfs, .target = "/a"},
                    RunMount{.kind = RunMountKind::tmpfs, .target = "/a/"}};
    auto result = m_sandbox->run(twice);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("/a"), std::string::npos) << result.error().message();
}

TEST_F(RunMountsTest, MissingBindSourceIsAnErrorNamingIt) {
    RunSpec step = shell("true");
    step.mounts = {bind("/src", "no/such/dir", MountAccess::read_only)};
    auto result = m_sandbox->run(step);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("no/such/dir"), std::string::npos) << result.error().message();
    EXPECT_FALSE(path_exists(m_rootfs + "/src")) << "a stub was left behind";
}

class RunMountsWithoutIdmapTest : public RunMountsTest {
protected:
    SandboxOptions options() const override {
        return SandboxOptions{.idmapped_mounts = IdmappedMounts::disabled};
    }
};

TEST_F(RunMountsWithoutIdmapTest, IdentityMapAlsoMountsReadOnlyAndKeepsIds) {
    RunOutput output = run_leaving_no_trace("cat /src/file && ! touch /src/new 2>/dev/null",
                                            {bind("/src", "dir", MountAccess::read_only)});
    EXPECT_EQ(output.exit_code, 0) << output.output;
    output = run_leaving_no_trace("touch /src/owned && chown 1234:2345 /src/owned",
                                  {bind("/src", "dir", MountAccess::read_write)});
    ASSERT_EQ(output.exit_code, 0) << output.output;
    struct stat st {};
    ASSERT_EQ(::lstat((m_source + "/dir/owned").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1234u);
}

}  // namespace
}  // namespace kiln
