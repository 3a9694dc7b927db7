// What bad input gets: a clear error naming where, a non-zero exit, nothing pushed under the destination tag,
// and no mount or process left behind.

#include <dirent.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

using FailureTest = RegistryBuildTest;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Processes whose command line contains `marker`.
size_t processes_with(const std::string& marker) {
    size_t count = 0;
    DIR* proc = ::opendir("/proc");
    while (dirent* entry = ::readdir(proc)) {
        std::string name = entry->d_name;
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        auto cmdline = read_file("/proc/" + name + "/cmdline");
        if (!cmdline) continue;
        for (char& c : *cmdline) c = c ? c : ' ';
        if (contains(*cmdline, marker) && std::to_string(::getpid()) != name) ++count;
    }
    ::closedir(proc);
    return count;
}

TEST_F(FailureTest, FailingRunExitsWithItsCodeAndPushesNothing) {
    std::string context = context_with("ARG BASE\nFROM $BASE\nRUN echo first > /first\nRUN echo about to fail && exit 42\n");
    KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                            "--insecure-pull", "--destination", reference("failing:1")});
    EXPECT_EQ(run.exit_code, 42) << run.output;
    EXPECT_TRUE(contains(run.output, "Dockerfile:4")) << run.output;
    EXPECT_TRUE(contains(run.output, "exited with code 42")) << run.output;
    EXPECT_TRUE(contains(run.output, "RUN echo about to fail")) << run.output;
    EXPECT_FALSE(inspect_remote(reference("failing:1"))) << "an image was pushed although the build failed";
}

TEST_F(FailureTest, MissingBaseImageNamesRegistryRepositoryAndStatus) {
    std::string context = context_with("FROM " + reference("nowhere/missing:7") + "\nRUN true\n");
    KilnRun run = run_kiln({"build", "--context", context, "--insecure-pull", "--no-push"});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, registry().host_port())) << run.output;
    EXPECT_TRUE(contains(run.output, "nowhere/missing")) << run.output;
    EXPECT_TRUE(contains(run.output, "404")) << run.output;
}

TEST_F(FailureTest, SyntaxErrorNamesTheFileAndLine) {
    std::string context = context_with("FROM scratch\nCOPY a /a\nFROBNICATE all the things\n");
    KilnRun run = run_kiln({"build", "--context", context, "--no-push"});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, context + "/Dockerfile:3")) << run.output;
    EXPECT_TRUE(contains(run.output, "FROBNICATE")) << run.output;
}

TEST_F(FailureTest, CorruptBaseLayerIsRefusedWithItsDigest) {
    // A base of its own, so that corrupting it does not disturb the other tests.
    std::string base_context = context_with("FROM scratch\nCOPY payload /payload\n");
    ASSERT_TRUE(write_file_atomic(base_context + "/payload", std::string(4096, 'k')));
    KilnRun pushed = run_kiln({"build", "--context", base_context, "--insecure", "--destination", reference("fragile:1")});
    ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
    auto inspected = inspect_remote(reference("fragile:1"));
    ASSERT_TRUE(inspected) << inspected.error().message();
    std::string layer = (*inspected)["Layers"][0];
    std::string data = registry().blob_data_path(layer);
    auto original = read_file(data);
    ASSERT_TRUE(original) << original.error().message();
    std::string corrupted = *original;
    corrupted[corrupted.size() / 2] ^= 0x55;
    ASSERT_TRUE(write_file_atomic(data, corrupted));

    std::string context = m_dir.path() + "/consumer";
    ASSERT_TRUE(make_directories(context));
    // The consumer reads the base's files. A base layer that no step reads is mounted by digest on a push to
    // its own registry, never downloaded, so only a read can find the corruption.
    ASSERT_TRUE(write_file_atomic(context + "/Dockerfile", "FROM " + reference("fragile:1") +
                                                               " AS base\nFROM scratch\nCOPY --from=base /payload /p\n"));
    KilnRun run = run_kiln({"build", "--context", context, "--insecure-pull", "--insecure",
                            "--destination", reference("consumer:1")});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, layer)) << run.output;
    EXPECT_FALSE(inspect_remote(reference("consumer:1")));
}

TEST_F(FailureTest, NoMountOrProcessOutlivesABuild) {
    size_t mounts_before = mount_count();
    std::string marker = "kiln-leak-marker-" + std::to_string(::getpid());
    // `sh -c 'sleep 1000' MARKER` puts the marker in the background process's argv, where /proc shows it.
    std::string context = context_with("ARG BASE\nFROM $BASE\nRUN sh -c 'sleep 1000' " + marker +
                                       " & echo started\nRUN exit 7\n");
    KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure-pull", "--no-push"});
    EXPECT_EQ(run.exit_code, 7) << run.output;
    EXPECT_EQ(processes_with(marker), 0u) << "a RUN step's process outlived the build";
    EXPECT_EQ(mount_count(), mounts_before) << "a build left a mount behind";
}

}  // namespace
}  // namespace kiln::test
