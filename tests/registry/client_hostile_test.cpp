// RegistryClient against a server that misbehaves on purpose (in this process, on 127.0.0.1): what a real
// registry will not do, a broken or hostile one may.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "common/strings.hpp"
#include "registry/client.hpp"
#include "tests/registry/test_image.hpp"
#include "tests/support/local_http_server.hpp"

namespace kiln {
namespace {

using test::LocalHttpServer;
using test::LocalRequest;
using test::LocalResponse;

class RegistryClientHostileTest : public ::testing::Test {
protected:
    void serve(test::LocalHandler handler) {
        auto server = LocalHttpServer::start(std::move(handler));
        ASSERT_TRUE(server) << server.error().message();
        m_server = std::move(*server);
        RegistryClientOptions options;
        options.plain_http.add(m_server->host_port());
        options.retry.window = std::chrono::milliseconds(100);
        m_client = std::make_unique<RegistryClient>(std::move(options));
    }
    Reference reference(std::string_view path) const {
        return Reference::parse(m_server->host_port() + "/" + std::string(path)).value();
    }

    std::unique_ptr<LocalHttpServer> m_server;
    std::unique_ptr<RegistryClient> m_client;
};

TEST_F(RegistryClientHostileTest, ManifestOverFourMebibytesIsRefused) {
    serve([](const LocalRequest&) {
        std::string padding((4 << 20) + 1, ' ');
        return LocalResponse{.headers = {{"Content-Type", std::string(media_type::oci_manifest)}},
                             .body = R"({"schemaVersion":2})" + padding};
    });
    auto fetched = m_client->get_manifest(reference("team/big:v1"));
    ASSERT_FALSE(fetched);
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find("GET manifest team/big:v1 from " + m_server->host_port()), std::string::npos) << message;
    EXPECT_NE(message.find("larger than the limit of 4194304 bytes"), std::string::npos) << message;
}

TEST_F(RegistryClientHostileTest, SchemaOneManifestAsksForARepush) {
    serve([](const LocalRequest&) {
        return LocalResponse{.headers = {{"Content-Type", std::string(media_type::docker_schema1_signed)}},
                             .body = R"({"schemaVersion":1,"name":"team/old","tag":"v1","fsLayers":[]})"};
    });
    auto fetched = m_client->get_manifest(reference("team/old:v1"));
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message().find("unsupported; re-push the image with a current client"),
              std::string::npos)
        << fetched.error().message();
}

TEST_F(RegistryClientHostileTest, MediaTypeFallsBackToTheDocument) {
    test::TestImage image = test::make_test_image(Platform::parse("linux/amd64").value(), "layer");
    serve([&](const LocalRequest&) {
        return LocalResponse{.headers = {{"Content-Type", "application/json"}}, .body = image.manifest_bytes};
    });
    auto fetched = m_client->get_manifest(reference("team/app:v1"));
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(fetched->media_type, media_type::oci_manifest);
}

TEST_F(RegistryClientHostileTest, BlobLongerThanItsDescriptorIsRefusedNamingItsDigest) {
    std::string bytes = "expected bytes";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    serve([&](const LocalRequest&) { return LocalResponse{.body = bytes + std::string(1 << 20, 'x')}; });
    StringWriter sink;
    auto fetched = m_client->fetch_blob(reference("team/app"), blob, sink);
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message().find("blob " + blob.digest.str() + " from " + m_server->host_port() +
                                             "/team/app failed verification"),
              std::string::npos)
        << fetched.error().message();
    EXPECT_LE(sink.bytes().size(), bytes.size());
}

TEST_F(RegistryClientHostileTest, ServiceUnavailableIsRetriedOnce) {
    std::atomic<int> calls = 0;
    test::TestImage image = test::make_test_image(Platform::parse("linux/amd64").value(), "layer");
    serve([&](const LocalRequest&) {
        if (calls++ == 0) return LocalResponse{.status = 503, .body = R"({"errors":[{"code":"UNAVAILABLE"}]})"};
        return LocalResponse{.headers = {{"Content-Type", std::string(media_type::oci_manifest)}},
                             .body = image.manifest_bytes};
    });
    auto fetched = m_client->get_manifest(reference("team/app:v1"));
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(calls.load(), 2);
}

TEST_F(RegistryClientHostileTest, PersistentServerErrorIsTriedUpToThePolicyAndNamesTheRegistryCode) {
    serve([](const LocalRequest&) {
        return LocalResponse{.status = 503, .body = R"({"errors":[{"code":"UNAVAILABLE","message":"busy"}]})"};
    });
    auto fetched = m_client->get_manifest(reference("team/app:v1"));
    ASSERT_FALSE(fetched);
    EXPECT_TRUE(fetched.error().retryable());
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find("GET manifest team/app:v1 from " + m_server->host_port() + ": HTTP 503 UNAVAILABLE: busy"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("gave up after 4 tries"), std::string::npos) << message;
    EXPECT_EQ(m_server->requests().size(), 4u);
}

TEST_F(RegistryClientHostileTest, StatusesARetryCannotFixAreNotRetried) {
    for (int status : {400, 401, 403, 404, 501}) {
        serve([status](const LocalRequest&) { return LocalResponse{.status = status, .body = "{}"}; });
        auto fetched = m_client->get_manifest(reference("team/app:v1"));
        ASSERT_FALSE(fetched) << status;
        EXPECT_FALSE(fetched.error().retryable()) << status;
        EXPECT_EQ(m_server->requests().size(), 1u) << status;
    }
}

TEST_F(RegistryClientHostileTest, TooManyRequestsWaitsAtLeastTheRetryAfterTheRegistryAsks) {
    test::TestImage image = test::make_test_image(Platform::parse("linux/amd64").value(), "layer");
    std::vector<std::chrono::steady_clock::time_point> arrivals;
    serve([&](const LocalRequest&) {
        arrivals.push_back(std::chrono::steady_clock::now());
        if (arrivals.size() == 1)
            return LocalResponse{.status = 429,
                                 .headers = {{"Retry-After", "1"}},
                                 .body = R"({"errors":[{"code":"TOOMANYREQUESTS"}]})"};
        return LocalResponse{.headers = {{"Content-Type", std::string(media_type::oci_manifest)}},
                             .body = image.manifest_bytes};
    });
    auto fetched = m_client->get_manifest(reference("team/app:v1"));
    ASSERT_TRUE(fetched) << fetched.error().message();
    ASSERT_EQ(arrivals.size(), 2u);
    EXPECT_GE(arrivals[1] - arrivals[0], std::chrono::milliseconds(950));
}

TEST_F(RegistryClientHostileTest, BlobThatFailsVerificationOnceIsDownloadedAgain) {
    std::string bytes = "the right bytes";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    std::atomic<int> calls = 0;
    serve([&](const LocalRequest&) {
        std::string body = bytes;
        if (calls++ == 0) body[3] ^= 1;
        return LocalResponse{.body = body};
    });
    StringWriter sink;
    auto fetched = m_client->fetch_blob(reference("team/app"), blob, sink);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(sink.bytes(), bytes);
}

TEST_F(RegistryClientHostileTest, BlobThatFailsVerificationTheSameWayTwiceIsNotTriedAThirdTime) {
    std::string bytes = "the right bytes";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    serve([&](const LocalRequest&) { return LocalResponse{.body = "the wrong bytes"}; });
    StringWriter sink;
    auto fetched = m_client->fetch_blob(reference("team/app"), blob, sink);
    ASSERT_FALSE(fetched);
    EXPECT_FALSE(fetched.error().retryable());
    const std::string& message = fetched.error().message();
    EXPECT_NE(message.find("failed verification: the content has digest"), std::string::npos) << message;
    EXPECT_NE(message.find("the same wrong content on tries 1 and 2"), std::string::npos) << message;
    EXPECT_EQ(m_server->requests().size(), 2u);
}

// Bytes that come wrong in a different way each time may be the network's fault: the retries go on.
TEST_F(RegistryClientHostileTest, BlobThatFailsVerificationDifferentlyEachTimeIsTriedUpToThePolicy) {
    std::string bytes = "the right bytes";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    std::atomic<int> calls = 0;
    serve([&](const LocalRequest&) {
        std::string body = bytes;
        body[static_cast<size_t>(calls++) % body.size()] ^= 1;
        return LocalResponse{.body = body};
    });
    StringWriter sink;
    auto fetched = m_client->fetch_blob(reference("team/app"), blob, sink);
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message().find("gave up after 4 tries"), std::string::npos) << fetched.error().message();
    EXPECT_EQ(m_server->requests().size(), 4u);
}

TEST_F(RegistryClientHostileTest, LargeBlobIsUploadedInChunksFollowingEachLocation) {
    serve([](const LocalRequest& request) {
        if (request.method == "HEAD") return LocalResponse{.status = 404};
        if (request.method == "POST") return LocalResponse{.status = 202, .headers = {{"Location", "/upload/0"}}};
        if (request.method == "PATCH") {
            // Each answer moves the upload elsewhere, and says what has arrived so far.
            std::string range = request.header("Content-Range").value_or("");
            std::string last = range.substr(range.find('-') + 1);
            return LocalResponse{.status = 202,
                                 .headers = {{"Location", "/upload/" + last}, {"Range", "0-" + last}}};
        }
        return LocalResponse{.status = 201};
    });
    RegistryClientOptions options = m_client->options();
    options.upload_chunk_size = 4;
    m_client = std::make_unique<RegistryClient>(options);
    std::string bytes = "0123456789";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    auto pushed = m_client->push_blob(reference("team/app"), blob, source);
    ASSERT_TRUE(pushed) << pushed.error().message();
    // A small blob at hand is sent without a HEAD first: POST, three PATCHes, PUT.
    std::vector<LocalRequest> requests = m_server->requests();
    ASSERT_EQ(requests.size(), 5u);
    EXPECT_EQ(requests[0].method, "POST");
    std::vector<std::string> expected_paths = {"/upload/0", "/upload/3", "/upload/7"};
    std::vector<std::string> expected_ranges = {"0-3", "4-7", "8-9"};
    std::vector<std::string> expected_bodies = {"0123", "4567", "89"};
    for (size_t i = 0; i < 3; ++i) {
        const LocalRequest& patch = requests[1 + i];
        EXPECT_EQ(patch.method, "PATCH");
        EXPECT_EQ(patch.path(), expected_paths[i]);
        EXPECT_EQ(patch.header("Content-Range"), expected_ranges[i]);
        EXPECT_EQ(patch.body, expected_bodies[i]);
    }
    EXPECT_EQ(requests[4].method, "PUT");
    EXPECT_EQ(requests[4].path(), "/upload/9");
    EXPECT_EQ(requests[4].query("digest"), std::vector<std::string>{blob.digest.str()});
    EXPECT_EQ(requests[4].body, "");
}

TEST_F(RegistryClientHostileTest, ChunkTheRegistryDidNotKeepRestartsTheUpload) {
    std::atomic<int> posts = 0;
    serve([&](const LocalRequest& request) {
        if (request.method == "HEAD") return LocalResponse{.status = 404};
        if (request.method == "POST") {
            ++posts;
            return LocalResponse{.status = 202, .headers = {{"Location", "/upload"}}};
        }
        // The first upload loses its first chunk; the second keeps everything.
        if (request.method == "PATCH") {
            std::string range = request.header("Content-Range").value_or("");
            std::string held = posts == 1 ? "0-0" : "0-" + range.substr(range.find('-') + 1);
            return LocalResponse{.status = 202, .headers = {{"Location", "/upload"}, {"Range", held}}};
        }
        return LocalResponse{.status = 201};
    });
    RegistryClientOptions options = m_client->options();
    options.upload_chunk_size = 4;
    m_client = std::make_unique<RegistryClient>(options);
    std::string bytes = "0123456789";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    auto pushed = m_client->push_blob(reference("team/app"), blob, [&]() -> Result<std::unique_ptr<Reader>> {
        return std::make_unique<StringReader>(bytes);
    });
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(posts.load(), 2);
}

TEST_F(RegistryClientHostileTest, UploadLocationWithQueryGetsTheDigestAppended) {
    std::string bytes = "blob to upload";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    serve([](const LocalRequest& request) {
        if (request.method == "HEAD") return LocalResponse{.status = 404};
        if (request.method == "POST")
            return LocalResponse{.status = 202, .headers = {{"Location", "/upload/session?_state=abc"}}};
        return LocalResponse{.status = 201};
    });
    StringReader source(bytes);
    auto pushed = m_client->push_blob(reference("team/app"), blob, source);
    ASSERT_TRUE(pushed) << pushed.error().message();
    std::vector<LocalRequest> requests = m_server->requests();
    ASSERT_EQ(requests.size(), 2u);  // POST, PUT: a small blob at hand is sent without a HEAD first
    EXPECT_EQ(requests[1].method, "PUT");
    EXPECT_EQ(requests[1].path(), "/upload/session");
    EXPECT_EQ(requests[1].query("_state"), std::vector<std::string>{"abc"});
    EXPECT_EQ(requests[1].query("digest"), std::vector<std::string>{blob.digest.str()});
    EXPECT_EQ(requests[1].body, bytes);
}

TEST_F(RegistryClientHostileTest, RejectedManifestPutSaysWhyInTheRegistrysWords) {
    serve([](const LocalRequest&) {
        return LocalResponse{.status = 400,
                             .body = R"({"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry",)"
                                     R"("detail":"sha256:abc"}]})"};
    });
    auto pushed = m_client->push_manifest(reference("team/app:v1"), media_type::oci_manifest, "{}");
    ASSERT_FALSE(pushed);
    EXPECT_NE(pushed.error().message().find("PUT manifest team/app:v1 to " + m_server->host_port() +
                                            ": HTTP 400 MANIFEST_BLOB_UNKNOWN: blob unknown to registry"),
              std::string::npos)
        << pushed.error().message();
    EXPECT_EQ(m_server->requests().size(), 1u);
    EXPECT_EQ(m_server->requests()[0].header("Content-Type"), std::string(media_type::oci_manifest));
}

TEST_F(RegistryClientHostileTest, PushManifestRefusesAReferenceDigestThatDoesNotMatch) {
    serve([](const LocalRequest&) { return LocalResponse{.status = 201}; });
    Digest wrong = Digest::of_bytes("something else");
    auto pushed = m_client->push_manifest(reference("team/app").with_digest(wrong), media_type::oci_manifest, "{}");
    ASSERT_FALSE(pushed);
    EXPECT_NE(pushed.error().message().find(wrong.str()), std::string::npos) << pushed.error().message();
    EXPECT_NE(pushed.error().message().find(Digest::of_bytes("{}").str()), std::string::npos);
    EXPECT_TRUE(m_server->requests().empty());
}

}  // namespace
}  // namespace kiln
