// RegistryClient against a real registry process (Debian's docker-registry) on 127.0.0.1.
#include "registry/client.hpp"

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "images/index.hpp"
#include "tests/registry/live_registry.hpp"
#include "tests/registry/test_image.hpp"
#include "tests/support/random_bytes.hpp"

namespace kiln {
namespace {

using test::describe;
using test::make_test_image;
using test::pseudo_random_bytes;
using test::TestImage;

// A source that must not be read: pushing from it proves the upload was skipped.
class UnreadableReader final : public Reader {
public:
    Result<size_t> read(char*, size_t) override { return fail("the source was read"); }
};

Platform platform(std::string_view text) { return Platform::parse(text).value(); }

using RegistryClientIntegrationTest = test::LiveRegistryTest;

TEST_F(RegistryClientIntegrationTest, PushedBlobIsFoundByHead) {
    Reference repository = reference("team/blobs");
    std::string bytes = "layer bytes for a HEAD";
    Descriptor blob = describe(media_type::oci_layer, bytes);
    auto before = m_client->blob_exists(repository, blob.digest);
    ASSERT_TRUE(before) << before.error().message();
    EXPECT_FALSE(*before);
    StringReader source(bytes);
    auto pushed = m_client->push_blob(repository, blob, source);
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(*pushed, BlobPush::uploaded);
    auto after = m_client->blob_exists(repository, blob.digest);
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_TRUE(*after);
}

TEST_F(RegistryClientIntegrationTest, PushSkipsABlobTheRegistryHas) {
    Reference repository = reference("team/blobs");
    // Larger than any document limit: the HEAD must not mistake the blob's size for a body to capture.
    std::string bytes = pseudo_random_bytes(1 << 20);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    ASSERT_TRUE(m_client->push_blob(repository, blob, source));
    UnreadableReader unreadable;
    auto again = m_client->push_blob(repository, blob, unreadable);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, BlobPush::already_present);
}

TEST_F(RegistryClientIntegrationTest, ASmallBlobAtHandIsSentWithoutAskingWhetherTheRegistryHasIt) {
    Reference repository = reference("team/blobs");
    std::string small = pseudo_random_bytes(RegistryClient::k_send_unasked_size);
    std::string large = pseudo_random_bytes(RegistryClient::k_send_unasked_size + 1);
    for (const std::string* bytes : {&small, &large}) {
        Descriptor blob = describe(media_type::oci_layer, *bytes);
        BlobOpener open = [bytes]() -> Result<std::unique_ptr<Reader>> { return std::make_unique<StringReader>(*bytes); };
        ASSERT_TRUE(m_client->push_blob(repository, blob, open));
        // Present already: only the small one at hand is sent again (no HEAD found it there).
        auto at_hand = m_client->push_blob(repository, blob, open, std::nullopt, BlobBytes::at_hand);
        ASSERT_TRUE(at_hand) << at_hand.error().message();
        EXPECT_EQ(*at_hand, bytes == &small ? BlobPush::uploaded : BlobPush::already_present) << bytes->size();
        auto fetched_on_read = m_client->push_blob(repository, blob, open);
        ASSERT_TRUE(fetched_on_read) << fetched_on_read.error().message();
        EXPECT_EQ(*fetched_on_read, BlobPush::already_present) << bytes->size();
    }
}

TEST_F(RegistryClientIntegrationTest, FetchedBlobIsVerifiedAndComplete) {
    Reference repository = reference("team/blobs");
    std::string bytes = pseudo_random_bytes(3 << 20);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    ASSERT_TRUE(m_client->push_blob(repository, blob, source));
    StringWriter sink;
    auto fetched = m_client->fetch_blob(repository, blob, sink);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_TRUE(sink.bytes() == bytes);
}

TEST_F(RegistryClientIntegrationTest, ManifestPushedByTagIsFetchedByTagAndByDigest) {
    TestImage image = make_test_image(platform("linux/amd64"), "layer one");
    Reference tagged = reference("team/app:v1");
    auto pushed = test::push_test_image(*m_client, tagged, image);
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(*pushed, image.manifest.digest);

    auto by_tag = m_client->get_manifest(tagged);
    ASSERT_TRUE(by_tag) << by_tag.error().message();
    EXPECT_EQ(by_tag->bytes, image.manifest_bytes);
    EXPECT_EQ(by_tag->media_type, media_type::oci_manifest);
    EXPECT_EQ(by_tag->digest, image.manifest.digest);

    auto by_digest = m_client->get_manifest(reference("team/app").with_digest(*pushed));
    ASSERT_TRUE(by_digest) << by_digest.error().message();
    EXPECT_EQ(by_digest->bytes, image.manifest_bytes);
}

TEST_F(RegistryClientIntegrationTest, ResolveImageOfASingleManifestFetchesItsConfig) {
    TestImage image = make_test_image(platform("linux/amd64"), "single layer");
    Reference tagged = reference("team/single:1");
    ASSERT_TRUE(test::push_test_image(*m_client, tagged, image));
    auto resolved = m_client->resolve_image(tagged, platform("linux/amd64"));
    ASSERT_TRUE(resolved) << resolved.error().message();
    EXPECT_EQ(resolved->manifest_digest, image.manifest.digest);
    EXPECT_EQ(resolved->reference.str(), tagged.str() + "@" + image.manifest.digest.str());
    EXPECT_EQ(resolved->config_bytes, image.config_bytes);
    ASSERT_EQ(resolved->manifest.layers.size(), 1u);
    EXPECT_EQ(resolved->manifest.layers[0].digest, image.layer.digest);
}

class IndexIntegrationTest : public RegistryClientIntegrationTest {
protected:
    void SetUp() override {
        RegistryClientIntegrationTest::SetUp();
        if (IsSkipped() || HasFailure()) return;
        m_tagged = reference("team/multi:latest");
        m_amd64 = make_test_image(platform("linux/amd64"), "amd64 layer");
        m_arm64 = make_test_image(platform("linux/arm64"), "arm64 layer");
        for (const TestImage* image : {&m_amd64, &m_arm64}) {
            Reference by_digest =
                Reference::parse(str_cat(m_registry->host_port(), "/team/multi@", image->manifest.digest.str())).value();
            auto pushed = test::push_test_image(*m_client, by_digest, *image);
            ASSERT_TRUE(pushed) << pushed.error().message();
        }
        Index index{.media_type = std::string(media_type::oci_index), .manifests = {m_amd64.manifest, m_arm64.manifest}};
        auto pushed = m_client->push_manifest(m_tagged, media_type::oci_index, index.serialize());
        ASSERT_TRUE(pushed) << pushed.error().message();
    }

    Reference m_tagged = Reference::parse("127.0.0.1:1/placeholder").value();
    TestImage m_amd64;
    TestImage m_arm64;
};

TEST_F(IndexIntegrationTest, ResolveImagePicksTheRequestedPlatform) {
    for (const auto& [wanted, image] : {std::pair{"linux/amd64", &m_amd64}, std::pair{"linux/arm64", &m_arm64}}) {
        auto resolved = m_client->resolve_image(m_tagged, platform(wanted));
        ASSERT_TRUE(resolved) << resolved.error().message();
        EXPECT_EQ(resolved->manifest_digest, image->manifest.digest) << wanted;
        EXPECT_EQ(resolved->config.architecture, image->manifest.platform->architecture) << wanted;
        EXPECT_EQ(resolved->reference.digest(), image->manifest.digest) << wanted;
    }
}

TEST_F(IndexIntegrationTest, MissingPlatformErrorListsTheOfferedOnes) {
    auto resolved = m_client->resolve_image(m_tagged, platform("linux/s390x"));
    ASSERT_FALSE(resolved);
    const std::string& message = resolved.error().message();
    EXPECT_NE(message.find("linux/s390x"), std::string::npos) << message;
    EXPECT_NE(message.find("linux/amd64"), std::string::npos) << message;
    EXPECT_NE(message.find("linux/arm64"), std::string::npos) << message;
}

TEST_F(RegistryClientIntegrationTest, MissingTagErrorNamesRegistryRepositoryAndStatus) {
    auto fetched = m_client->get_manifest(reference("nothing/here:missing"));
    ASSERT_FALSE(fetched);
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find("GET manifest nothing/here:missing from " + m_registry->host_port()), std::string::npos)
        << message;
    EXPECT_NE(message.find("HTTP 404"), std::string::npos) << message;
    EXPECT_NE(message.find("UNKNOWN"), std::string::npos) << message;  // the registry's own error code
    EXPECT_FALSE(fetched.error().retryable());
}

TEST_F(RegistryClientIntegrationTest, CorruptedBlobIsRefusedNamingItsDigest) {
    Reference repository = reference("team/blobs");
    std::string bytes = "the registry will corrupt this";
    Descriptor blob = describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    ASSERT_TRUE(m_client->push_blob(repository, blob, source));
    std::string corrupted = bytes;
    corrupted[0] ^= 1;
    ASSERT_TRUE(write_file_atomic(m_registry->blob_data_path(blob.digest.str()), corrupted));

    StringWriter sink;
    auto fetched = m_client->fetch_blob(repository, blob, sink);
    ASSERT_FALSE(fetched);
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find("blob " + blob.digest.str() + " from " + m_registry->host_port() + "/team/blobs failed "
                                                                                               "verification"),
              std::string::npos)
        << message;
}

TEST_F(RegistryClientIntegrationTest, ManifestFetchedByDigestWithOtherContentIsRefused) {
    TestImage image = make_test_image(platform("linux/amd64"), "layer");
    Reference tagged = reference("team/app:v1");
    ASSERT_TRUE(test::push_test_image(*m_client, tagged, image));
    Manifest other = Manifest::parse(image.manifest_bytes).value();
    other.annotations["tampered"] = "yes";
    std::string other_bytes = other.serialize();
    ASSERT_TRUE(write_file_atomic(m_registry->blob_data_path(image.manifest.digest.str()), other_bytes));

    auto fetched = m_client->get_manifest(tagged.with_digest(image.manifest.digest));
    ASSERT_FALSE(fetched);
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find(image.manifest.digest.str()), std::string::npos) << message;
    EXPECT_NE(message.find(Digest::of_bytes(other_bytes).str()), std::string::npos) << message;
}

TEST_F(RegistryClientIntegrationTest, ManifestByTagContradictingTheAnnouncedDigestIsRefused) {
    TestImage image = make_test_image(platform("linux/amd64"), "layer");
    Reference tagged = reference("team/app:v1");
    ASSERT_TRUE(test::push_test_image(*m_client, tagged, image));
    Manifest other = Manifest::parse(image.manifest_bytes).value();
    other.annotations["tampered"] = "yes";
    ASSERT_TRUE(write_file_atomic(m_registry->blob_data_path(image.manifest.digest.str()), other.serialize()));

    auto fetched = m_client->get_manifest(tagged);
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message().find(image.manifest.digest.str()), std::string::npos)
        << fetched.error().message();
}

TEST_F(RegistryClientIntegrationTest, MissingBlobErrorNamesDigestAndStatus) {
    Descriptor blob = describe(media_type::oci_layer, "never pushed");
    StringWriter sink;
    auto fetched = m_client->fetch_blob(reference("team/blobs"), blob, sink);
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message().find(blob.digest.str()), std::string::npos) << fetched.error().message();
    EXPECT_NE(fetched.error().message().find("HTTP 404"), std::string::npos) << fetched.error().message();
}

TEST_F(RegistryClientIntegrationTest, HttpsIsTheDefaultAndFailsAgainstAPlainHttpRegistry) {
    RegistryClient https_client;
    auto fetched = https_client.get_manifest(reference("team/app:v1"));
    ASSERT_FALSE(fetched);
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find(m_registry->host_port()), std::string::npos) << message;
    EXPECT_NE(message.find("TLS"), std::string::npos) << message;
}

// Distribution 2.8.2 neither stores nor serves a manifest over 4 MiB, so the refusal of a larger one is tested
// against a hostile server (RegistryClientHostileTest.ManifestOverFourMebibytesIsRefused); here, the other side of
// the boundary: a large manifest within the limit goes through.
TEST_F(RegistryClientIntegrationTest, ManifestJustUnderTheSizeLimitIsAccepted) {
    TestImage image = make_test_image(platform("linux/amd64"), "layer");
    Reference tagged = reference("team/big:v1");
    ASSERT_TRUE(test::push_test_blobs(*m_client, tagged, image));
    Manifest big = Manifest::parse(image.manifest_bytes).value();
    big.annotations["padding"] = std::string(RegistryClient::k_max_manifest_size - image.manifest_bytes.size() - 64, 'p');
    std::string big_bytes = big.serialize();
    ASSERT_LE(big_bytes.size(), RegistryClient::k_max_manifest_size);
    auto pushed = m_client->push_manifest(tagged, media_type::oci_manifest, big_bytes);
    ASSERT_TRUE(pushed) << pushed.error().message();

    auto fetched = m_client->get_manifest(tagged);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(fetched->digest, *pushed);
}

TEST_F(RegistryClientIntegrationTest, BlobLargerThanAChunkIsUploadedInChunksAndVerifies) {
    RegistryClientOptions options = m_client->options();
    options.upload_chunk_size = 1 << 20;
    RegistryClient chunking(options);
    Reference repository = reference("team/chunked");
    std::string bytes = pseudo_random_bytes((3 << 20) + 12345);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    auto pushed = chunking.push_blob(repository, blob, source);
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(*pushed, BlobPush::uploaded);
    EXPECT_NE(m_registry->log().find("PATCH"), std::string::npos);
    StringWriter sink;
    auto fetched = m_client->fetch_blob(repository, blob, sink);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_TRUE(sink.bytes() == bytes);
}

TEST_F(RegistryClientIntegrationTest, BlobInAnotherRepositoryIsMountedNotUploaded) {
    Reference base = reference("library/base");
    std::string bytes = pseudo_random_bytes(1 << 20);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    ASSERT_TRUE(m_client->push_blob(base, blob, source));

    Reference app = reference("team/app");
    auto pushed = m_client->push_blob(app, blob, []() -> Result<std::unique_ptr<Reader>> {
        return std::make_unique<UnreadableReader>();
    }, base);
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(*pushed, BlobPush::mounted);
    auto exists = m_client->blob_exists(app, blob.digest);
    ASSERT_TRUE(exists) << exists.error().message();
    EXPECT_TRUE(*exists);
}

TEST_F(RegistryClientIntegrationTest, MountFromARepositoryWithoutTheBlobFallsBackToAnUpload) {
    std::string bytes = pseudo_random_bytes(4096);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    Reference app = reference("team/app");
    auto pushed = m_client->push_blob(app, blob, [&]() -> Result<std::unique_ptr<Reader>> {
        return std::make_unique<StringReader>(bytes);
    }, reference("library/empty"));
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(*pushed, BlobPush::uploaded);
    StringWriter sink;
    ASSERT_TRUE(m_client->fetch_blob(app, blob, sink));
    EXPECT_TRUE(sink.bytes() == bytes);
}

TEST_F(RegistryClientIntegrationTest, PushPermissionCheckPassesAndLeavesNoBlob) {
    Reference app = reference("team/app:v1");
    auto checked = m_client->check_push_permission(app);
    ASSERT_TRUE(checked) << checked.error().message();
    // The probe's upload was cancelled: the registry logs the DELETE and the repository has no tags.
    EXPECT_NE(m_registry->log().find("DELETE"), std::string::npos);
    EXPECT_FALSE(m_client->get_manifest(app));
}

}  // namespace
}  // namespace kiln
