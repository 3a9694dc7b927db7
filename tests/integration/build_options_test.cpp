// Build flags that change the image: --single-snapshot, --target, --label, build args.

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

using BuildOptionsTest = RegistryBuildTest;

TEST_F(BuildOptionsTest, SingleSnapshotMakesOneLayerPerStageWithEveryChange) {
    std::string context = context_with(
        "ARG BASE\nFROM $BASE\nRUN echo one > /one\nCOPY Dockerfile /copied\nRUN rm /usr/bin/wget && echo two > /two\n");
    KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                            "--insecure-pull", "--single-snapshot", "--destination", reference("single:1")});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto base_image = inspect_remote(base());
    auto image = inspect_remote(reference("single:1"));
    ASSERT_TRUE(base_image && image);
    EXPECT_EQ((*image)["Layers"].size(), (*base_image)["Layers"].size() + 1);

    std::string layout = m_dir.path() + "/layout";
    ASSERT_TRUE(pull_to_layout(reference("single:1"), layout, "x"));
    ASSERT_TRUE(unpack_layout(layout, "x", m_dir.path() + "/bundle"));
    std::string rootfs = m_dir.path() + "/bundle/rootfs/";
    EXPECT_EQ(*read_file(rootfs + "one"), "one\n");
    EXPECT_EQ(*read_file(rootfs + "two"), "two\n");
    EXPECT_TRUE(lstat_path(rootfs + "copied"));
    EXPECT_FALSE(lstat_path(rootfs + "usr/bin/wget"));
}

TEST_F(BuildOptionsTest, TargetBuildsOnlyTheNamedStageAndWhatItNeeds) {
    std::string context = context_with(
        "ARG BASE\nFROM $BASE AS first\nRUN echo first > /stage\n"
        "FROM first AS second\nRUN echo second >> /stage\n"
        "FROM $BASE AS broken\nRUN exit 9\n");
    KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                            "--insecure-pull", "--target", "second", "--destination", reference("target:1")});
    ASSERT_EQ(run.exit_code, 0) << run.output;  // the broken stage is never built
    std::string layout = m_dir.path() + "/layout";
    ASSERT_TRUE(pull_to_layout(reference("target:1"), layout, "x"));
    ASSERT_TRUE(unpack_layout(layout, "x", m_dir.path() + "/bundle"));
    EXPECT_EQ(*read_file(m_dir.path() + "/bundle/rootfs/stage"), "first\nsecond\n");
}

TEST_F(BuildOptionsTest, LabelFlagsAndPlatformArgsReachTheConfig) {
    std::string context = context_with(
        "ARG BASE\nFROM $BASE\nARG TARGETARCH\nARG UNUSED_DEFAULT=x\nLABEL arch=$TARGETARCH\n");
    KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--build-arg",
                            "NEVER_DECLARED=1", "--build-arg", "HTTP_PROXY=http://127.0.0.1:9", "--insecure",
                            "--insecure-pull", "--label", "team=builders", "--destination", reference("labels:1")});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("NEVER_DECLARED"), std::string::npos) << "an unused build arg is reported";
    EXPECT_EQ(run.output.find("HTTP_PROXY was given but not declared"), std::string::npos) << run.output;
    auto config = inspect_remote(reference("labels:1"), /*config=*/true);
    ASSERT_TRUE(config) << config.error().message();
    EXPECT_EQ((*config)["config"]["Labels"]["team"], "builders");
    EXPECT_EQ((*config)["config"]["Labels"]["arch"], (*config)["architecture"]);
}

}  // namespace
}  // namespace kiln::test
