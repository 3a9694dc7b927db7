// Hostile base layers, end to end: an image whose layer tries to leave the rootfs is pushed to a real
// registry, and `kiln build` of a Dockerfile FROM it must refuse it naming the layer digest and the entry,
// create nothing outside its work directory, read nothing from outside it, and push nothing.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/support/tar_fixtures.hpp"
#include "tests/support/test_image.hpp"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Enough "../" to climb from any rootfs kiln makes under the test directory up to "/".
const std::string k_to_host_root = [] {
    std::string climb;
    for (int i = 0; i < 40; ++i) climb += "../";
    return climb;
}();

struct HostileCase {
    std::string name;
    // The hostile layer, given the test directory (which holds canary/ and secret).
    TestTar (*layer)(const std::string& test_dir);
    // The entry name the error must quote.
    std::string (*entry)(const std::string& test_dir);
};

const HostileCase k_cases[] = {
    {"dotdot",
     [](const std::string& dir) {
         return TestTar().file(k_to_host_root + dir.substr(1) + "/canary/escaped", "HOSTILE");
     },
     [](const std::string& dir) { return k_to_host_root + dir.substr(1) + "/canary/escaped"; }},
    {"absolute", [](const std::string& dir) { return TestTar().file(dir + "/canary/escaped", "HOSTILE"); },
     [](const std::string& dir) { return dir + "/canary/escaped"; }},
    {"planted-symlink",
     [](const std::string& dir) {
         return TestTar().symlink("etc/planted", dir + "/canary").file("etc/planted/escaped", "HOSTILE");
     },
     [](const std::string&) { return std::string("etc/planted/escaped"); }},
    {"hardlink-out",
     [](const std::string& dir) {
         return TestTar().hardlink("stolen", k_to_host_root + dir.substr(1) + "/secret");
     },
     [](const std::string&) { return std::string("stolen"); }},
    {"whiteout-dotdot", [](const std::string&) { return TestTar().file("etc/.wh...", ""); },
     [](const std::string&) { return std::string("etc/.wh..."); }},
    {"whiteout-root", [](const std::string&) { return TestTar().file(".wh..", ""); },
     [](const std::string&) { return std::string(".wh.."); }},
};

class HostileLayerTest : public RegistryBuildTest, public ::testing::WithParamInterface<HostileCase> {
protected:
    // Every path below `dir` (relative, sorted), except the subtrees named in `skip`.
    static std::vector<std::string> listing(const std::string& dir, const std::vector<std::string>& skip) {
        std::vector<std::string> paths;
        for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
             ++it) {
            std::string relative = fs::relative(it->path(), dir).string();
            if (std::find(skip.begin(), skip.end(), relative) != skip.end()) {
                it.disable_recursion_pending();
                continue;
            }
            paths.push_back(relative);
        }
        std::sort(paths.begin(), paths.end());
        return paths;
    }

    // True when `secret` appears in any file below `dir` but `except`, gzip-compressed blobs decompressed
    // first (a docker archive is a plain tar of gzip layers).
    static bool any_file_holds(const std::string& dir, const std::string& secret, const std::string& except) {
        for (const auto& entry : fs::recursive_directory_iterator(dir)) {
            if (!entry.is_regular_file() || entry.path() == except) continue;
            std::string path = entry.path().string();
            auto bytes = read_file(path, 512 << 20);
            if (bytes && contains(*bytes, secret)) return true;
            auto unzipped = run_process({"gzip", "-dc", path});
            if (unzipped && unzipped->exit_code == 0 && contains(unzipped->stdout_bytes, secret)) return true;
            if (path.ends_with(".tar")) {
                auto members = run_process({"tar", "-xOf", path});
                if (members && contains(members->stdout_bytes, secret)) return true;
            }
        }
        return false;
    }
};

TEST_P(HostileLayerTest, BuildIsRefusedNamingLayerAndEntryAndTouchesNothingOutside) {
    const HostileCase& hostile = GetParam();
    std::string dir = m_dir.path();
    ASSERT_TRUE(make_directories(dir + "/canary"));
    ASSERT_TRUE(write_file_atomic(dir + "/canary/keep", "canary"));
    std::string secret = str_cat("kiln-host-secret-", std::random_device{}(), "-", std::random_device{}());
    ASSERT_TRUE(write_file_atomic(dir + "/secret", secret));

    std::string benign = TestTar().dir("etc").file("etc/ok", "fine").bytes();
    auto image = write_test_image(dir + "/hostile-layout", "1", {benign, hostile.layer(dir).bytes()});
    ASSERT_TRUE(image) << image.error().message();
    std::string base = reference("hostile/" + hostile.name + ":1");
    auto pushed = push_layout(dir + "/hostile-layout", "1", base);
    ASSERT_TRUE(pushed) << pushed.error().message();

    // COPY --from reads the whole extracted rootfs: anything a naive extraction let in would land in a layer.
    std::string context =
        context_with("FROM " + base + " AS hostile\nFROM scratch\nCOPY --from=hostile / /\n");
    std::vector<std::string> before = listing(dir, {"work", "context"});
    std::string destination = reference("victim/" + hostile.name + ":1");
    KilnRun run = run_kiln({"build", "--context", context, "--insecure-pull", "--insecure", "--work-dir",
                            dir + "/work", "--destination", destination, "--tar-path", dir + "/out.tar"});

    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, image->layer_digests[1]))
        << "the hostile layer's digest: " << run.output;
    EXPECT_TRUE(contains(run.output, hostile.entry(dir))) << "the entry's name: " << run.output;
    EXPECT_EQ(listing(dir, {"work", "context"}), before)
        << "something was created or removed beside the work dir";
    EXPECT_EQ(read_file(dir + "/canary/keep").value_or(""), "canary");
    // kiln deletes its work directory after it exits; what it held goes with it.
    EXPECT_EQ(wait_for_no_kiln_entries(dir + "/work", std::chrono::seconds(60)), std::vector<std::string>{});
    EXPECT_FALSE(any_file_holds(dir, secret, dir + "/secret")) << "the host file's bytes reached an output";
    EXPECT_FALSE(lstat_path(dir + "/out.tar")) << "a failed build wrote its tarball";
    EXPECT_FALSE(inspect_remote(destination)) << "an image was pushed although the build failed";
}

INSTANTIATE_TEST_SUITE_P(Cases, HostileLayerTest, ::testing::ValuesIn(k_cases),
                         [](const ::testing::TestParamInfo<HostileCase>& param) {
                             std::string name = param.param.name;
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

}  // namespace
}  // namespace kiln::test
