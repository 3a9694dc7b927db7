// kiln end to end through a fault-injecting proxy in front of a real registry. Every build pulls the same base
// and pushes the same reproducible image, so a run that recovered from a transient fault must push exactly the
// baseline's manifest digest; a run defeated by a permanent fault must say where and why, and tag nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/support/fault_proxy.hpp"
#include "tests/support/random_bytes.hpp"

namespace kiln::test {
namespace {

constexpr size_t k_payload_size = 2 << 20;
constexpr std::chrono::seconds k_stall_timeout{2};  // --registry-stall-timeout
// Far longer than the stall timeout: kiln must give up on its own, not wait for the proxy to let go.
constexpr std::chrono::milliseconds k_stall{30000};
// A kiln run that outlives this is stuck; the test fails instead of hanging the suite.
constexpr std::chrono::milliseconds k_kiln_timeout{90000};

// Incompressible, and the same bytes in every run, so the pushed layer is the same blob every time.
std::string payload() { return pseudo_random_bytes(k_payload_size, 0x9e3779b9u); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// kiln's retry warning ("warning: …; try 2 of 4 in 0.4 s").
bool has_retry_warning(const std::string& output) {
    for (const std::string& line : split(output, '\n'))
        if (line.starts_with("warning: ") && contains(line, "; try 2 of ")) return true;
    return false;
}

struct BuildRun {
    int exit_code = -1;
    std::string output;
    std::string digest;  // from --digest-file; empty when kiln wrote none
};

class RegistryFaultTest : public RegistryBuildTest {
protected:
    static void SetUpTestSuite() {
        RegistryBuildTest::SetUpTestSuite();
        if (s_skip_reason || s_base == nullptr) return;
        auto proxy = FaultProxy::start(s_registry->host_port());
        ASSERT_TRUE(proxy) << proxy.error().message();
        s_proxy = proxy->release();

        s_context = new std::string(s_work->path() + "/fault-context");
        ASSERT_TRUE(make_directories(*s_context));
        ASSERT_TRUE(write_file_atomic(*s_context + "/Dockerfile",
                                      "FROM " + s_proxy->host_port() + "/base/busybox:1\nCOPY payload.bin /payload.bin\n"));
        ASSERT_TRUE(write_file_atomic(*s_context + "/payload.bin", payload()));

        auto base = inspect_remote(*s_base);
        ASSERT_TRUE(base) << base.error().message();
        ASSERT_FALSE((*base)["Layers"].empty());
        s_base_layers = new std::vector<std::string>();
        for (const auto& layer : (*base)["Layers"]) s_base_layers->push_back(layer.get<std::string>());

        auto start = std::chrono::steady_clock::now();
        BuildRun baseline = build(s_work->path() + "/baseline", "faults/baseline", {});
        s_baseline_duration = std::chrono::steady_clock::now() - start;
        ASSERT_EQ(baseline.exit_code, 0) << baseline.output;
        ASSERT_TRUE(baseline.digest.starts_with("sha256:")) << baseline.output;
        ASSERT_EQ(s_proxy->faults_injected(), 0);
        auto pushed = inspect_remote(s_registry->host_port() + "/faults/baseline:1");
        ASSERT_TRUE(pushed) << pushed.error().message();
        ASSERT_EQ((*pushed)["Digest"], baseline.digest);
        ASSERT_EQ((*pushed)["Layers"].size(), s_base_layers->size() + 1);
        s_baseline = new nlohmann::json(std::move(*pushed));
    }
    static void TearDownTestSuite() {
        delete s_proxy;  // first: it ends its stalls and connections while the registry is still up
        delete s_baseline;
        delete s_base_layers;
        delete s_context;
        s_proxy = nullptr;
        s_baseline = nullptr;
        s_base_layers = nullptr;
        s_context = nullptr;
        RegistryBuildTest::TearDownTestSuite();
    }
    void SetUp() override {
        RegistryBuildTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ASSERT_NE(s_baseline, nullptr) << "the baseline push through the proxy failed";
    }
    void TearDown() override {
        if (s_proxy) s_proxy->set_rules({});
    }

    // Builds the suite's image through the proxy and pushes it as <proxy>/`repository`:1. A fresh repository per
    // test, so that every blob that is not the base's has to be uploaded again.
    // `fast_retries`: the retries' waits add up to 3 s instead of the default minute, so that the cases that
    // retry finish soon.
    static BuildRun build(const std::string& work, const std::string& repository,
                          const std::vector<std::string>& flags, bool fast_retries = true) {
        BuildRun result;
        if (auto made = make_directories(work); !made) {
            result.output = made.error().message();
            return result;
        }
        std::string digest_file = work + "/digest";
        std::vector<std::string> argv = {kiln_binary(), "build",
                                         "--context", *s_context,
                                         "--dockerfile", *s_context + "/Dockerfile",
                                         "--destination", s_proxy->host_port() + "/" + repository + ":1",
                                         "--insecure", "--insecure-pull",
                                         "--reproducible", str_cat("--registry-stall-timeout=", k_stall_timeout.count()),
                                         "--digest-file", digest_file};
        if (fast_retries) argv.push_back("--registry-retry-window=3s");
        argv.insert(argv.end(), flags.begin(), flags.end());
        ProcessOptions options;
        options.timeout = k_kiln_timeout;
        auto ran = run_process(argv, options);
        if (!ran) {
            result.output = ran.error().message();
            return result;
        }
        result.exit_code = ran->exit_code;
        result.output = ran->stdout_bytes + ran->stderr_bytes;
        if (auto digest = read_file(digest_file, 1 << 10)) result.digest = *digest;
        return result;
    }

    BuildRun build_with(const std::string& repository, std::vector<FaultRule> rules,
                        const std::vector<std::string>& flags = {}, bool fast_retries = true) {
        s_proxy->set_rules(std::move(rules));
        return build(m_dir.path() + "/work", repository, flags, fast_retries);
    }

    // The proxy's request log, for failure messages.
    static std::string proxy_log() { return "proxy log:\n  " + join(s_proxy->log(), "\n  "); }

    // The run recovered: kiln succeeded after at least one injected `fault` and said it retried, and the image
    // in the registry (read directly, not through the proxy) is the baseline's, manifest and layers.
    void expect_recovered(const BuildRun& run, const std::string& repository, Fault fault, int faults_before) {
        EXPECT_EQ(run.exit_code, 0) << run.output << proxy_log();
        EXPECT_GE(s_proxy->faults_injected(fault) - faults_before, 1) << fault_name(fault) << " was never injected\n"
                                                                       << proxy_log();
        EXPECT_TRUE(has_retry_warning(run.output)) << "no retry warning in:\n" << run.output;
        EXPECT_EQ(run.digest, (*s_baseline)["Digest"].get<std::string>()) << run.output;
        auto pushed = inspect_remote(s_registry->host_port() + "/" + repository + ":1");
        ASSERT_TRUE(pushed) << pushed.error().message();
        EXPECT_EQ((*pushed)["Digest"], (*s_baseline)["Digest"]);
        EXPECT_EQ((*pushed)["Layers"], (*s_baseline)["Layers"]);
    }

    // The run failed, and the registry itself (not the proxy) has no manifest under the destination tag.
    void expect_failed_and_nothing_tagged(const BuildRun& run, const std::string& repository) {
        EXPECT_NE(run.exit_code, 0) << run.output;
        EXPECT_NE(run.exit_code, -1) << "kiln did not run to an end: " << run.output;
        EXPECT_TRUE(run.digest.empty()) << "kiln wrote a digest file: " << run.digest;
        auto status = run_process({"curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}",
                                   "--header", "Accept: application/vnd.oci.image.manifest.v1+json",
                                   "--header", "Accept: application/vnd.docker.distribution.manifest.v2+json",
                                   s_registry->url("/v2/" + repository + "/manifests/1")});
        ASSERT_TRUE(status) << status.error().message();
        EXPECT_EQ(status->stdout_bytes, "404") << repository << ":1 exists in the registry";
    }

    // The error names the registry kiln was talking to and the repository.
    void expect_names_registry_and_repository(const std::string& output, const std::string& repository) {
        EXPECT_TRUE(contains(output, s_proxy->host_port() + "/" + repository))
            << "the error does not name " << s_proxy->host_port() << "/" << repository << ":\n"
            << output;
    }

    static std::string base_layer() { return s_base_layers->back(); }

    static inline FaultProxy* s_proxy = nullptr;
    static inline std::string* s_context = nullptr;
    static inline std::vector<std::string>* s_base_layers = nullptr;
    // skopeo inspect of the baseline push: Digest and Layers.
    static inline nlohmann::json* s_baseline = nullptr;
    // How long the fault-free build took.
    static inline std::chrono::steady_clock::duration s_baseline_duration{};
};

// --- Transient faults: kiln retries, and the pushed image is the baseline's, byte for byte. ---

TEST_F(RegistryFaultTest, TwoManifestGet429sAreWaitedOutAndRetried) {
    int before = s_proxy->faults_injected(Fault::status_429);
    BuildRun run = build_with("faults/manifest-429",
                              {{.fault = Fault::status_429, .method = "GET",
                                .path_contains = "/v2/base/busybox/manifests/", .times = 2,
                                .retry_after_seconds = 1}});
    expect_recovered(run, "faults/manifest-429", Fault::status_429, before);
    EXPECT_EQ(s_proxy->faults_injected(Fault::status_429) - before, 2) << proxy_log();
}

TEST_F(RegistryFaultTest, TwoBlobGet503sAreRetried) {
    int before = s_proxy->faults_injected(Fault::status_503);
    BuildRun run = build_with("faults/blob-get-503",
                              {{.fault = Fault::status_503, .method = "GET",
                                .path_contains = "/blobs/" + base_layer(), .times = 2, .retry_after_seconds = 1}});
    expect_recovered(run, "faults/blob-get-503", Fault::status_503, before);
    EXPECT_EQ(s_proxy->faults_injected(Fault::status_503) - before, 2) << proxy_log();
}

TEST_F(RegistryFaultTest, ABlobUpload503IsRetried) {
    int before = s_proxy->faults_injected(Fault::status_503);
    BuildRun run = build_with("faults/upload-503",
                              {{.fault = Fault::status_503, .method = "PUT", .path_contains = "/blobs/uploads/",
                                .times = 1, .retry_after_seconds = 1}});
    expect_recovered(run, "faults/upload-503", Fault::status_503, before);
}

TEST_F(RegistryFaultTest, AConnectionResetMidLayerDownloadIsRetried) {
    int before = s_proxy->faults_injected(Fault::reset_mid_body);
    BuildRun run = build_with("faults/blob-get-reset", {{.fault = Fault::reset_mid_body, .method = "GET",
                                                          .path_contains = "/blobs/" + base_layer(), .times = 1}});
    expect_recovered(run, "faults/blob-get-reset", Fault::reset_mid_body, before);
}

TEST_F(RegistryFaultTest, AConnectionResetMidUploadIsRetried) {
    int before = s_proxy->faults_injected(Fault::reset_mid_body);
    BuildRun run = build_with("faults/upload-reset", {{.fault = Fault::reset_mid_body, .method = "PUT",
                                                        .path_contains = "/blobs/uploads/", .times = 1}});
    expect_recovered(run, "faults/upload-reset", Fault::reset_mid_body, before);
}

TEST_F(RegistryFaultTest, ATruncatedLayerDownloadIsRetried) {
    int before = s_proxy->faults_injected(Fault::truncate_body);
    BuildRun run = build_with("faults/blob-get-truncated", {{.fault = Fault::truncate_body, .method = "GET",
                                                              .path_contains = "/blobs/" + base_layer(), .times = 1}});
    expect_recovered(run, "faults/blob-get-truncated", Fault::truncate_body, before);
}

TEST_F(RegistryFaultTest, ACorruptedLayerDownloadFailsVerificationAndIsDownloadedAgain) {
    int before = s_proxy->faults_injected(Fault::flip_byte);
    BuildRun run = build_with("faults/blob-get-flipped", {{.fault = Fault::flip_byte, .method = "GET",
                                                            .path_contains = "/blobs/" + base_layer(), .times = 1}});
    expect_recovered(run, "faults/blob-get-flipped", Fault::flip_byte, before);
    bool warned = false;
    for (const std::string& line : split(run.output, '\n'))
        warned = warned || (line.starts_with("warning: ") && contains(line, "failed verification") &&
                            contains(line, base_layer()));
    EXPECT_TRUE(warned) << "no \"failed verification\" warning naming " << base_layer() << " in:\n" << run.output;
}

TEST_F(RegistryFaultTest, AStalledLayerDownloadIsAbandonedAndRetried) {
    int before = s_proxy->faults_injected(Fault::stall);
    auto start = std::chrono::steady_clock::now();
    BuildRun run = build_with("faults/blob-get-stall", {{.fault = Fault::stall, .method = "GET",
                                                          .path_contains = "/blobs/" + base_layer(), .times = 1,
                                                          .stall = k_stall}});
    auto elapsed = std::chrono::steady_clock::now() - start;
    expect_recovered(run, "faults/blob-get-stall", Fault::stall, before);
    EXPECT_LT(elapsed, k_stall) << "kiln waited for the stall to end instead of giving up";
}

TEST_F(RegistryFaultTest, AStalledLayerDownloadIsAbandonedWithinTheStallTimeout) {
    // The proxy sends half the layer at once, then nothing: "moves no byte for 2 seconds" starts there. The
    // allowance covers the fault-free build, the first retry's backoff (at most 0.5 s) and scheduling noise.
    auto allowed = s_baseline_duration + k_stall_timeout + std::chrono::milliseconds(500) + std::chrono::seconds(2);
    auto start = std::chrono::steady_clock::now();
    BuildRun run = build_with("faults/blob-get-stall-timeout",
                              {{.fault = Fault::stall, .method = "GET", .path_contains = "/blobs/" + base_layer(),
                                .times = 1, .stall = k_stall}});
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_LT(elapsed, allowed) << "with --registry-stall-timeout=" << k_stall_timeout.count() << ", the build took "
                                << std::chrono::duration<double>(elapsed).count() << " s (fault-free: "
                                << std::chrono::duration<double>(s_baseline_duration).count() << " s):\n"
                                << run.output;
}

// A registry's rolling restart: every manifest PUT answers 503, without Retry-After, for 12 s. The default
// retries (3, spread over a minute) outlast it; they used to give up after about 2.6 s.
TEST_F(RegistryFaultTest, TheDefaultRetriesOutlastARegistryRestartOfTwelveSeconds) {
    int before = s_proxy->faults_injected(Fault::status_503);
    BuildRun run = build_with("faults/restart",
                              {{.fault = Fault::status_503, .method = "PUT", .path_contains = "/manifests/",
                                .retry_after_seconds = 0, .lasts = std::chrono::seconds(12)}},
                              {}, false);
    expect_recovered(run, "faults/restart", Fault::status_503, before);
}

// --- Permanent faults: kiln gives up with an error that says where and why, and tags nothing. ---

// The same wrong bytes on two tries are what the registry holds: the default retries stop there rather than
// wait out their minute.
TEST_F(RegistryFaultTest, ALayerThatFailsVerificationTheSameWayTwiceFailsTheBuildNamingTheBlob) {
    int before = s_proxy->faults_injected(Fault::flip_byte);
    BuildRun run = build_with("faults/blob-get-always-flipped",
                              {{.fault = Fault::flip_byte, .method = "GET",
                                .path_contains = "/blobs/" + base_layer(), .times = -1}});
    expect_failed_and_nothing_tagged(run, "faults/blob-get-always-flipped");
    EXPECT_TRUE(contains(run.output, "failed verification")) << run.output;
    EXPECT_TRUE(contains(run.output, base_layer())) << run.output;
    expect_names_registry_and_repository(run.output, "base/busybox");
    EXPECT_TRUE(contains(run.output, "pulling")) << "the error does not say it was pulling:\n" << run.output;
    EXPECT_TRUE(contains(run.output, "the same wrong content on tries 1 and 2")) << run.output;
    EXPECT_EQ(s_proxy->faults_injected(Fault::flip_byte) - before, 2) << proxy_log();
}

TEST_F(RegistryFaultTest, AManifestPutThatAlways503sFailsWithTheStatusAndErrorCode) {
    BuildRun run = build_with("faults/manifest-put-503",
                              {{.fault = Fault::status_503, .method = "PUT", .path_contains = "/manifests/",
                                .times = -1, .retry_after_seconds = 1}},
                              {"--push-retry=1"});
    expect_failed_and_nothing_tagged(run, "faults/manifest-put-503");
    expect_names_registry_and_repository(run.output, "faults/manifest-put-503");
    EXPECT_TRUE(contains(run.output, "manifest")) << run.output;
    EXPECT_TRUE(contains(run.output, "PUT")) << run.output;
    EXPECT_TRUE(contains(run.output, "HTTP 503 UNAVAILABLE")) << run.output;
    EXPECT_TRUE(contains(run.output, "gave up after 2 tries")) << run.output;
}

// A registry with immutable tags (ECR's answer, from the proxy) refuses the manifest put of a tag that exists.
TEST_F(RegistryFaultTest, AnImmutableTagFailsThePushUnlessTheFlagSaysToCountItAsPushed) {
    std::vector<FaultRule> immutable = {
        {.fault = Fault::immutable_tag, .method = "PUT", .path_contains = "/manifests/1", .times = -1}};
    BuildRun refused = build_with("faults/immutable-refused", immutable, {"--push-retry=1"});
    expect_failed_and_nothing_tagged(refused, "faults/immutable-refused");
    EXPECT_TRUE(contains(refused.output, "TAG_INVALID")) << refused.output;
    EXPECT_TRUE(contains(refused.output, "immutable")) << refused.output;

    BuildRun ignored = build_with("faults/immutable-ignored", immutable,
                                  {"--push-retry=1", "--push-ignore-immutable-tag-errors"});
    EXPECT_EQ(ignored.exit_code, 0) << ignored.output << proxy_log();
    EXPECT_TRUE(contains(ignored.output, "warning: ")) << ignored.output;
    EXPECT_TRUE(contains(ignored.output, "--push-ignore-immutable-tag-errors")) << ignored.output;
    EXPECT_TRUE(ignored.digest.starts_with("sha256:")) << "the build's digest is still written";
    EXPECT_FALSE(has_retry_warning(ignored.output)) << "a refusal is not retried: " << ignored.output;
}

TEST_F(RegistryFaultTest, AnUploadWhoseBytesAreCorruptedIsRejectedAsDigestInvalidWithoutRetry) {
    int before = s_proxy->faults_injected(Fault::flip_byte);
    BuildRun run = build_with("faults/upload-always-flipped",
                              {{.fault = Fault::flip_byte, .method = "PUT", .path_contains = "/blobs/uploads/",
                                .times = -1}},
                              {"--push-retry=1"});
    expect_failed_and_nothing_tagged(run, "faults/upload-always-flipped");
    expect_names_registry_and_repository(run.output, "faults/upload-always-flipped");
    EXPECT_TRUE(contains(run.output, "PUT blob")) << run.output;
    EXPECT_TRUE(contains(run.output, "HTTP 400 DIGEST_INVALID")) << run.output;
    // The registry's verdict on the bytes it got is final: no try again. Two blobs, the layer and the config,
    // may each have been sent once while the build ran and once more by the push.
    EXPECT_FALSE(has_retry_warning(run.output)) << run.output;
    EXPECT_GE(s_proxy->faults_injected(Fault::flip_byte) - before, 1) << proxy_log();
    EXPECT_LE(s_proxy->faults_injected(Fault::flip_byte) - before, 4) << proxy_log();
}

}  // namespace
}  // namespace kiln::test
