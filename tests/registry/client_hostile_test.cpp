// RegistryClient against a server that misbehaves on purpose (in this process, on 127.0.0.1): what a real
// registry will not do, a broken or hostile one may.
#include <gtest/gtest.h>

#include <atomic>

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
        options.retry_delay = std::chrono::milliseconds(10);
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

TEST_F(RegistryClientHostileTest, PersistentServerErrorIsRetryableWithTheRegistryCode) {
    serve([](const LocalRequest&) {
        return LocalResponse{.status = 503, .body = R"({"errors":[{"code":"UNAVAILABLE","message":"busy"}]})"};
    });
    auto fetched = m_client->get_manifest(reference("team/app:v1"));
    ASSERT_FALSE(fetched);
    EXPECT_TRUE(fetched.error().retryable());
    EXPECT_NE(fetched.error().message().find("HTTP 503 UNAVAILABLE: busy"), std::string::npos)
        << fetched.error().message();
    EXPECT_EQ(m_server->requests().size(), 2u);
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
    ASSERT_EQ(requests.size(), 3u);
    EXPECT_EQ(requests[2].method, "PUT");
    EXPECT_EQ(requests[2].path(), "/upload/session");
    EXPECT_EQ(requests[2].query("_state"), std::vector<std::string>{"abc"});
    EXPECT_EQ(requests[2].query("digest"), std::vector<std::string>{blob.digest.str()});
    EXPECT_EQ(requests[2].body, bytes);
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
