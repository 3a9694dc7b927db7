#include "tests/support/test_image.hpp"

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"

namespace kiln::test {
namespace {

// The architecture kiln resolves by default, so that a FROM of the test image needs no --custom-platform.
const char* host_architecture() {
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#else
#error "test images: add this host's OCI architecture name"
#endif
}

// Stores `bytes` as a blob of the layout and returns its digest.
Result<std::string> put_blob(const std::string& layout, const std::string& bytes) {
    std::string hex = sha256_hex(bytes);
    KILN_TRY(write_file_atomic(layout + "/blobs/sha256/" + hex, bytes));
    return "sha256:" + hex;
}

// gzip without a name or timestamp (-n), so that the same tar always gives the same blob.
Result<std::string> gzip(const std::string& tar) {
    KILN_ASSIGN(ProcessResult result, run_process({"gzip", "-n", "-c"}, {.stdin_bytes = tar}));
    if (result.exit_code != 0)
        return fail(str_cat("gzip exited with ", result.exit_code, ": ", result.stderr_bytes));
    return std::move(result.stdout_bytes);
}

}  // namespace

Result<TestImage> write_test_image(const std::string& layout, const std::string& tag,
                                   const std::vector<std::string>& layers) {
    KILN_TRY(make_directories(layout + "/blobs/sha256"));
    KILN_TRY(write_file_atomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    TestImage image;
    nlohmann::json diff_ids = nlohmann::json::array();
    nlohmann::json layer_descriptors = nlohmann::json::array();
    nlohmann::json history = nlohmann::json::array();
    for (const std::string& tar : layers) {
        KILN_ASSIGN(std::string compressed, gzip(tar));
        KILN_ASSIGN(std::string digest, put_blob(layout, compressed));
        diff_ids.push_back("sha256:" + sha256_hex(tar));
        layer_descriptors.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                     {"digest", digest},
                                     {"size", compressed.size()}});
        history.push_back({{"created", "1970-01-01T00:00:00Z"}, {"created_by", "hand-built test layer"}});
        image.layer_digests.push_back(digest);
    }
    nlohmann::json config = {{"architecture", host_architecture()},
                             {"os", "linux"},
                             {"created", "1970-01-01T00:00:00Z"},
                             {"config", nlohmann::json::object()},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                             {"history", history}};
    std::string config_bytes = config.dump();
    KILN_ASSIGN(std::string config_digest, put_blob(layout, config_bytes));
    nlohmann::json manifest = {{"schemaVersion", 2},
                               {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                               {"config",
                                {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                 {"digest", config_digest},
                                 {"size", config_bytes.size()}}},
                               {"layers", layer_descriptors}};
    std::string manifest_bytes = manifest.dump();
    KILN_ASSIGN(image.manifest_digest, put_blob(layout, manifest_bytes));
    // One image per layout keeps the index trivially right; a second call replaces the first tag.
    nlohmann::json index = {{"schemaVersion", 2},
                            {"mediaType", "application/vnd.oci.image.index.v1+json"},
                            {"manifests",
                             {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                               {"digest", image.manifest_digest},
                               {"size", manifest_bytes.size()},
                               {"annotations", {{"org.opencontainers.image.ref.name", tag}}}}}}};
    KILN_TRY(write_file_atomic(layout + "/index.json", index.dump()));
    return image;
}

Status push_layout(const std::string& layout, const std::string& tag, const std::string& reference) {
    // --preserve-digests: the test names the layer digests it built, so skopeo must not recompress.
    KILN_ASSIGN(ProcessResult result,
                run_process({"skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                             "oci:" + layout + ":" + tag, "docker://" + reference}));
    if (result.exit_code != 0)
        return fail(str_cat("skopeo copy to ", reference, " exited with ", result.exit_code, ": ",
                            result.stderr_bytes));
    return {};
}

}  // namespace kiln::test
