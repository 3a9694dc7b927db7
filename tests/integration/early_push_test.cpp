// The pushed image's new layers go up while later steps run, to the destination repository only, and the push
// at the end does not send them again.

#include <dirent.h>

#include <gtest/gtest.h>

#include <set>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

class EarlyPushTest : public RegistryBuildTest {
protected:
    KilnRun build(const std::string& context, const std::string& destination) {
        return run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                         "--insecure-pull", "--destination", reference(destination), "--work-dir",
                         m_dir.path() + "/work"});
    }

    // The blobs the registry has linked into `repository` ("sha256:…").
    std::set<std::string> blobs_in(const std::string& repository) const {
        std::set<std::string> blobs;
        std::string dir = registry().storage_dir() + "/docker/registry/v2/repositories/" + repository + "/_layers/sha256";
        DIR* listing = ::opendir(dir.c_str());
        if (!listing) return blobs;
        while (const dirent* entry = ::readdir(listing)) {
            std::string name = entry->d_name;
            if (name != "." && name != "..") blobs.insert("sha256:" + name);
        }
        ::closedir(listing);
        return blobs;
    }
};

// The line of `output` at which `needle` first appears, or npos.
size_t line_of(const std::vector<std::string>& lines, const std::string& needle, size_t from = 0) {
    for (size_t i = from; i < lines.size(); ++i)
        if (lines[i].contains(needle)) return i;
    return std::string::npos;
}

TEST_F(EarlyPushTest, ALayerIsUploadedWhileTheNextStepRunsAndOnlyOnce) {
    std::string context = context_with("ARG BASE\nFROM $BASE\nRUN head -c 300000 /dev/urandom > /early\n"
                                       "RUN sleep 3\n");
    KilnRun run = build(context, "early/app:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto inspected = inspect_remote(reference("early/app:1"));
    ASSERT_TRUE(inspected) << inspected.error().message();
    // The base's one layer and the first RUN's: the sleep changes no file and adds none.
    ASSERT_EQ((*inspected)["Layers"].size(), 2u) << inspected->dump();
    std::string layer = (*inspected)["Layers"][1];
    std::string pushed = "pushed layer " + layer.substr(0, std::string("sha256:").size() + 12);
    std::vector<std::string> lines = split(run.output, '\n');
    size_t upload = line_of(lines, pushed);
    ASSERT_NE(upload, std::string::npos) << "no \"" << pushed << "\" in:\n" << run.output;
    size_t sleep_step = line_of(lines, "RUN sleep 3");
    ASSERT_NE(sleep_step, std::string::npos) << run.output;
    size_t sleep_done = line_of(lines, "done in", sleep_step);
    ASSERT_NE(sleep_done, std::string::npos) << run.output;
    EXPECT_LT(upload, sleep_done) << "the layer went up after the next step ended:\n" << run.output;
    EXPECT_EQ(line_of(lines, pushed, upload + 1), std::string::npos) << "the layer went up twice:\n" << run.output;
}

// A builder stage's layers are not the pushed image's: nothing but the image's own blobs reaches the destination
// repository.
TEST_F(EarlyPushTest, OnlyThePushedImagesBlobsReachTheDestinationRepository) {
    std::string context = context_with("ARG BASE\nFROM $BASE AS builder\nRUN head -c 200000 /dev/urandom > /tool\n"
                                       "RUN head -c 100 /dev/urandom > /more\n"
                                       "FROM $BASE\nCOPY --from=builder /tool /tool\n"
                                       "RUN head -c 1000 /dev/urandom > /own\n");
    KilnRun run = build(context, "early/two-stage:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto inspected = inspect_remote(reference("early/two-stage:1"));
    ASSERT_TRUE(inspected) << inspected.error().message();
    auto config = inspect_remote(reference("early/two-stage:1"), true);
    ASSERT_TRUE(config) << config.error().message();
    std::set<std::string> expected;
    for (const auto& layer : (*inspected)["Layers"]) expected.insert(layer.get<std::string>());
    std::set<std::string> linked = blobs_in("early/two-stage");
    for (const std::string& blob : linked) {
        bool config_blob = false;
        if (auto bytes = read_file(registry().blob_data_path(blob), 1 << 20))
            config_blob = bytes->contains("\"rootfs\"") && bytes->contains("\"diff_ids\"");
        EXPECT_TRUE(expected.contains(blob) || config_blob) << blob << " is not the image's:\n" << run.output;
    }
    for (const std::string& layer : expected) EXPECT_TRUE(linked.contains(layer)) << layer << " is missing";
}

// A step that fails after a layer started going up: the build fails with the step's code and tags nothing.
TEST_F(EarlyPushTest, AFailureAfterAnUploadStartedTagsNothing) {
    std::string context = context_with("ARG BASE\nFROM $BASE\nRUN head -c 20000000 /dev/urandom > /big\n"
                                       "RUN exit 3\n");
    KilnRun run = build(context, "early/failed:1");
    EXPECT_EQ(run.exit_code, 3) << run.output;
    EXPECT_FALSE(inspect_remote(reference("early/failed:1")));
}

}  // namespace
}  // namespace kiln::test
