#pragma once
// Builds small Dockerfiles with the kiln binary into an OCI layout (no registry), unpacks the result with
// umoci and lets a test look at the image's files and layers.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/integration/harness.hpp"

namespace kiln::test {

class LocalBuildTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/usr/bin/umoci", X_OK) != 0)
            GTEST_SKIP() << "umoci is not installed (scripts/setup installs it)";
        if (::access(kiln_binary().c_str(), X_OK) != 0)
            GTEST_SKIP() << kiln_binary() << " has not been built";
        auto dir = TempDir::create(default_temp_parent(), "kiln-local-build-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
        ASSERT_TRUE(make_directories(context_path("")));
    }

    std::string context_path(const std::string& path) const { return m_dir.path() + "/context/" + path; }

    // Writes a file into the build context, with its parent directories.
    void put(const std::string& path, const std::string& content, mode_t mode = 0644) {
        ASSERT_TRUE(make_directories(parent_path(context_path(path))));
        ASSERT_TRUE(write_file_atomic(context_path(path), content, mode));
    }

    // Builds `dockerfile` from the context into a fresh OCI layout and, when the build succeeds, unpacks it.
    KilnRun build(const std::string& dockerfile, const std::vector<std::string>& extra_args = {}) {
        ++m_builds;
        EXPECT_TRUE(write_file_atomic(context_path("Dockerfile"), dockerfile));
        m_layout = str_cat(m_dir.path(), "/layout-", m_builds);
        std::vector<std::string> args = {"build",     "--context",         context_path(""),
                                         "--no-push", "--oci-layout-path", m_layout};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        KilnRun run = run_kiln(args);
        if (run.exit_code != 0) return run;
        m_bundle = str_cat(m_dir.path(), "/bundle-", m_builds);
        auto unpacked = unpack_layout(m_layout, "latest", m_bundle);
        EXPECT_TRUE(unpacked) << unpacked.error().message();
        return run;
    }

    // Builds and fails the test (with kiln's output) unless the build succeeds.
    void build_ok(const std::string& dockerfile, const std::vector<std::string>& extra_args = {}) {
        KilnRun run = build(dockerfile, extra_args);
        ASSERT_EQ(run.exit_code, 0) << run.output;
    }

    std::string rootfs(const std::string& path) const { return m_bundle + "/rootfs/" + path; }
    std::optional<struct stat> stat_of(const std::string& path) const { return lstat_path(rootfs(path)); }
    std::string content_of(const std::string& path) const {
        auto text = read_file(rootfs(path));
        return text ? *text : "<missing " + path + ">";
    }

    // The layers of the last image built, from its manifest.
    size_t layer_count() const {
        auto index = nlohmann::json::parse(*read_file(m_layout + "/index.json"));
        std::string digest = index["manifests"][0]["digest"];
        auto manifest = nlohmann::json::parse(*read_file(m_layout + "/blobs/sha256/" + digest.substr(7)));
        return manifest["layers"].size();
    }

    static bool contains(const std::string& text, const std::string& part) {
        return text.find(part) != std::string::npos;
    }

    TempDir m_dir;
    std::string m_layout;
    std::string m_bundle;
    int m_builds = 0;
};

}  // namespace kiln::test
