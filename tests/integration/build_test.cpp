// A two-stage build pushed to a real registry, pulled back with skopeo, unpacked with umoci, and checked file
// by file and field by field.

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

class TwoStageBuildTest : public RegistryBuildTest {
protected:
    static void SetUpTestSuite() {
        RegistryBuildTest::SetUpTestSuite();
        if (s_skip_reason || !s_base) return;
        s_case = new TempDir(std::move(*TempDir::create(s_work->path(), "two-stage-")));
        const std::string dir = s_case->path();
        std::string first = s_registry->host_port() + "/app:1";
        std::string second = s_registry->host_port() + "/app:also";
        s_run = new KilnRun(run_kiln({"build", "--context", source_path("tests/integration/data/two-stage"),
                                      "--build-arg", "BASE=" + *s_base, "--build-arg", "GREETING=bonjour",
                                      "--destination", first, "--destination", second,
                                      "--insecure", "--insecure-pull",
                                      "--digest-file", dir + "/digest",
                                      "--image-name-with-digest-file", dir + "/names",
                                      "--tar-path", dir + "/image.tar"}));
        if (s_run->exit_code != 0) return;
        auto pulled = pull_to_layout(first, dir + "/layout", "pulled");
        ASSERT_TRUE(pulled) << pulled.error().message();
        auto unpacked = unpack_layout(dir + "/layout", "pulled", dir + "/bundle");
        ASSERT_TRUE(unpacked) << unpacked.error().message();
    }
    static void TearDownTestSuite() {
        delete s_run;
        delete s_case;
        s_run = nullptr;
        s_case = nullptr;
        RegistryBuildTest::TearDownTestSuite();
    }
    void SetUp() override {
        RegistryBuildTest::SetUp();
        if (IsSkipped()) return;
        ASSERT_NE(s_run, nullptr);
        ASSERT_EQ(s_run->exit_code, 0) << s_run->output;
    }
    std::string rootfs(const std::string& path) const { return s_case->path() + "/bundle/rootfs/" + path; }
    std::string first() const { return reference("app:1"); }

    static inline TempDir* s_case = nullptr;
    static inline KilnRun* s_run = nullptr;
};

TEST_F(TwoStageBuildTest, FilesFromBothStagesHaveTheirContentModeAndOwner) {
    EXPECT_EQ(*read_file(rootfs("srv/app/greeting")), "bonjour from the builder\nfrom the context\n");
    auto tool = lstat_path(rootfs("srv/app/bin/tool"));
    ASSERT_TRUE(tool);
    EXPECT_EQ(tool->st_mode & 07777, 0755u);
    auto secret = lstat_path(rootfs("srv/app/private"));
    ASSERT_TRUE(secret);
    EXPECT_EQ(secret->st_mode & 07777, 0600u);
    EXPECT_EQ(secret->st_uid, 0u);  // COPY --from keeps the source stage's owner
}

TEST_F(TwoStageBuildTest, SymlinksStaySymlinks) {
    auto link = lstat_path(rootfs("srv/app/greeting-link"));
    ASSERT_TRUE(link);
    ASSERT_TRUE(S_ISLNK(link->st_mode));
    char target[64] = {};
    ASSERT_GT(::readlink(rootfs("srv/app/greeting-link").c_str(), target, sizeof target - 1), 0);
    EXPECT_STREQ(target, "greeting");
}

TEST_F(TwoStageBuildTest, OwnershipSetInsideTheSandboxIsTheImagesOwn) {
    for (const char* path : {"srv/app/data", "srv/app/data/copied.txt", "srv/app/data/made-by-svc", "srv/app/data/whoami"}) {
        auto st = lstat_path(rootfs(path));
        ASSERT_TRUE(st) << path;
        EXPECT_EQ(st->st_uid, 1234u) << path;
        EXPECT_EQ(st->st_gid, 2345u) << path;
    }
    EXPECT_EQ(*read_file(rootfs("srv/app/data/whoami")), "1234\n");
}

TEST_F(TwoStageBuildTest, AFileTheRunDeletedIsReallyAbsent) {
    EXPECT_FALSE(lstat_path(rootfs("usr/bin/wget")));
    EXPECT_TRUE(lstat_path(rootfs("usr/bin/awk")));  // its neighbours stay
    EXPECT_EQ(*read_file(rootfs("tmp/marker")), "removed\n");
}

TEST_F(TwoStageBuildTest, SandboxMountPointsNeverReachALayer) {
    // The base has /etc but neither hosts nor resolv.conf: the sandbox's read-only bind targets were stubs.
    EXPECT_FALSE(lstat_path(rootfs("etc/hosts")));
    EXPECT_FALSE(lstat_path(rootfs("etc/resolv.conf")));
    EXPECT_FALSE(lstat_path(rootfs("proc/self")));
}

TEST_F(TwoStageBuildTest, ConfigCarriesEveryMetadataInstruction) {
    auto inspected = inspect_remote(first(), /*config=*/true);
    ASSERT_TRUE(inspected) << inspected.error().message();
    const auto& config = (*inspected)["config"];
    EXPECT_EQ(config["User"], "svc");
    EXPECT_EQ(config["WorkingDir"], "/srv/app");
    EXPECT_EQ(config["Entrypoint"], nlohmann::json({"/bin/sh", "-c"}));
    EXPECT_EQ(config["Cmd"], nlohmann::json({"cat greeting"}));
    EXPECT_EQ(config["Labels"]["org.example.component"], "two-stage");
    EXPECT_EQ(config["Labels"]["org.example.version"], "1");
    EXPECT_TRUE(config["ExposedPorts"].contains("8080/tcp"));
    EXPECT_TRUE(config["ExposedPorts"].contains("9090/udp"));
    std::vector<std::string> env = config["Env"];
    EXPECT_NE(std::find(env.begin(), env.end(), "APP_HOME=/srv/app"), env.end());
    EXPECT_NE(std::find(env.begin(), env.end(), "APP_MODE=test"), env.end());
    EXPECT_TRUE(std::any_of(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("PATH="); }));
    // GREETING was an ARG of the other stage: it must not leak into this image.
    EXPECT_FALSE(std::any_of(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("GREETING"); }));
}

TEST_F(TwoStageBuildTest, EachRunAndCopyYieldsOneLayer) {
    auto inspected = inspect_remote(first());
    ASSERT_TRUE(inspected) << inspected.error().message();
    // The base's single layer, then RUN, COPY --from, COPY --chown and RUN of the final stage.
    EXPECT_EQ((*inspected)["Layers"].size(), 5u);
}

TEST_F(TwoStageBuildTest, DigestFileHoldsThePushedDigestWithoutNewline) {
    auto inspected = inspect_remote(first());
    ASSERT_TRUE(inspected) << inspected.error().message();
    std::string digest = *read_file(s_case->path() + "/digest");
    EXPECT_EQ(digest, (*inspected)["Digest"].get<std::string>());
    EXPECT_TRUE(digest.starts_with("sha256:") && digest.size() == 71) << digest;
}

TEST_F(TwoStageBuildTest, EveryDestinationGetsTheImageAndANameWithDigestLine) {
    std::string digest = *read_file(s_case->path() + "/digest");
    auto second = inspect_remote(reference("app:also"));
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_EQ((*second)["Digest"], digest);
    EXPECT_EQ(*read_file(s_case->path() + "/names"),
              reference("app@") + digest + "\n" + reference("app@") + digest + "\n");
}

TEST_F(TwoStageBuildTest, TarballHoldsTheSameImage) {
    ProcessOptions options;
    auto inspected = run_process({"skopeo", "inspect", "docker-archive:" + s_case->path() + "/image.tar"}, options);
    ASSERT_TRUE(inspected);
    ASSERT_EQ(inspected->exit_code, 0) << inspected->stderr_bytes;
    auto remote = inspect_remote(first());
    ASSERT_TRUE(remote);
    auto local = nlohmann::json::parse(inspected->stdout_bytes);
    EXPECT_EQ(local["Layers"].size(), (*remote)["Layers"].size());
}

}  // namespace
}  // namespace kiln::test

namespace kiln::test {
namespace {

using ContextArchiveTest = RegistryBuildTest;

// The kiln binary builds from a tar context, as Kaniko's --context=tar://… does, and a Dockerfile on stdin.
TEST_F(ContextArchiveTest, ATarContextBuildsWithTheDockerfileInsideIt) {
    std::string context = context_with("FROM scratch\nCOPY app.txt /app.txt\n");
    ASSERT_TRUE(write_file_atomic(context + "/app.txt", "from the archive\n"));
    std::string archive = m_dir.path() + "/context.tar.gz";
    auto tar = run_process({"tar", "-C", context, "-czf", archive, "."});
    ASSERT_TRUE(tar && tar->exit_code == 0) << (tar ? tar->stderr_bytes : tar.error().message());
    KilnRun run = run_kiln({"build", "--context", "tar://" + archive, "--no-push", "--oci-layout-path",
                            m_dir.path() + "/layout"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("context: tar://" + archive), std::string::npos) << run.output;
    ASSERT_TRUE(unpack_layout(m_dir.path() + "/layout", "latest", m_dir.path() + "/bundle"));
    EXPECT_EQ(read_file(m_dir.path() + "/bundle/rootfs/app.txt").value_or(""), "from the archive\n");
}

TEST_F(ContextArchiveTest, ADockerfileOnStdinBuilds) {
    std::string context = context_with("FROM scratch\nCOPY app.txt /wrong.txt\n");
    ASSERT_TRUE(write_file_atomic(context + "/app.txt", "app\n"));
    // sh feeds the Dockerfile to kiln's stdin; the one in the context is not used.
    KilnRun run = run_kiln({"build", "--context", context, "--dockerfile", "-", "--no-push", "--oci-layout-path",
                            m_dir.path() + "/layout"},
                           {"sh", "-c", "printf 'FROM scratch\\nCOPY app.txt /from-stdin.txt\\n' | \"$0\" \"$@\""});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    ASSERT_TRUE(unpack_layout(m_dir.path() + "/layout", "latest", m_dir.path() + "/bundle"));
    EXPECT_TRUE(path_exists(m_dir.path() + "/bundle/rootfs/from-stdin.txt"));
    EXPECT_FALSE(path_exists(m_dir.path() + "/bundle/rootfs/wrong.txt"));
}

}  // namespace
}  // namespace kiln::test
