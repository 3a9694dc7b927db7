#pragma once
// Builds small Dockerfiles with the kiln binary into OCI layouts (no registry), unpacks each result with umoci,
// and lets a test read the image's files, layers, config and history.

#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "images/digest.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/integration/harness.hpp"

namespace kiln::test {

class LocalBuildTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (const char* tool : {"/usr/bin/umoci", "/bin/tar", "/bin/gzip"})
            if (::access(tool, X_OK) != 0) GTEST_SKIP() << tool << " is not installed (scripts/setup installs it)";
        if (::access(kiln_binary().c_str(), X_OK) != 0) GTEST_SKIP() << kiln_binary() << " has not been built";
        auto dir = TempDir::create(work_parent(), "case-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
        ASSERT_TRUE(make_directories(context_path("")));
    }

    // Where each test's directory is made; fixtures with shared state put it beside that state.
    virtual std::string work_parent() const { return default_temp_parent(); }
    // Flags every build of the fixture gets (e.g. a --build-context for a shared base).
    virtual std::vector<std::string> fixture_args() const { return {}; }

    std::string context_path(const std::string& path) const { return m_dir.path() + "/context/" + path; }
    std::string case_path(const std::string& path) const { return m_dir.path() + "/" + path; }

    // Writes a file into the build context, with its parent directories.
    void put(const std::string& path, const std::string& content, mode_t mode = 0644) {
        ASSERT_TRUE(make_directories(parent_path(context_path(path))));
        ASSERT_TRUE(write_file_atomic(context_path(path), content, mode));
    }

    // Builds `dockerfile` from the context into a fresh OCI layout and, when the build succeeds, unpacks it.
    KilnRun build(const std::string& dockerfile, const std::vector<std::string>& extra_args = {},
                  const std::vector<std::string>& environment = {}) {
        ++m_builds;
        EXPECT_TRUE(write_file_atomic(context_path("Dockerfile"), dockerfile));
        m_layout = case_path(str_cat("layout-", m_builds));
        std::vector<std::string> args = {"build", "--context", context_path(""), "--no-push", "--oci-layout-path",
                                         m_layout};
        for (const std::vector<std::string>& more : {fixture_args(), extra_args}) args.insert(args.end(), more.begin(), more.end());
        KilnRun run = run_kiln(args, m_command_prefix, environment);
        if (run.exit_code != 0) return run;
        m_bundle = case_path(str_cat("bundle-", m_builds));
        auto unpacked = unpack_layout(m_layout, "latest", m_bundle);
        EXPECT_TRUE(unpacked) << unpacked.error().message();
        return run;
    }

    // Builds and fails the test (with kiln's output) unless the build succeeds.
    KilnRun build_ok(const std::string& dockerfile, const std::vector<std::string>& extra_args = {},
                     const std::vector<std::string>& environment = {}) {
        KilnRun run = build(dockerfile, extra_args, environment);
        EXPECT_EQ(run.exit_code, 0) << run.output;
        return run;
    }

    std::string rootfs(const std::string& path) const { return m_bundle + "/rootfs/" + path; }
    std::optional<struct stat> stat_of(const std::string& path) const { return lstat_path(rootfs(path)); }
    bool exists(const std::string& path) const { return stat_of(path).has_value(); }
    std::string content_of(const std::string& path) const {
        auto text = read_file(rootfs(path));
        return text ? *text : "<missing " + path + ">";
    }

    nlohmann::json blob(const std::string& digest) const {
        return nlohmann::json::parse(read_file(m_layout + "/blobs/sha256/" + digest.substr(7)).value_or("{}"));
    }
    nlohmann::json manifest() const {
        auto index = nlohmann::json::parse(read_file(m_layout + "/index.json").value_or("{}"));
        return blob(index["manifests"][0]["digest"]);
    }
    nlohmann::json config() const { return blob(manifest()["config"]["digest"]); }
    size_t layer_count() const { return manifest()["layers"].size(); }

    // created_by of every history entry of the last image.
    std::vector<std::string> history() const {
        std::vector<std::string> entries;
        nlohmann::json image_config = config();
        for (const auto& entry : image_config["history"]) entries.push_back(entry.value("created_by", ""));
        return entries;
    }
    // created_by of the last image's newest history entry, "" when it has none.
    std::string last_history() const {
        std::vector<std::string> entries = history();
        return entries.empty() ? "" : entries.back();
    }

    // Every layer of the last image, uncompressed, one after the other (tar headers and file bodies).
    std::string all_layer_bytes() const {
        std::string bytes;
        nlohmann::json image_manifest = manifest();  // alive for the loop: ["layers"] refers into it
        for (const auto& layer : image_manifest["layers"]) {
            std::string digest = layer["digest"];
            auto tar = run_process({"gzip", "-dc", m_layout + "/blobs/sha256/" + digest.substr(7)});
            EXPECT_TRUE(tar && tar->exit_code == 0) << digest;
            if (tar) bytes += tar->stdout_bytes;
        }
        return bytes;
    }

    // The paths every layer of the last image lists ("./etc/passwd" or "etc/passwd", as written).
    std::vector<std::string> layer_paths() const {
        std::vector<std::string> paths;
        nlohmann::json image_manifest = manifest();  // alive for the loop: ["layers"] refers into it
        for (const auto& layer : image_manifest["layers"]) {
            std::string digest = layer["digest"];
            auto listing = run_process({"tar", "-tzf", m_layout + "/blobs/sha256/" + digest.substr(7)});
            EXPECT_TRUE(listing && listing->exit_code == 0) << digest;
            if (!listing) continue;
            for (const std::string& path : split(listing->stdout_bytes, '\n'))
                if (!path.empty()) paths.push_back(path);
        }
        return paths;
    }

    // Per layer of the last build: its entries (tar -tv, numeric owners) and the digest of its files' bytes,
    // without the whiteouts (which two snapshotters may write two ways for the same change).
    std::string layer_listing() const {
        std::string listing;
        nlohmann::json image_manifest = manifest();  // alive for the loop: ["layers"] refers into it
        for (const auto& layer : image_manifest["layers"]) {
            std::string digest = layer["digest"];
            std::string blob = m_layout + "/blobs/sha256/" + digest.substr(7);
            auto tar = run_process({"tar", "--numeric-owner", "-tvzf", blob});
            auto bytes = run_process({"tar", "-xzOf", blob});
            EXPECT_TRUE(tar && tar->exit_code == 0 && bytes && bytes->exit_code == 0) << digest;
            listing += "layer\n";
            for (const std::string& line : split(tar ? tar->stdout_bytes : "", '\n'))
                if (line.find(".wh.") == std::string::npos) listing += line + "\n";
            listing += str_cat("content sha256 ", Digest::of_bytes(bytes ? bytes->stdout_bytes : "").str(), "\n");
        }
        return listing;
    }

    // True when some layer lists `path` or something below it.
    bool any_layer_has(const std::string& path) const {
        for (std::string listed : layer_paths()) {
            if (listed.starts_with("./")) listed = listed.substr(2);
            while (listed.ends_with("/")) listed.pop_back();
            if (listed == path || listed.starts_with(path + "/")) return true;
        }
        return false;
    }

    static bool contains(const std::string& text, const std::string& part) {
        return text.find(part) != std::string::npos;
    }

    TempDir m_dir;
    std::string m_layout;
    std::string m_bundle;
    int m_builds = 0;
    std::vector<std::string> m_command_prefix;  // what build() runs kiln under (capsh, unshare…)
};

}  // namespace kiln::test
