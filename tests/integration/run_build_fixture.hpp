#pragma once
// LocalBuildTest with a kiln-made busybox base, built once per suite and named "base" (an OCI layout passed
// with --build-context), so that Dockerfiles can say `FROM base` and run steps.

#include <unistd.h>

#include "tests/integration/local_build_fixture.hpp"

namespace kiln::test {

class RunBuildTest : public LocalBuildTest {
protected:
    static void SetUpTestSuite() {
        if (::access("/bin/busybox", X_OK) != 0) s_skip_reason = "/bin/busybox is not installed (scripts/setup installs it)";
        if (::access(kiln_binary().c_str(), X_OK) != 0) s_skip_reason = kiln_binary() + " has not been built";
        if (s_skip_reason) return;
        auto work = TempDir::create(default_temp_parent(), "kiln-run-it-");
        ASSERT_TRUE(work) << work.error().message();
        s_work = new TempDir(std::move(*work));
        std::string context = s_work->path() + "/busybox-context";
        auto made = run_process({source_path("scripts/make-busybox-context"), context});
        ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->stderr_bytes : made.error().message());
        KilnRun base = run_kiln({"build", "--context", context, "--dockerfile",
                                 source_path("examples/busybox-base/Dockerfile"), "--no-push",
                                 "--oci-layout-path", s_work->path() + "/base"});
        ASSERT_EQ(base.exit_code, 0) << base.output;
        s_base_ready = true;
    }
    static void TearDownTestSuite() {
        delete s_work;
        s_work = nullptr;
        s_base_ready = false;
    }
    void SetUp() override {
        if (s_skip_reason) GTEST_SKIP() << *s_skip_reason;
        ASSERT_TRUE(s_base_ready) << "the busybox base could not be built";
        LocalBuildTest::SetUp();
    }

    // The uncompressed layers of the suite's busybox base, bottom first: to build images on top of it by hand.
    std::vector<std::string> base_layers() {
        std::string layout = s_work->path() + "/base";
        auto index = nlohmann::json::parse(read_file(layout + "/index.json").value_or("{}"));
        std::string manifest_digest = index["manifests"][0]["digest"];
        auto manifest =
            nlohmann::json::parse(read_file(layout + "/blobs/sha256/" + manifest_digest.substr(7)).value_or("{}"));
        std::vector<std::string> layers;
        for (const auto& layer : manifest["layers"]) {
            std::string digest = layer["digest"];
            auto tar = run_process({"gzip", "-dc", layout + "/blobs/sha256/" + digest.substr(7)});
            EXPECT_TRUE(tar && tar->exit_code == 0) << digest;
            if (tar) layers.push_back(tar->stdout_bytes);
        }
        return layers;
    }

    std::string work_parent() const override { return s_work->path(); }
    std::vector<std::string> fixture_args() const override {
        return {"--build-context", "base=oci-layout://" + s_work->path() + "/base"};
    }

    static inline std::optional<std::string> s_skip_reason;
    static inline TempDir* s_work = nullptr;
    static inline bool s_base_ready = false;
};

}  // namespace kiln::test
