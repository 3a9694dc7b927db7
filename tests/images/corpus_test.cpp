// The image-spec vectors in ../shared/corpora/oci-image-spec-schema (corpora README, section 4), run through
// the parser that matches each vector's media type.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "image_fixtures.hpp"
#include "images/descriptor.hpp"
#include "images/image_config.hpp"
#include "images/index.hpp"
#include "images/manifest.hpp"

namespace kiln {
namespace {

// expect_fail vectors that kiln accepts on purpose. kiln reads base images and registry documents, and refusing
// what Docker and registries accept would make it fail builds that Docker completes.
const std::map<std::pair<std::string, int>, std::string> k_accepted_on_purpose = {
    {{"manifest.json", 5}, "an empty layer list: FROM scratch images with only metadata have one"},
    {{"config.json", 9}, "an Env entry without '=': Docker accepts it and kiln does not interpret it"},
    {{"descriptor.json", 17}, "a url that is not an absolute URI: kiln never fetches descriptor urls"},
};

std::string vectors_dir() {
    std::string corpora = testing::corpora_dir();
    return corpora.empty() ? "" : corpora + "/oci-image-spec-schema/vectors";
}

nlohmann::json load_vectors(const std::string& name) {
    auto bytes = read_file(vectors_dir() + "/" + name);
    if (!bytes) return nlohmann::json::array();
    return nlohmann::json::parse(*bytes);
}

// Parses `document` as `media_type` says and reports the parser's error, if any. A parsed document must also
// survive serialize → parse unchanged.
Status parse_as(std::string_view media_type, const std::string& document) {
    if (media_type == "application/vnd.oci.image.manifest.v1+json") {
        KILN_ASSIGN(Manifest manifest, Manifest::parse(document));
        KILN_ASSIGN(Manifest again, Manifest::parse(manifest.serialize()));
        if (!(again == manifest)) return fail("manifest changed in a round trip");
        return {};
    }
    if (media_type == "application/vnd.oci.image.index.v1+json") {
        KILN_ASSIGN(Index index, Index::parse(document));
        KILN_ASSIGN(Index again, Index::parse(index.serialize()));
        if (!(again == index)) return fail("index changed in a round trip");
        return {};
    }
    if (media_type == "application/vnd.oci.image.config.v1+json") {
        KILN_ASSIGN(ImageConfig config, ImageConfig::parse(document));
        KILN_ASSIGN(ImageConfig again, ImageConfig::parse(config.serialize()));
        if (!(again == config)) return fail("config changed in a round trip");
        return {};
    }
    if (media_type == "application/vnd.oci.descriptor.v1+json") {
        KILN_ASSIGN(nlohmann::json json, parse_json_document(document, "descriptor"));
        KILN_ASSIGN(Descriptor descriptor, Descriptor::from_json(json));
        KILN_ASSIGN(Descriptor again, Descriptor::from_json(descriptor.to_json()));
        if (!(again == descriptor)) return fail("descriptor changed in a round trip");
        return {};
    }
    if (media_type == "application/vnd.oci.layout.header.v1+json") {
        // kiln reads the layout header only to check its version, which OciLayout tests cover.
        KILN_ASSIGN(nlohmann::json json, parse_json_document(document, "oci-layout"));
        if (!json.contains("imageLayoutVersion") || !json["imageLayoutVersion"].is_string())
            return fail("no imageLayoutVersion string");
        return {};
    }
    return fail(str_cat("no parser for ", media_type));
}

class CorpusTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (vectors_dir().empty() || !path_exists(vectors_dir()))
            GTEST_SKIP() << "the image-spec corpus is not at " << KILN_SOURCE_DIR "/../shared/corpora";
    }
};

TEST_F(CorpusTest, EverySpecExampleParsesWithItsParser) {
    nlohmann::json vectors = load_vectors("spec_examples.json");
    ASSERT_EQ(vectors.size(), 10u);
    for (const auto& vector : vectors) {
        std::string type = vector["validator_media_type"];
        auto status = parse_as(type, vector["document"].get<std::string>());
        EXPECT_TRUE(status) << vector["source"] << " " << vector["title"] << ": " << status.error().message();
    }
}

TEST_F(CorpusTest, DockerDocumentsParseAndHashToTheirRecordedDigest) {
    nlohmann::json vectors = load_vectors("backwards_compatibility.json");
    ASSERT_EQ(vectors.size(), 4u);
    for (const auto& vector : vectors) {
        std::string document = vector["document"];
        std::string kind = vector["kind"];
        EXPECT_EQ(Digest::of_bytes(document).str(), vector["sha256_of_document"].get<std::string>()) << kind;
        // kiln's parsers take Docker's media types as they are, with no replacement.
        std::string type = kind == "manifest" ? "application/vnd.oci.image.manifest.v1+json"
                           : kind == "config" ? "application/vnd.oci.image.config.v1+json"
                                              : "application/vnd.oci.image.index.v1+json";
        auto status = parse_as(type, document);
        EXPECT_TRUE(status) << vector["index"] << " " << kind << ": " << status.error().message();
    }
}

TEST_F(CorpusTest, DockerConfigKeepsItsHistoryAndRunConfig) {
    nlohmann::json vectors = load_vectors("backwards_compatibility.json");
    ASSERT_EQ(vectors.size(), 4u);
    auto config = ImageConfig::parse(vectors[2]["document"].get<std::string>());
    ASSERT_TRUE(config) << config.error().message();
    EXPECT_EQ(config->created, "2016-10-10T23:04:00.821781828Z");
    EXPECT_EQ(config->config.entrypoint, std::vector<std::string>{"docker-entrypoint.sh"});
    EXPECT_EQ(config->config.cmd, std::vector<std::string>{"sh"});
    EXPECT_EQ(config->config.env_value("DOCKER_VERSION"), "1.12.1");
    ASSERT_EQ(config->history.size(), 9u);
    EXPECT_TRUE(config->history[2].empty_layer);
    // History entries without empty_layer each own one layer.
    size_t layered = 0;
    for (const History& entry : config->history) layered += entry.empty_layer ? 0 : 1;
    EXPECT_EQ(config->diff_ids.size(), layered);
}

TEST_F(CorpusTest, ValidVectorsParseAndInvalidOnesAreRejected) {
    for (const char* file : {"manifest.json", "config.json", "imageindex.json", "descriptor.json", "imagelayout.json"}) {
        nlohmann::json vectors = load_vectors(file);
        ASSERT_FALSE(vectors.empty()) << file;
        for (const auto& vector : vectors) {
            int index = vector["index"];
            std::string comment = vector["comment"];
            auto status = parse_as(vector["validator_media_type"].get<std::string>(), vector["document"]);
            bool expect_fail = vector["expect_fail"];
            if (!expect_fail) {
                EXPECT_TRUE(status) << file << " #" << index << " (" << comment << "): " << status.error().message();
            } else if (k_accepted_on_purpose.contains({file, index})) {
                EXPECT_TRUE(status) << file << " #" << index << " is accepted on purpose: "
                                    << k_accepted_on_purpose.at({file, index});
            } else {
                EXPECT_FALSE(status) << file << " #" << index << " (" << comment << ") must be rejected";
            }
        }
    }
}

}  // namespace
}  // namespace kiln
