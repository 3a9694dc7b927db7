// Where kiln pulls from and pushes to, end to end against real registries on 127.0.0.1: --registry-map and
// --registry-mirror routes with and without fallback, platform selection from OCI indexes and Docker manifest
// lists, and one build pushed to several destinations on two registries.

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "tests/integration/harness.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln::test {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Images put into a registry by hand (curl against the distribution API), so that the fixtures do not depend
// on the push code under test and can hold what kiln never makes: foreign platforms, Docker manifest lists.

enum class ManifestFormat { oci, docker };

struct MediaTypes {
    const char* layer;
    const char* config;
    const char* manifest;
    const char* index;
};

MediaTypes media_types(ManifestFormat format) {
    if (format == ManifestFormat::docker)
        return {"application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.distribution.manifest.list.v2+json"};
    return {"application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"};
}

struct PlatformSpec {
    std::string architecture;
    std::string variant;
    std::string str() const { return "linux/" + architecture + (variant.empty() ? "" : "/" + variant); }
};

// The architecture kiln resolves by default here, so that a plain FROM of a single-manifest image needs no
// flag.
std::string host_architecture() {
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#else
#error "registry_routes_test: add this host's OCI architecture name"
#endif
}

Result<std::string> run_tool(const std::vector<std::string>& argv, std::string stdin_bytes = {}) {
    KILN_ASSIGN(ProcessResult result, run_process(argv, {.stdin_bytes = std::move(stdin_bytes)}));
    if (result.exit_code != 0)
        return fail(str_cat(join(argv, " "), " exited with ", result.exit_code, ": ", result.stderr_bytes));
    return std::move(result.stdout_bytes);
}

std::string digest_of(std::string_view bytes) {
    return "sha256:" + sha256_hex(bytes);
}

// Uploads `bytes` as a blob of `repository` (POST, then PUT with the digest) and returns its digest.
Result<std::string> put_blob(const RegistryProcess& registry, const std::string& repository,
                             const std::string& bytes) {
    std::string digest = digest_of(bytes);
    KILN_ASSIGN(std::string headers,
                run_tool({"curl", "-sS", "-f", "-X", "POST", "-D", "-", "-o", "/dev/null",
                          registry.url(str_cat("/v2/", repository, "/blobs/uploads/"))}));
    std::string location;
    for (const std::string& line : split(headers, '\n'))
        if (to_lower(line).starts_with("location:"))
            location = std::string(trim(std::string_view(line).substr(9)));
    if (location.empty()) return fail("the registry gave no upload Location: " + headers);
    if (location.starts_with("/")) location = registry.url(location);
    location += str_cat(location.find('?') == std::string::npos ? "?" : "&", "digest=", digest);
    KILN_TRY(run_tool({"curl", "-sS", "-f", "-X", "PUT", "-H", "Content-Type: application/octet-stream",
                       "--data-binary", "@-", location},
                      bytes));
    return digest;
}

// PUTs a manifest or index under `reference` (a tag or digest) and returns the manifest's digest.
Result<std::string> put_manifest(const RegistryProcess& registry, const std::string& repository,
                                 const std::string& reference, const std::string& media_type,
                                 const std::string& bytes) {
    KILN_TRY(run_tool({"curl", "-sS", "-f", "-X", "PUT", "-H", "Content-Type: " + media_type, "--data-binary",
                       "@-", registry.url(str_cat("/v2/", repository, "/manifests/", reference))},
                      bytes));
    return digest_of(bytes);
}

struct PushedManifest {
    std::string digest;
    std::string layer_digest;  // its one layer: /arch holding `marker`
    size_t size = 0;
};

// Pushes a one-layer image for `platform` whose /arch file holds `marker`, tagged `tag` (or only by digest
// when `tag` is empty).
Result<PushedManifest> push_platform_image(const RegistryProcess& registry, const std::string& repository,
                                           const std::string& tag, ManifestFormat format,
                                           const PlatformSpec& platform, const std::string& marker) {
    MediaTypes types = media_types(format);
    std::string tar = TestTar().file("arch", marker + "\n").bytes();
    KILN_ASSIGN(std::string compressed, run_tool({"gzip", "-n", "-c"}, tar));
    PushedManifest pushed;
    KILN_ASSIGN(pushed.layer_digest, put_blob(registry, repository, compressed));
    nlohmann::json config = {
        {"architecture", platform.architecture},
        {"os", "linux"},
        {"created", "1970-01-01T00:00:00Z"},
        {"config", nlohmann::json::object()},
        {"rootfs", {{"type", "layers"}, {"diff_ids", {digest_of(tar)}}}},
        {"history", {{{"created", "1970-01-01T00:00:00Z"}, {"created_by", "test layer"}}}}};
    if (!platform.variant.empty()) config["variant"] = platform.variant;
    std::string config_bytes = config.dump();
    KILN_ASSIGN(std::string config_digest, put_blob(registry, repository, config_bytes));
    nlohmann::json manifest = {
        {"schemaVersion", 2},
        {"mediaType", types.manifest},
        {"config", {{"mediaType", types.config}, {"digest", config_digest}, {"size", config_bytes.size()}}},
        {"layers",
         {{{"mediaType", types.layer}, {"digest", pushed.layer_digest}, {"size", compressed.size()}}}}};
    std::string manifest_bytes = manifest.dump();
    pushed.size = manifest_bytes.size();
    KILN_ASSIGN(pushed.digest,
                put_manifest(registry, repository, tag.empty() ? digest_of(manifest_bytes) : tag,
                             types.manifest, manifest_bytes));
    return pushed;
}

// A single-platform image for this host, as a base that a plain FROM resolves without --custom-platform.
Result<PushedManifest> push_host_image(const RegistryProcess& registry, const std::string& repository,
                                       const std::string& tag, const std::string& marker) {
    return push_platform_image(registry, repository, tag, ManifestFormat::oci, {host_architecture(), ""},
                               marker);
}

// arm/v6 comes before arm/v7, so that picking arm/v7 depends on the variant, not on the order.
const std::vector<PlatformSpec> k_offered_platforms = {
    {"amd64", ""}, {"arm64", "v8"}, {"arm", "v6"}, {"arm", "v7"}};

// Pushes an index (or manifest list) of one image per k_offered_platforms entry; returns each platform's
// layer digest by PlatformSpec::str().
Result<std::map<std::string, std::string>> push_platform_index(const RegistryProcess& registry,
                                                               const std::string& repository,
                                                               const std::string& tag,
                                                               ManifestFormat format) {
    std::map<std::string, std::string> layers;
    nlohmann::json entries = nlohmann::json::array();
    for (const PlatformSpec& platform : k_offered_platforms) {
        std::string marker = str_cat(platform.str(), format == ManifestFormat::oci ? " oci" : " docker");
        KILN_ASSIGN(PushedManifest image,
                    push_platform_image(registry, repository, "", format, platform, marker));
        layers[platform.str()] = image.layer_digest;
        nlohmann::json platform_json = {{"os", "linux"}, {"architecture", platform.architecture}};
        if (!platform.variant.empty()) platform_json["variant"] = platform.variant;
        entries.push_back({{"mediaType", media_types(format).manifest},
                           {"digest", image.digest},
                           {"size", image.size},
                           {"platform", platform_json}});
    }
    nlohmann::json index = {
        {"schemaVersion", 2}, {"mediaType", media_types(format).index}, {"manifests", entries}};
    KILN_TRY(put_manifest(registry, repository, tag, media_types(format).index, index.dump()));
    return layers;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading what kiln wrote.

size_t count_of(std::string_view text, std::string_view needle) {
    size_t count = 0;
    for (size_t at = text.find(needle); at != std::string_view::npos;
         at = text.find(needle, at + needle.size()))
        ++count;
    return count;
}

Result<nlohmann::json> layout_json_blob(const std::string& layout, const std::string& digest) {
    std::string path = layout + "/blobs/sha256/" + digest.substr(digest.find(':') + 1);
    KILN_ASSIGN(std::string bytes, read_file(path, 1 << 20));
    nlohmann::json json = nlohmann::json::parse(bytes, nullptr, false);
    if (json.is_discarded()) return fail(path + " is not JSON");
    return json;
}

struct LayoutImage {
    nlohmann::json manifest;
    nlohmann::json config;
};

// The one image of an OCI layout written by --oci-layout-path.
Result<LayoutImage> read_layout_image(const std::string& layout) {
    KILN_ASSIGN(std::string index_bytes, read_file(layout + "/index.json", 1 << 20));
    nlohmann::json index = nlohmann::json::parse(index_bytes, nullptr, false);
    if (index.is_discarded() || !index.contains("manifests") || index["manifests"].size() != 1)
        return fail(layout + "/index.json does not list exactly one image: " + index_bytes);
    LayoutImage image;
    KILN_ASSIGN(image.manifest, layout_json_blob(layout, index["manifests"][0]["digest"].get<std::string>()));
    KILN_ASSIGN(image.config,
                layout_json_blob(layout, image.manifest["config"]["digest"].get<std::string>()));
    return image;
}

std::string first_layer(const LayoutImage& image) {
    const nlohmann::json& layers = image.manifest["layers"];
    return layers.empty() ? std::string() : layers[0]["digest"].get<std::string>();
}

// Registry log lines that asked for any manifest of `repository` (GET or HEAD, by tag or digest).
size_t manifest_requests(const RegistryProcess& registry, const std::string& repository) {
    return count_of(registry.log(), str_cat(" /v2/", repository, "/manifests/"));
}

// Blob uploads completed into `repository` (the PUT that closes an upload session; mounts have none).
size_t blob_uploads(const RegistryProcess& registry, const std::string& repository) {
    return count_of(registry.log(), str_cat("\"PUT /v2/", repository, "/blobs/uploads/"));
}

std::optional<std::string> missing_route_tools() {
    if (auto missing = missing_tools()) return missing;
    for (const char* tool : {"/usr/bin/curl", "/bin/gzip"})
        if (::access(tool, X_OK) != 0) return str_cat(tool, " is not installed");
    return std::nullopt;
}

// Registries and a work directory shared by the tests of one suite.
struct SharedRegistries {
    std::unique_ptr<TempDir> work;
    std::vector<std::unique_ptr<RegistryProcess>> registries;
};

Result<std::unique_ptr<SharedRegistries>> start_registries(size_t count) {
    auto shared = std::make_unique<SharedRegistries>();
    KILN_ASSIGN(TempDir work, TempDir::create(default_temp_parent(), "kiln-it-routes-"));
    shared->work = std::make_unique<TempDir>(std::move(work));
    for (size_t i = 0; i < count; ++i) {
        KILN_ASSIGN(auto registry, RegistryProcess::start());
        shared->registries.push_back(std::move(registry));
    }
    return shared;
}

// A build context under `dir` with `dockerfile` and a file "note" holding `note`.
std::string make_context(const std::string& dir, const std::string& dockerfile,
                         const std::string& note = "note\n") {
    std::string context = dir + "/context";
    EXPECT_TRUE(make_directories(context));
    EXPECT_TRUE(write_file_atomic(context + "/Dockerfile", dockerfile));
    EXPECT_TRUE(write_file_atomic(context + "/note", note));
    return context;
}

// Common fixture: `registry_count` registries per suite (each Suite its own), a fresh directory per test.
template <class Suite>
class RouteFixture : public ::testing::Test {
protected:
    static void start_suite(size_t registry_count) {
        if ((s_skip_reason = missing_route_tools())) return;
        auto shared = start_registries(registry_count);
        ASSERT_TRUE(shared) << shared.error().message();
        s_shared = std::move(*shared);
    }
    static void stop_suite() { s_shared.reset(); }

    void SetUp() override {
        if (s_skip_reason) GTEST_SKIP() << *s_skip_reason;
        ASSERT_NE(s_shared, nullptr) << "the suite's registries did not start";
        auto dir = TempDir::create(s_shared->work->path(), "case-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
    }

    static RegistryProcess& registry(size_t i) { return *s_shared->registries.at(i); }

    TempDir m_dir;
    static inline std::optional<std::string> s_skip_reason;
    static inline std::unique_ptr<SharedRegistries> s_shared;
};

// ---------------------------------------------------------------------------------------------------------------
// --registry-map and --registry-mirror: registry A is the origin, B its mirror.

class RegistryRoutesTest : public RouteFixture<RegistryRoutesTest> {
protected:
    static void SetUpTestSuite() { start_suite(2); }
    static void TearDownTestSuite() { stop_suite(); }

    RegistryProcess& origin() const { return registry(0); }
    RegistryProcess& mirror() const { return registry(1); }

    // Builds FROM origin/`repository_tag` with origin mapped to the mirror, into an OCI layout at m_dir/out.
    KilnRun build_through_map(const std::string& repository_tag, const std::vector<std::string>& extra = {}) {
        std::string context = make_context(
            m_dir.path(), str_cat("FROM ", origin().host_port(), "/", repository_tag, "\nCOPY note /note\n"));
        std::vector<std::string> args = {"build",
                                         "--context",
                                         context,
                                         "--insecure-pull",
                                         "--no-push",
                                         "--oci-layout-path",
                                         m_dir.path() + "/out",
                                         "--registry-map",
                                         origin().host_port() + "=" + mirror().host_port()};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_kiln(args);
    }
};

TEST_F(RegistryRoutesTest, MappedPullTakesTheImageFromTheMirrorWithoutAskingTheOrigin) {
    auto pushed = push_host_image(mirror(), "routes/mapped", "1", "from the mirror");
    ASSERT_TRUE(pushed) << pushed.error().message();

    KilnRun run = build_through_map("routes/mapped:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(str_cat("pulling from ", mirror().host_port(), "/routes/mapped")),
              std::string::npos)
        << run.output;
    EXPECT_EQ(manifest_requests(origin(), "routes/mapped"), 0u) << origin().log();
    auto image = read_layout_image(m_dir.path() + "/out");
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(first_layer(*image), pushed->layer_digest);
}

TEST_F(RegistryRoutesTest, MappedPullFallsBackToTheOriginWithAWarningNamingTheMirrorsFailure) {
    auto pushed = push_host_image(origin(), "routes/origin-only", "1", "from the origin");
    ASSERT_TRUE(pushed) << pushed.error().message();

    KilnRun run = build_through_map("routes/origin-only:1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::string warning;
    for (const std::string& line : split(run.output, '\n'))
        if (line.starts_with("warning:") && line.find(mirror().host_port()) != std::string::npos)
            warning = line;
    ASSERT_FALSE(warning.empty()) << "no warning names the mirror " << mirror().host_port() << ":\n"
                                  << run.output;
    EXPECT_TRUE(warning.find("404") != std::string::npos ||
                warning.find("MANIFEST_UNKNOWN") != std::string::npos)
        << warning;
    EXPECT_NE(run.output.find(str_cat("pulling from ", origin().host_port(), "/routes/origin-only")),
              std::string::npos)
        << run.output;
    auto image = read_layout_image(m_dir.path() + "/out");
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(first_layer(*image), pushed->layer_digest);
}

TEST_F(RegistryRoutesTest, SkipDefaultFallbackFailsWithoutAskingTheOrigin) {
    auto pushed = push_host_image(origin(), "routes/strict", "1", "only at the origin");
    ASSERT_TRUE(pushed) << pushed.error().message();
    size_t requests_before = manifest_requests(origin(), "routes/strict");

    KilnRun run = build_through_map("routes/strict:1", {"--skip-default-registry-fallback"});
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_EQ(manifest_requests(origin(), "routes/strict"), requests_before) << origin().log();
}

TEST_F(RegistryRoutesTest, SkipDefaultFallbackErrorNamesTheMirrorsFailureAndTheFlag) {
    auto pushed = push_host_image(origin(), "routes/strict-error", "1", "only at the origin");
    ASSERT_TRUE(pushed) << pushed.error().message();

    KilnRun run = build_through_map("routes/strict-error:1", {"--skip-default-registry-fallback"});
    ASSERT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(mirror().host_port()), std::string::npos) << run.output;
    EXPECT_TRUE(run.output.find("MANIFEST_UNKNOWN") != std::string::npos ||
                run.output.find("404") != std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("--skip-default-registry-fallback"), std::string::npos)
        << "the error should say the origin was not tried because of the flag:\n"
        << run.output;
}

// docker.io references are only ever resolved in a network namespace of their own, holding nothing but a
// loopback interface: whatever kiln did with its routes, it could not reach Docker Hub.

Status bring_up_loopback() {
    UniqueFd socket_fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket_fd) return fail_errno("socket");
    ifreq request{};
    std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(socket_fd.get(), SIOCGIFFLAGS, &request) != 0) return fail_errno("SIOCGIFFLAGS lo");
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    if (::ioctl(socket_fd.get(), SIOCSIFFLAGS, &request) != 0) return fail_errno("SIOCSIFFLAGS lo");
    return {};
}

// Runs `body` on a thread that has left the host's network namespace for a fresh one (loopback only).
// Everything the body starts (a registry, kiln) inherits it, and the body must stop what it started.
template <class T>
Result<T> run_without_outside_network(const std::function<Result<T>()>& body) {
    std::optional<Result<T>> result;
    std::thread thread([&] {
        if (::unshare(CLONE_NEWNET) != 0) {
            result = fail_errno("unshare(CLONE_NEWNET)");
            return;
        }
        if (auto up = bring_up_loopback(); !up) {
            result = fail(std::move(up.error()));
            return;
        }
        result = body();
    });
    thread.join();
    return std::move(*result);
}

struct HubMirrorRun {
    KilnRun run;
    std::string mirror_host_port;
    std::string layer_digest;
};

// In an isolated network: starts a mirror holding `mirror_repository`:1, then builds `from_line` through
// --registry-mirror=MIRROR/hub --skip-default-registry-fallback.
Result<HubMirrorRun> build_through_hub_mirror(const std::string& dir, const std::string& mirror_repository,
                                              const std::string& from_line) {
    return run_without_outside_network<HubMirrorRun>([&]() -> Result<HubMirrorRun> {
        KILN_ASSIGN(std::unique_ptr<RegistryProcess> mirror, RegistryProcess::start());
        KILN_ASSIGN(PushedManifest pushed,
                    push_host_image(*mirror, mirror_repository, "1", "from the hub mirror"));
        std::string context = make_context(dir, from_line + "\nCOPY note /note\n");
        HubMirrorRun outcome{.mirror_host_port = mirror->host_port(), .layer_digest = pushed.layer_digest};
        outcome.run = run_kiln(
            {"build", "--context", context, "--insecure-pull", "--no-push", "--oci-layout-path", dir + "/out",
             "--registry-mirror=" + mirror->host_port() + "/hub", "--skip-default-registry-fallback"});
        return outcome;
    });
}

TEST_F(RegistryRoutesTest, DockerHubMirrorWithAPathPrefixServesALibraryImage) {
    auto outcome = build_through_hub_mirror(m_dir.path(), "hub/library/mirrortest",
                                            "FROM docker.io/library/mirrortest:1");
    if (!outcome && outcome.error().message().starts_with("unshare"))
        GTEST_SKIP() << "no network namespace to keep docker.io unreachable: " << outcome.error().message();
    ASSERT_TRUE(outcome) << outcome.error().message();
    ASSERT_EQ(outcome->run.exit_code, 0) << outcome->run.output;
    EXPECT_NE(outcome->run.output.find(
                  str_cat("pulling from ", outcome->mirror_host_port, "/hub/library/mirrortest")),
              std::string::npos)
        << outcome->run.output;
    auto image = read_layout_image(m_dir.path() + "/out");
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(first_layer(*image), outcome->layer_digest);
}

TEST_F(RegistryRoutesTest, DockerHubMirrorServesAShortNameAsLibrary) {
    auto outcome = build_through_hub_mirror(m_dir.path(), "hub/library/shortname", "FROM shortname:1");
    if (!outcome && outcome.error().message().starts_with("unshare"))
        GTEST_SKIP() << "no network namespace to keep docker.io unreachable: " << outcome.error().message();
    ASSERT_TRUE(outcome) << outcome.error().message();
    ASSERT_EQ(outcome->run.exit_code, 0) << outcome->run.output;
    auto image = read_layout_image(m_dir.path() + "/out");
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(first_layer(*image), outcome->layer_digest);
}

// ---------------------------------------------------------------------------------------------------------------
// Platform selection: the same three platforms as an OCI index and as a Docker manifest list.

class RegistryPlatformTest : public RouteFixture<RegistryPlatformTest>,
                             public ::testing::WithParamInterface<ManifestFormat> {
protected:
    static void SetUpTestSuite() {
        start_suite(1);
        if (!s_shared) return;
        for (ManifestFormat format : {ManifestFormat::oci, ManifestFormat::docker}) {
            auto layers = push_platform_index(registry(0), repository(format), "1", format);
            ASSERT_TRUE(layers) << layers.error().message();
            s_layers[format] = std::move(*layers);
        }
    }
    static void TearDownTestSuite() {
        stop_suite();
        s_layers.clear();
    }

    static std::string repository(ManifestFormat format) {
        return format == ManifestFormat::oci ? "platforms/oci-index" : "platforms/docker-list";
    }
    std::string base() const { return str_cat(registry(0).host_port(), "/", repository(GetParam()), ":1"); }
    const std::string& layer_for(const std::string& platform) const {
        return s_layers.at(GetParam()).at(platform);
    }

    KilnRun build(const std::string& from_line, const std::vector<std::string>& extra = {}) {
        std::string context = make_context(m_dir.path(), from_line + "\nCOPY note /note\n");
        std::vector<std::string> args = {"build",
                                         "--context",
                                         context,
                                         "--insecure-pull",
                                         "--no-push",
                                         "--oci-layout-path",
                                         m_dir.path() + "/out"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_kiln(args);
    }

    static inline std::map<ManifestFormat, std::map<std::string, std::string>> s_layers;
};

TEST_P(RegistryPlatformTest, FromPlatformWithAVariantPicksThatManifest) {
    KilnRun run = build("FROM --platform=linux/arm64/v8 " + base());
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto image = read_layout_image(m_dir.path() + "/out");
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(first_layer(*image), layer_for("linux/arm64/v8"));
}

TEST_P(RegistryPlatformTest, CustomPlatformPicksTheManifestForAPlainFromAndSetsTheResultsPlatform) {
    KilnRun run = build("FROM " + base(), {"--custom-platform=linux/arm/v7"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto image = read_layout_image(m_dir.path() + "/out");
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(first_layer(*image), layer_for("linux/arm/v7"));
    EXPECT_EQ(image->config.value("os", ""), "linux");
    EXPECT_EQ(image->config.value("architecture", ""), "arm");
    EXPECT_EQ(image->config.value("variant", ""), "v7");
}

TEST_P(RegistryPlatformTest, AnUnofferedPlatformFailsListingTheOfferedOnes) {
    KilnRun run = build("FROM --platform=linux/s390x " + base());
    ASSERT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("linux/s390x"), std::string::npos) << run.output;
    for (const PlatformSpec& offered : k_offered_platforms)
        EXPECT_NE(run.output.find(offered.str()), std::string::npos) << offered.str() << " not listed:\n"
                                                                     << run.output;
}

INSTANTIATE_TEST_SUITE_P(RegistryPlatform, RegistryPlatformTest,
                         ::testing::Values(ManifestFormat::oci, ManifestFormat::docker),
                         [](const ::testing::TestParamInfo<ManifestFormat>& param_info) {
                             return param_info.param == ManifestFormat::oci ? "OciIndex"
                                                                            : "DockerManifestList";
                         });

// ---------------------------------------------------------------------------------------------------------------
// Several destinations, on registries A and B, from one build run once for the suite.

class RegistryDestinationsTest : public RouteFixture<RegistryDestinationsTest> {
protected:
    static void SetUpTestSuite() {
        start_suite(2);
        if (!s_shared) return;
        std::string dir = s_shared->work->path() + "/destinations";
        ASSERT_TRUE(make_directories(dir));
        std::string context = make_context(dir, "FROM scratch\nCOPY note /note\nCOPY note /again/note\n",
                                           "pushed to three places\n");
        s_digest_file = new std::string(dir + "/digest");
        s_run = new KilnRun(
            run_kiln({"build", "--context", context, "--insecure", "--digest-file", *s_digest_file,
                      "--destination", a_reference("dest/one:v1"), "--destination",
                      a_reference("dest/two:v1"), "--destination", b_reference("dest/three:v1")}));
    }
    static void TearDownTestSuite() {
        stop_suite();
        delete s_run;
        delete s_digest_file;
        s_run = nullptr;
        s_digest_file = nullptr;
    }
    void SetUp() override {
        RouteFixture<RegistryDestinationsTest>::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ASSERT_NE(s_run, nullptr);
    }

    static std::string a_reference(const std::string& name) { return registry(0).host_port() + "/" + name; }
    static std::string b_reference(const std::string& name) { return registry(1).host_port() + "/" + name; }

    // The blobs of the image (layers and config) as listed by the registry.
    static Result<std::vector<std::string>> blob_digests(const std::string& reference) {
        KILN_ASSIGN(nlohmann::json inspected, inspect_remote(reference));
        std::vector<std::string> blobs;
        for (const auto& layer : inspected["Layers"]) blobs.push_back(layer.get<std::string>());
        KILN_ASSIGN(std::string raw,
                    run_tool({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + reference}));
        nlohmann::json manifest = nlohmann::json::parse(raw, nullptr, false);
        if (manifest.is_discarded()) return fail("no manifest JSON for " + reference);
        blobs.push_back(manifest["config"]["digest"].get<std::string>());
        return blobs;
    }

    static inline KilnRun* s_run = nullptr;
    static inline std::string* s_digest_file = nullptr;
};

TEST_F(RegistryDestinationsTest, EveryDestinationHoldsTheDigestOfTheDigestFile) {
    ASSERT_EQ(s_run->exit_code, 0) << s_run->output;
    auto digest = read_file(*s_digest_file, 1 << 10);
    ASSERT_TRUE(digest) << digest.error().message();
    for (const std::string& reference :
         {a_reference("dest/one:v1"), a_reference("dest/two:v1"), b_reference("dest/three:v1")}) {
        auto inspected = inspect_remote(reference);
        ASSERT_TRUE(inspected) << inspected.error().message();
        EXPECT_EQ((*inspected)["Digest"].get<std::string>(), std::string(trim(*digest))) << reference;
    }
}

TEST_F(RegistryDestinationsTest, TheSecondRepositoryOfARegistryMountsEveryBlobFromTheFirst) {
    ASSERT_EQ(s_run->exit_code, 0) << s_run->output;
    auto blobs = blob_digests(a_reference("dest/two:v1"));
    ASSERT_TRUE(blobs) << blobs.error().message();
    ASSERT_EQ(blobs->size(), 3u);  // two layers and the config
    for (const std::string& blob : *blobs) {
        std::string short_digest = blob.substr(0, std::string("sha256:").size() + 12);
        bool mounted = false;
        for (const std::string& line : split(s_run->output, '\n'))
            mounted |= line.starts_with("mounted ") && line.find(short_digest) != std::string::npos &&
                       line.find(a_reference("dest/two")) != std::string::npos &&
                       line.find("from dest/one") != std::string::npos;
        EXPECT_TRUE(mounted) << blob << " was not mounted into dest/two from dest/one:\n" << s_run->output;
    }
    EXPECT_EQ(blob_uploads(registry(0), "dest/two"), 0u) << registry(0).log();
}

TEST_F(RegistryDestinationsTest, EachRegistryReceivesEveryBlobExactlyOnce) {
    ASSERT_EQ(s_run->exit_code, 0) << s_run->output;
    EXPECT_EQ(blob_uploads(registry(0), "dest/one"), 3u) << registry(0).log();
    EXPECT_EQ(blob_uploads(registry(0), "dest/two"), 0u) << registry(0).log();
    EXPECT_EQ(blob_uploads(registry(1), "dest/three"), 3u) << registry(1).log();
}

TEST_F(RegistryDestinationsTest, TransferJobsOneAndEightPushTheSameImage) {
    std::string dockerfile = "FROM scratch\n";
    std::string context = make_context(m_dir.path(), "");
    for (int i = 0; i < 6; ++i) {
        std::string name = str_cat("part-", i);
        ASSERT_TRUE(
            write_file_atomic(context + "/" + name, std::string(256 << 10, static_cast<char>('a' + i))));
        dockerfile += str_cat("COPY ", name, " /parts/", name, "\n");
    }
    ASSERT_TRUE(write_file_atomic(context + "/Dockerfile", dockerfile));
    std::map<std::string, std::string> digests;
    for (const std::string jobs : {"1", "8"}) {
        std::string digest_file = str_cat(m_dir.path(), "/digest-", jobs);
        KilnRun run = run_kiln({"build", "--context", context, "--insecure", "--reproducible",
                                "--transfer-jobs=" + jobs, "--digest-file", digest_file, "--destination",
                                a_reference("jobs/j" + jobs + ":1")});
        ASSERT_EQ(run.exit_code, 0) << "--transfer-jobs=" << jobs << ":\n" << run.output;
        EXPECT_EQ(blob_uploads(registry(0), "jobs/j" + jobs), 7u) << "six layers and the config, uploaded";
        auto inspected = inspect_remote(a_reference("jobs/j" + jobs + ":1"));
        ASSERT_TRUE(inspected) << inspected.error().message();
        digests[jobs] = (*inspected)["Digest"].get<std::string>();
        auto written = read_file(digest_file, 1 << 10);
        ASSERT_TRUE(written) << written.error().message();
        EXPECT_EQ(std::string(trim(*written)), digests[jobs]);
    }
    EXPECT_EQ(digests["1"], digests["8"]);
}

}  // namespace
}  // namespace kiln::test
