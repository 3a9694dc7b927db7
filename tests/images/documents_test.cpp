// Descriptor, Manifest and Index: parse → serialize → parse, canonical bytes, and rejection of bad documents.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "images/descriptor.hpp"
#include "images/index.hpp"
#include "images/manifest.hpp"
#include "images/media_type.hpp"

namespace kiln {
namespace {

const std::string k_config_digest = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7";
const std::string k_layer_digest = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0";

Descriptor make_descriptor(std::string_view type, const std::string& digest, std::int64_t size) {
    return Descriptor{.media_type = std::string(type), .digest = *Digest::parse(digest), .size = size};
}

Manifest full_manifest() {
    Manifest manifest;
    manifest.media_type = media_type::oci_manifest;
    manifest.artifact_type = "application/vnd.example.sbom.v1";
    manifest.config = make_descriptor(media_type::oci_config, k_config_digest, 7023);
    Descriptor layer = make_descriptor(media_type::oci_layer_gzip, k_layer_digest, 32654);
    layer.annotations["org.example.note"] = "ü and \"quotes\"";
    layer.urls = {"https://example.com/layer"};
    manifest.layers = {layer, make_descriptor(media_type::oci_layer_zstd, k_config_digest, 1)};
    manifest.subject = make_descriptor(media_type::oci_manifest, k_layer_digest, 7682);
    manifest.subject->data = "e30=";
    manifest.annotations = {{"b", "2"}, {"a", "1"}};
    return manifest;
}

Index full_index() {
    Index index;
    index.media_type = media_type::oci_index;
    index.artifact_type = "application/vnd.example.set.v1";
    Descriptor amd64 = make_descriptor(media_type::oci_manifest, k_config_digest, 7143);
    amd64.platform = Platform{.os = "linux", .architecture = "amd64"};
    Descriptor arm = make_descriptor(media_type::oci_manifest, k_layer_digest, 7682);
    arm.platform = Platform{.os = "linux", .architecture = "arm", .variant = "v7"};
    arm.annotations["org.opencontainers.image.ref.name"] = "v1.0";
    index.manifests = {amd64, arm};
    index.subject = make_descriptor(media_type::oci_manifest, k_layer_digest, 7682);
    index.annotations = {{"com.example.key1", "value1"}};
    return index;
}

TEST(DescriptorJson, RoundTripsEveryField) {
    Descriptor descriptor = make_descriptor("application/vnd.oci.empty.v1+json", k_config_digest, 2);
    descriptor.urls = {"https://example.com/a"};
    descriptor.annotations = {{"k", "v"}};
    descriptor.platform = Platform{.os = "linux", .architecture = "arm64", .variant = "v8"};
    descriptor.artifact_type = "application/vnd.example+type";
    descriptor.data = "e30=";
    auto parsed = Descriptor::from_json(descriptor.to_json());
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(*parsed, descriptor);
}

TEST(ManifestParse, RoundTripsEveryField) {
    Manifest manifest = full_manifest();
    auto parsed = Manifest::parse(manifest.serialize());
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(*parsed, manifest);
}

TEST(ManifestSerialize, IsCanonicalAndByteStable) {
    Manifest manifest;
    manifest.media_type = media_type::oci_manifest;
    manifest.config = make_descriptor(media_type::oci_config, k_config_digest, 7023);
    manifest.layers = {make_descriptor(media_type::oci_layer_gzip, k_layer_digest, 32654)};
    const std::string expected =
        R"({"config":{"digest":")" + k_config_digest +
        R"(","mediaType":"application/vnd.oci.image.config.v1+json","size":7023},"layers":[{"digest":")" +
        k_layer_digest +
        R"(","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":32654}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2})";
    EXPECT_EQ(manifest.serialize(), expected);
    // Whitespace and key order in the input do not change the output.
    nlohmann::json pretty = nlohmann::json::parse(expected);
    auto reparsed = Manifest::parse(pretty.dump(4));
    ASSERT_TRUE(reparsed);
    EXPECT_EQ(reparsed->serialize(), expected);
}

TEST(ManifestSerialize, KeepsAnEmptyLayerList) {
    Manifest manifest;
    manifest.config = make_descriptor(media_type::oci_config, k_config_digest, 2);
    std::string bytes = manifest.serialize();
    EXPECT_NE(bytes.find(R"("layers":[])"), std::string::npos) << bytes;
    auto parsed = Manifest::parse(bytes);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_TRUE(parsed->layers.empty());
}

TEST(IndexParse, RoundTripsEveryField) {
    Index index = full_index();
    auto parsed = Index::parse(index.serialize());
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(*parsed, index);
    EXPECT_EQ(parsed->serialize(), index.serialize());
}

struct BadDocument {
    const char* why;
    std::string bytes;
    const char* message;  // a part of the error
};

std::string manifest_with(const std::string& config, const std::string& extra = "") {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)" + extra +
           R"("config":)" + config + R"(,"layers":[]})";
}

TEST(ManifestParse, RejectsInvalidDocumentsWithAMessage) {
    const std::string good_config =
        R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + k_config_digest + R"(","size":2})";
    const BadDocument cases[] = {
        {"non-JSON", "{\"schemaVersion\": 2,", "not valid JSON"},
        {"not an object", "[1,2]", "not a JSON object"},
        {"schemaVersion 1", R"({"schemaVersion":1,"config":)" + good_config + "}", "schemaVersion 1"},
        {"no schemaVersion", R"({"config":)" + good_config + "}", "schemaVersion 0"},
        {"missing config", R"({"schemaVersion":2,"layers":[]})", "no config"},
        {"bad config digest",
         manifest_with(R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:abc","size":2})"),
         "invalid digest"},
        {"negative size",
         manifest_with(R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + k_config_digest +
                       R"(","size":-1})"),
         "negative size"},
        {"string size",
         manifest_with(R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + k_config_digest +
                       R"(","size":"2"})"),
         "size"},
        {"malformed config mediaType",
         manifest_with(R"({"mediaType":"invalid","digest":")" + k_config_digest + R"(","size":2})"),
         "mediaType"},
        {"layers not an array", R"({"schemaVersion":2,"config":)" + good_config + R"(,"layers":{}})", "not an array"},
        {"subject not a descriptor", manifest_with(good_config, R"("subject":".nope",)"), "not a JSON object"},
    };
    for (const BadDocument& c : cases) {
        auto parsed = Manifest::parse(c.bytes);
        ASSERT_FALSE(parsed) << c.why;
        EXPECT_NE(parsed.error().message().find(c.message), std::string::npos)
            << c.why << ": " << parsed.error().message();
    }
    auto index_typed = Manifest::parse(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                                       R"("config":)" + good_config + "}");
    ASSERT_FALSE(index_typed);
    EXPECT_NE(index_typed.error().message().find("not an image manifest"), std::string::npos);
}

TEST(IndexParse, RejectsInvalidDocumentsWithAMessage) {
    const BadDocument cases[] = {
        {"non-JSON", "nope", "not valid JSON"},
        {"schemaVersion 3", R"({"schemaVersion":3,"manifests":[]})", "schemaVersion 3"},
        {"no manifests", R"({"schemaVersion":2})", "no manifests"},
        {"a manifest media type", R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]})",
         "not an image index"},
        {"entry without digest",
         R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1}]})",
         "digest"},
        {"platform without architecture",
         R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":")" +
             k_config_digest + R"(","platform":{"os":"linux"}}]})",
         "architecture"},
        {"empty entry media type",
         R"({"schemaVersion":2,"manifests":[{"mediaType":"","size":1,"digest":")" + k_config_digest + R"("}]})",
         "mediaType"},
    };
    for (const BadDocument& c : cases) {
        auto parsed = Index::parse(c.bytes);
        ASSERT_FALSE(parsed) << c.why;
        EXPECT_NE(parsed.error().message().find(c.message), std::string::npos)
            << c.why << ": " << parsed.error().message();
    }
}

TEST(IndexSelect, PicksTheManifestForThePlatform) {
    Index index = full_index();
    auto arm = index.select(*Platform::parse("linux/arm/v7"));
    ASSERT_TRUE(arm) << arm.error().message();
    EXPECT_EQ(arm->digest.str(), k_layer_digest);
    auto amd64 = index.select(*Platform::parse("linux/x86_64"));
    ASSERT_TRUE(amd64) << amd64.error().message();
    EXPECT_EQ(amd64->digest.str(), k_config_digest);
}

TEST(IndexSelect, SkipsEntriesThatAreNotImageManifests) {
    Index index = full_index();
    Descriptor nested = make_descriptor(media_type::oci_index, k_layer_digest, 10);
    nested.platform = Platform{.os = "linux", .architecture = "s390x"};
    index.manifests.insert(index.manifests.begin(), nested);
    EXPECT_FALSE(index.select(*Platform::parse("linux/s390x")));
}

TEST(IndexSelect, ErrorListsTheOfferedPlatforms) {
    auto missing = full_index().select(*Platform::parse("linux/ppc64le"));
    ASSERT_FALSE(missing);
    const std::string& message = missing.error().message();
    EXPECT_NE(message.find("linux/ppc64le"), std::string::npos) << message;
    EXPECT_NE(message.find("linux/amd64, linux/arm/v7"), std::string::npos) << message;
}

TEST(CanonicalJson, SortsKeysAndDropsWhitespace) {
    auto json = parse_json_document(R"({ "b" : [1, 2], "a" : {"d": "é", "c": null} })", "test");
    ASSERT_TRUE(json);
    EXPECT_EQ(canonical_json(*json), R"({"a":{"c":null,"d":"é"},"b":[1,2]})");
}

}  // namespace
}  // namespace kiln
