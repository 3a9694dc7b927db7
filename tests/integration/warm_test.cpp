// `kiln warm` with the kiln binary and a registry of the test's own, which it stops: what is warmed, what is
// skipped, and builds that take their base from the warmed cache, with the registry up and with it down.

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/integration/harness.hpp"
#include "tests/support/registry_process.hpp"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

class WarmTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto missing = missing_tools()) GTEST_SKIP() << *missing;
        auto dir = TempDir::create(default_temp_parent(), "kiln-warm-test-");
        ASSERT_TRUE(dir);
        m_dir = std::move(*dir);
        auto registry = RegistryProcess::start();
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
        auto base = push_busybox_base(*m_registry, m_dir.path());
        ASSERT_TRUE(base) << base.error().message();
        m_base = *base;
        m_cache = m_dir.path() + "/cache";
    }

    KilnRun warm(std::vector<std::string> more) {
        std::vector<std::string> args = {"warm", "--cache-dir", m_cache, "--insecure"};
        args.insert(args.end(), more.begin(), more.end());
        return run_kiln(args);
    }
    // A build that reads its base's files (the RUN), in a fresh work directory, writing a tarball.
    KilnRun build(const std::string& name, std::vector<std::string> more = {}) {
        std::string context = m_dir.path() + "/context";
        EXPECT_TRUE(make_directories(context));
        EXPECT_TRUE(write_file_atomic(context + "/Dockerfile", "ARG BASE\nFROM $BASE\nRUN echo built > /built\n"));
        std::vector<std::string> args = {"build", "--context", context, "--build-arg", "BASE=" + m_base,
                                         "--insecure-pull", "--no-push", "--cache-dir", m_cache, "--work-dir",
                                         m_dir.path() + "/work-" + name, "--tar-path", m_dir.path() + "/" + name + ".tar"};
        args.insert(args.end(), more.begin(), more.end());
        return run_kiln(args);
    }
    std::vector<std::string> warmed_blobs() const {
        std::vector<std::string> blobs;
        std::string dir = m_cache + "/images/blobs/sha256";
        if (!fs::exists(dir)) return blobs;
        for (const auto& entry : fs::directory_iterator(dir)) blobs.push_back(entry.path().string());
        return blobs;
    }

    TempDir m_dir;
    std::unique_ptr<RegistryProcess> m_registry;
    std::string m_base;
    std::string m_cache;
};

TEST_F(WarmTest, AWarmedBaseIsTakenFromTheCacheAndServesWhenTheRegistryIsDown) {
    KilnRun warmed = warm({"--image", m_base});
    ASSERT_EQ(warmed.exit_code, 0) << warmed.output;
    EXPECT_NE(warmed.output.find("warmed " + m_base + "@sha256:"), std::string::npos) << warmed.output;

    KilnRun online = build("online");
    ASSERT_EQ(online.exit_code, 0) << online.output;
    EXPECT_NE(online.output.find("from the warmed cache"), std::string::npos) << online.output;
    EXPECT_EQ(online.output.find("pulled"), std::string::npos) << "a warmed base was downloaded\n" << online.output;

    m_registry->stop();
    KilnRun offline = build("offline", {"--image-download-retry", "0"});
    ASSERT_EQ(offline.exit_code, 0) << offline.output;
    EXPECT_NE(offline.output.find("using the image warmed at "), std::string::npos) << offline.output;
    EXPECT_NE(offline.output.find(m_base), std::string::npos) << offline.output;
    EXPECT_TRUE(path_exists(m_dir.path() + "/offline.tar"));
}

TEST_F(WarmTest, WithoutAWarmedBaseABuildNeedsTheRegistry) {
    m_registry->stop();
    KilnRun offline = build("offline", {"--image-download-retry", "0"});
    EXPECT_NE(offline.exit_code, 0) << offline.output;
    EXPECT_NE(offline.output.find(m_base), std::string::npos) << offline.output;
}

TEST_F(WarmTest, WhatIsWarmIsSkippedAndForceFetchesABrokenBlobAgain) {
    ASSERT_EQ(warm({"--image", m_base}).exit_code, 0);
    KilnRun again = warm({"--image", m_base});
    ASSERT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find("up to date"), std::string::npos) << again.output;
    EXPECT_EQ(again.output.find("pulled"), std::string::npos) << again.output;

    // The largest blob is the busybox layer: break it.
    std::vector<std::string> blobs = warmed_blobs();
    ASSERT_FALSE(blobs.empty());
    std::string layer = *std::max_element(blobs.begin(), blobs.end(), [](const std::string& a, const std::string& b) {
        return fs::file_size(a) < fs::file_size(b);
    });
    auto bytes = read_file(layer);
    ASSERT_TRUE(bytes);
    std::string broken = *bytes;
    broken[broken.size() / 2] ^= 0x55;
    ASSERT_TRUE(write_file_atomic(layer, broken));

    // A build does not trust it: it downloads the layer instead, with a warning.
    KilnRun built = build("distrust");
    ASSERT_EQ(built.exit_code, 0) << built.output;
    EXPECT_NE(built.output.find("is not used"), std::string::npos) << built.output;
    EXPECT_NE(built.output.find("pulled"), std::string::npos) << built.output;

    KilnRun forced = warm({"--image", m_base, "--force"});
    ASSERT_EQ(forced.exit_code, 0) << forced.output;
    EXPECT_NE(forced.output.find("fetching it again"), std::string::npos) << forced.output;
    EXPECT_EQ(read_file(layer).value_or(""), *bytes);
}

TEST_F(WarmTest, AWarmedBlobReplacedByALinkToADeviceIsNotReadAndTheBuildDownloadsIt) {
    ASSERT_EQ(warm({"--image", m_base}).exit_code, 0);
    std::vector<std::string> blobs = warmed_blobs();
    ASSERT_FALSE(blobs.empty());
    std::string layer = *std::max_element(blobs.begin(), blobs.end(), [](const std::string& a, const std::string& b) {
        return fs::file_size(a) < fs::file_size(b);
    });
    ASSERT_EQ(::unlink(layer.c_str()), 0);
    ASSERT_EQ(::symlink("/dev/zero", layer.c_str()), 0);
    KilnRun built = build("hostile");
    ASSERT_EQ(built.exit_code, 0) << built.output;
    EXPECT_NE(built.output.find("is not used"), std::string::npos) << built.output;
    EXPECT_NE(built.output.find("pulled"), std::string::npos) << built.output;
}

TEST_F(WarmTest, ADockerfileWarmsEveryImageItsFromLinesNameAndNoStage) {
    std::string dockerfile = m_dir.path() + "/Dockerfile.warm";
    ASSERT_TRUE(write_file_atomic(dockerfile, "ARG BASE\nFROM $BASE AS tools\nFROM tools\nFROM scratch\n"));
    KilnRun warmed = warm({"--dockerfile", dockerfile, "--build-arg", "BASE=" + m_base});
    ASSERT_EQ(warmed.exit_code, 0) << warmed.output;
    EXPECT_NE(warmed.output.find("warming 1 image(s)"), std::string::npos) << warmed.output;
    EXPECT_NE(warmed.output.find(m_base + ": warmed"), std::string::npos) << warmed.output;
}

TEST_F(WarmTest, RunAsWarmerItIsKilnWarmWithKanikosShortFlags) {
    std::string warmer = m_dir.path() + "/warmer";
    ASSERT_EQ(::symlink(kiln_binary().c_str(), warmer.c_str()), 0);
    // As deploy/Dockerfile provides it: a link named warmer. (sh gets the kiln binary as $0, and drops it.)
    KilnRun run = run_kiln({"-c", m_cache, "-i", m_base, "--insecure"}, {"sh", "-c", "exec '" + warmer + "' \"$@\""});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(m_base + ": warmed"), std::string::npos) << run.output;
}

TEST_F(WarmTest, NothingToWarmAndAMissingImageAreErrors) {
    KilnRun nothing = warm({});
    EXPECT_EQ(nothing.exit_code, 2) << nothing.output;
    EXPECT_NE(nothing.output.find("nothing to warm"), std::string::npos) << nothing.output;
    std::string missing = m_registry->host_port() + "/no/such:1";
    KilnRun run = warm({"--image", missing});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_NE(run.output.find("no/such"), std::string::npos) << run.output;
    EXPECT_TRUE(fs::is_empty(m_cache + "/images/refs")) << "a failed warm recorded a name";
}

}  // namespace
}  // namespace kiln::test
