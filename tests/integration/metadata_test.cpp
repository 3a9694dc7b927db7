// Docker's semantics for the instructions that shape the config: ONBUILD triggers, HEALTHCHECK, STOPSIGNAL,
// VOLUME, SHELL, ENV ordering, ENTRYPOINT clearing an inherited CMD, relative WORKDIR, USER resolution.

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

class MetadataTest : public RegistryBuildTest {
protected:
    // Builds `dockerfile` on the busybox base and pushes it as `name`; returns kiln's output.
    KilnRun build(const std::string& dockerfile, const std::string& name) {
        std::string context = context_with(dockerfile);
        return run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                         "--insecure-pull", "--destination", reference(name)});
    }
    nlohmann::json config_of(const std::string& name) {
        auto inspected = inspect_remote(reference(name), /*config=*/true);
        EXPECT_TRUE(inspected) << (inspected ? "" : inspected.error().message());
        return inspected ? (*inspected)["config"] : nlohmann::json();
    }
    std::string unpack(const std::string& name) {
        std::string layout = m_dir.path() + "/layout-" + name.substr(0, name.find(':'));
        EXPECT_TRUE(pull_to_layout(reference(name), layout, "x"));
        std::string bundle = layout + "-bundle";
        EXPECT_TRUE(unpack_layout(layout, "x", bundle));
        return bundle + "/rootfs/";
    }
};

TEST_F(MetadataTest, OnbuildTriggersAreStoredThenRunByTheNextBuildOnly) {
    KilnRun parent = build("ARG BASE\nFROM $BASE\nONBUILD RUN echo triggered > /triggered\nONBUILD ENV FROM_TRIGGER=yes\n",
                           "onbuild-parent:1");
    ASSERT_EQ(parent.exit_code, 0) << parent.output;
    auto parent_config = config_of("onbuild-parent:1");
    EXPECT_EQ(parent_config["OnBuild"], nlohmann::json({"RUN echo triggered > /triggered", "ENV FROM_TRIGGER=yes"}));
    EXPECT_FALSE(lstat_path(unpack("onbuild-parent:1") + "triggered"));

    std::string context = m_dir.path() + "/child";
    ASSERT_TRUE(make_directories(context));
    ASSERT_TRUE(write_file_atomic(context + "/Dockerfile", "FROM " + reference("onbuild-parent:1") + "\nRUN cat /triggered\n"));
    KilnRun child = run_kiln({"build", "--context", context, "--insecure", "--insecure-pull", "--destination",
                              reference("onbuild-child:1")});
    ASSERT_EQ(child.exit_code, 0) << child.output;
    EXPECT_EQ(*read_file(unpack("onbuild-child:1") + "triggered"), "triggered\n");
    auto child_config = config_of("onbuild-child:1");
    EXPECT_FALSE(child_config.contains("OnBuild")) << "triggers run once, in the first build that uses the image";
    std::vector<std::string> env = child_config["Env"];
    EXPECT_NE(std::find(env.begin(), env.end(), "FROM_TRIGGER=yes"), env.end());
}

TEST_F(MetadataTest, HealthcheckStopsignalVolumeAndShellReachTheConfig) {
    KilnRun run = build(
        "ARG BASE\nFROM $BASE\n"
        "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=4 CMD wget -q localhost\n"
        "STOPSIGNAL SIGQUIT\nVOLUME /data [\"/json\"]\nVOLUME [\"/logs\", \"/cache\"]\nSHELL [\"/bin/sh\", \"-xc\"]\n"
        "CMD echo shell form\n",
        "meta:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto config = config_of("meta:1");
    const auto& health = config["Healthcheck"];
    EXPECT_EQ(health["Test"], nlohmann::json({"CMD-SHELL", "wget -q localhost"}));
    EXPECT_EQ(health["Interval"], 30000000000LL);
    EXPECT_EQ(health["Timeout"], 3000000000LL);
    EXPECT_EQ(health["StartPeriod"], 60000000000LL);
    EXPECT_EQ(health["StartInterval"], 2000000000LL);
    EXPECT_EQ(health["Retries"], 4);
    EXPECT_EQ(config["StopSignal"], "SIGQUIT");
    // In the plain form each word is a shell word, so the quotes of `["/json"]` are removed, as in BuildKit.
    for (const char* volume : {"/data", "[/json]", "/logs", "/cache"})
        EXPECT_TRUE(config["Volumes"].contains(volume)) << volume;
    EXPECT_EQ(config["Shell"], nlohmann::json({"/bin/sh", "-xc"}));
    EXPECT_EQ(config["Cmd"], nlohmann::json({"/bin/sh", "-xc", "echo shell form"}));
}

TEST_F(MetadataTest, HealthcheckNoneDisablesTheBaseCheck) {
    ASSERT_EQ(build("ARG BASE\nFROM $BASE\nHEALTHCHECK CMD [\"true\"]\n", "health-base:1").exit_code, 0);
    std::string context = m_dir.path() + "/none";
    ASSERT_TRUE(make_directories(context));
    ASSERT_TRUE(write_file_atomic(context + "/Dockerfile", "FROM " + reference("health-base:1") + "\nHEALTHCHECK NONE\n"));
    KilnRun run = run_kiln({"build", "--context", context, "--insecure", "--insecure-pull", "--destination",
                            reference("health-none:1")});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(config_of("health-base:1")["Healthcheck"]["Test"], nlohmann::json({"CMD", "true"}));
    EXPECT_EQ(config_of("health-none:1")["Healthcheck"]["Test"], nlohmann::json({"NONE"}));
}

TEST_F(MetadataTest, EnvUpdateKeepsItsPositionAndBothFormsWork) {
    KilnRun run = build("ARG BASE\nFROM $BASE\nENV FIRST=1 SECOND=2\nENV LEGACY legacy form value\nENV FIRST=updated\n",
                        "env:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::vector<std::string> env = config_of("env:1")["Env"];
    auto first = std::find(env.begin(), env.end(), "FIRST=updated");
    auto second = std::find(env.begin(), env.end(), "SECOND=2");
    ASSERT_NE(first, env.end());
    ASSERT_NE(second, env.end());
    EXPECT_LT(first, second) << "an updated variable keeps its place";
    EXPECT_NE(std::find(env.begin(), env.end(), "LEGACY=legacy form value"), env.end());
}

TEST_F(MetadataTest, EntrypointClearsAnInheritedCmdButNotOneFromTheSameStage) {
    ASSERT_EQ(build("ARG BASE\nFROM $BASE\nENTRYPOINT [\"/bin/echo\"]\n", "ep-only:1").exit_code, 0);
    EXPECT_FALSE(config_of("ep-only:1").contains("Cmd")) << "the base's CMD [\"sh\"] is meaningless now";
    ASSERT_EQ(build("ARG BASE\nFROM $BASE\nCMD [\"hello\"]\nENTRYPOINT [\"/bin/echo\"]\n", "ep-cmd:1").exit_code, 0);
    EXPECT_EQ(config_of("ep-cmd:1")["Cmd"], nlohmann::json({"hello"}));
}

TEST_F(MetadataTest, RelativeWorkdirBuildsOnThePreviousOneAndIsCreatedForTheUser) {
    KilnRun run = build(
        "ARG BASE\nFROM $BASE\nRUN echo 'app:x:1500:1600::/home/app:/bin/sh' >> /etc/passwd\n"
        "WORKDIR /srv\nUSER app\nWORKDIR app/data\nRUN pwd > marker\n",
        "workdir:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(config_of("workdir:1")["WorkingDir"], "/srv/app/data");
    std::string rootfs = unpack("workdir:1");
    EXPECT_EQ(*read_file(rootfs + "srv/app/data/marker"), "/srv/app/data\n");
    auto created = lstat_path(rootfs + "srv/app/data");
    ASSERT_TRUE(created);
    EXPECT_EQ(created->st_uid, 1500u) << "BuildKit creates WORKDIR as the current USER";
    EXPECT_EQ(created->st_gid, 1600u);
}

TEST_F(MetadataTest, RunGetsTheUsersHomeUnlessEnvSetsOne) {
    KilnRun run = build(
        "ARG BASE\nFROM $BASE\nRUN echo \"$HOME\" > /root-home\n"
        "RUN echo 'app:x:1500:1500::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /out && chmod 777 /out\n"
        "USER app\nRUN echo \"$HOME\" > /out/app-home\n"
        "USER 4242\nRUN echo \"$HOME\" > /out/unknown-home\n"
        "ENV HOME=/custom\nRUN echo \"$HOME\" > /out/env-home\n",
        "home:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::string rootfs = unpack("home:1");
    EXPECT_EQ(*read_file(rootfs + "root-home"), "/root\n");
    EXPECT_EQ(*read_file(rootfs + "out/app-home"), "/home/app\n");
    EXPECT_EQ(*read_file(rootfs + "out/unknown-home"), "/\n");
    EXPECT_EQ(*read_file(rootfs + "out/env-home"), "/custom\n");
    EXPECT_FALSE(config_of("home:1")["Env"].dump().find("HOME=/root") != std::string::npos)
        << "HOME is the step's, not the image's";
}

TEST_F(MetadataTest, ARunAfterVolumeMakesItsDirectoryAndWhatItWritesBelowIsDiscarded) {
    KilnRun run = build(
        "ARG BASE\nFROM $BASE\nVOLUME /vol/data\n"
        "RUN echo inside > /vol/data/file && echo outside > /kept\n",
        "volume:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::string rootfs = unpack("volume:1");
    auto volume = lstat_path(rootfs + "vol/data");
    ASSERT_TRUE(volume) << "the RUN after VOLUME makes its directory";
    EXPECT_TRUE(S_ISDIR(volume->st_mode));
    EXPECT_FALSE(lstat_path(rootfs + "vol/data/file")) << "a RUN's write under a volume is not kept";
    EXPECT_EQ(*read_file(rootfs + "kept"), "outside\n");
}

TEST_F(MetadataTest, ArgNamesAreExpandedLikeTheirDefaults) {
    std::string context = context_with("ARG BASE\nFROM $BASE\nENV src file3\nARG ${src}=a\nRUN echo $file3 > /value\n");
    KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--build-arg", "file3=b",
                            "--insecure", "--insecure-pull", "--destination", reference("argname:1")});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output.find("file3 was given but not declared"), std::string::npos) << run.output;
    EXPECT_EQ(*read_file(unpack("argname:1") + "value"), "b\n");
}

TEST_F(MetadataTest, UserNamedButMissingFromPasswdFailsAtTheRunThatNeedsIt) {
    KilnRun run = build("ARG BASE\nFROM $BASE\nUSER ghost\nRUN true\n", "ghost:1");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_NE(run.output.find("Dockerfile:4"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("unable to find user ghost"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace kiln::test
