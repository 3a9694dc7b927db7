// The anonymous Bearer token flow against a real registry configured with `auth: token`, trusting a token server
// that runs in this process.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "common/log.hpp"
#include "registry/client.hpp"
#include "tests/registry/test_image.hpp"
#include "tests/support/registry_process.hpp"
#include "tests/support/token_server.hpp"

namespace kiln {
namespace {

class TokenAuthIntegrationTest : public ::testing::Test {
protected:
    void start(test::TokenServerOptions token_options = {}) {
        if (auto reason = test::RegistryProcess::unavailable_reason()) GTEST_SKIP() << *reason;
        auto tokens = test::TokenServer::start(std::move(token_options));
        ASSERT_TRUE(tokens) << tokens.error().message();
        m_tokens = std::move(*tokens);
        auto registry = test::RegistryProcess::start({.auth_config = m_tokens->registry_auth_config()});
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
        RegistryClientOptions options;
        options.plain_http.add(m_registry->host_port());
        m_client = std::make_unique<RegistryClient>(std::move(options));
    }

    Reference reference(std::string_view path) const {
        return Reference::parse(m_registry->host_port() + "/" + std::string(path)).value();
    }

    std::vector<std::string> requested_scopes() const {
        std::vector<std::string> scopes;
        for (const test::LocalRequest& request : m_tokens->requests())
            for (const std::string& scope : request.query("scope")) scopes.push_back(scope);
        return scopes;
    }

    std::unique_ptr<test::TokenServer> m_tokens;
    std::unique_ptr<test::RegistryProcess> m_registry;
    std::unique_ptr<RegistryClient> m_client;
};

TEST_F(TokenAuthIntegrationTest, AnonymousClientPushesAndPullsWithTokens) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    test::TestImage image = test::make_test_image(Platform::parse("linux/amd64").value(), "layer behind auth");
    Reference tagged = reference("team/private:v1");
    auto pushed = test::push_test_image(*m_client, tagged, image);
    ASSERT_TRUE(pushed) << pushed.error().message() << "\n" << m_registry->log();

    auto resolved = m_client->resolve_image(tagged, Platform::parse("linux/amd64").value());
    ASSERT_TRUE(resolved) << resolved.error().message();
    EXPECT_EQ(resolved->manifest_digest, image.manifest.digest);

    std::vector<std::string> scopes = requested_scopes();
    EXPECT_NE(std::find(scopes.begin(), scopes.end(), "repository:team/private:pull,push"), scopes.end());
    EXPECT_NE(std::find(scopes.begin(), scopes.end(), "repository:team/private:pull"), scopes.end());
    for (const test::LocalRequest& request : m_tokens->requests())
        EXPECT_EQ(request.query("service"), std::vector<std::string>{m_tokens->service()});
}

TEST_F(TokenAuthIntegrationTest, TokensNeverReachTheLog) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    std::vector<std::string> messages;
    std::mutex mutex;
    set_log_sink([&](LogLevel, std::string_view message) {
        std::lock_guard lock(mutex);
        messages.emplace_back(message);
    });
    test::TestImage image = test::make_test_image(Platform::parse("linux/amd64").value(), "layer");
    auto pushed = test::push_test_image(*m_client, reference("team/logged:v1"), image);
    auto missing = m_client->get_manifest(reference("team/logged:missing"));
    set_log_sink(nullptr);
    ASSERT_TRUE(pushed) << pushed.error().message();
    ASSERT_FALSE(missing);
    ASSERT_FALSE(messages.empty());  // debug messages were produced, so the check below means something
    messages.push_back(missing.error().message());
    for (const std::string& message : messages) {
        EXPECT_EQ(message.find("eyJ"), std::string::npos) << message;  // every JWT starts with base64 '{"'
        EXPECT_EQ(message.find("Bearer "), std::string::npos) << message;
    }
}

TEST_F(TokenAuthIntegrationTest, TokenIsReusedForTheSameScope) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    Reference tagged = reference("team/app:missing");
    // Each GET answers 404 once authorized: enough to see whether a token is fetched again.
    ASSERT_FALSE(m_client->get_manifest(tagged));
    size_t after_first = m_tokens->requests().size();
    EXPECT_EQ(after_first, 1u);
    ASSERT_FALSE(m_client->get_manifest(tagged));
    EXPECT_EQ(m_tokens->requests().size(), after_first);
}

TEST_F(TokenAuthIntegrationTest, AccessTokenFieldIsAccepted) {
    start({.field = test::TokenField::access_token});
    if (IsSkipped() || HasFatalFailure()) return;
    std::string bytes = "blob behind auth";
    Descriptor blob = test::describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    auto pushed = m_client->push_blob(reference("team/app"), blob, source);
    ASSERT_TRUE(pushed) << pushed.error().message();
    StringWriter sink;
    auto fetched = m_client->fetch_blob(reference("team/app"), blob, sink);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(sink.bytes(), bytes);
}

TEST_F(TokenAuthIntegrationTest, MissingManifestBehindAuthIsA404NotA401) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    auto fetched = m_client->get_manifest(reference("team/app:missing"));
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message().find("HTTP 404"), std::string::npos) << fetched.error().message();
}

}  // namespace
}  // namespace kiln
