#include "registry/auth.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/base64.hpp"
#include "common/strings.hpp"
#include "tests/support/local_http_server.hpp"

namespace kiln {
namespace {

struct ChallengeCase {
    std::string header;
    std::vector<AuthChallenge> expected;
};

void PrintTo(const ChallengeCase& value, std::ostream* out) {
    *out << (value.header.size() > 40 ? value.header.substr(0, 37) + "..." : value.header);
}

class WwwAuthenticateTest : public ::testing::TestWithParam<ChallengeCase> {};

TEST_P(WwwAuthenticateTest, ParsesEveryChallengeAndParameter) {
    auto challenges = parse_www_authenticate(GetParam().header);
    ASSERT_TRUE(challenges) << challenges.error().message();
    const std::vector<AuthChallenge>& expected = GetParam().expected;
    ASSERT_EQ(challenges->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ((*challenges)[i].scheme, expected[i].scheme) << i;
        EXPECT_EQ((*challenges)[i].params, expected[i].params) << i;
    }
}

using Params = std::map<std::string, std::string>;

INSTANTIATE_TEST_SUITE_P(
    Table, WwwAuthenticateTest,
    ::testing::Values(
        ChallengeCase{R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")",
                      {{"bearer", Params{{"realm", "https://auth.docker.io/token"},
                                         {"service", "registry.docker.io"},
                                         {"scope", "repository:library/busybox:pull"}}}}},
        ChallengeCase{R"(Basic realm="Registry Realm")", {{"basic", Params{{"realm", "Registry Realm"}}}}},
        // A comma inside quotes belongs to the value.
        ChallengeCase{R"(Bearer realm="http://127.0.0.1:1/token", scope="repository:a/b:pull,push")",
                      {{"bearer", Params{{"realm", "http://127.0.0.1:1/token"}, {"scope", "repository:a/b:pull,push"}}}}},
        ChallengeCase{R"(Basic realm="x", Bearer realm="https://a/t",service="s")",
                      {{"basic", Params{{"realm", "x"}}},
                       {"bearer", Params{{"realm", "https://a/t"}, {"service", "s"}}}}},
        // Scheme and parameter names are case-insensitive; unquoted values run to the next separator.
        ChallengeCase{"bearer Realm=https://a/t, Service=s", {{"bearer", Params{{"realm", "https://a/t"}, {"service", "s"}}}}},
        ChallengeCase{R"(Bearer realm="a\"b\\c")", {{"bearer", Params{{"realm", R"(a"b\c)"}}}}},
        ChallengeCase{R"(Bearer realm="x",)", {{"bearer", Params{{"realm", "x"}}}}},
        ChallengeCase{"Negotiate", {{"negotiate", Params{}}}}));

class BadWwwAuthenticateTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BadWwwAuthenticateTest, IsRejected) { EXPECT_FALSE(parse_www_authenticate(GetParam())) << GetParam(); }

INSTANTIATE_TEST_SUITE_P(Table, BadWwwAuthenticateTest,
                         ::testing::Values("", "   ", R"(Bearer realm="unterminated)", "=realm", "Bearer @"));

TEST(RepositoryScopeTest, PushAlsoAsksForPull) {
    EXPECT_EQ(repository_scope("library/busybox", RepositoryAccess::pull), "repository:library/busybox:pull");
    EXPECT_EQ(repository_scope("team/app", RepositoryAccess::push), "repository:team/app:pull,push");
}

TEST(AuthenticatorTest, BasicChallengeWithoutCredentialsNamesTheRegistry) {
    Authenticator authenticator(nullptr);
    HttpClient http;
    auto challenges = parse_www_authenticate(R"(Basic realm="r")");
    ASSERT_TRUE(challenges);
    auto authorization = authenticator.authorize(http, "reg.example", "repository:a:pull", *challenges);
    ASSERT_FALSE(authorization);
    EXPECT_NE(authorization.error().message().find("reg.example"), std::string::npos);
    EXPECT_EQ(authenticator.cached("reg.example", "repository:a:pull"), "");
}

TEST(AuthenticatorTest, UnknownSchemeIsRefused) {
    Authenticator authenticator(nullptr);
    HttpClient http;
    auto challenges = parse_www_authenticate("Negotiate");
    ASSERT_TRUE(challenges);
    auto authorization = authenticator.authorize(http, "reg.example", "repository:a:pull", *challenges);
    ASSERT_FALSE(authorization);
    EXPECT_NE(authorization.error().message().find("negotiate"), std::string::npos);
}

using test::LocalHttpServer;
using test::LocalRequest;
using test::LocalResponse;

// Always the same credential.
class FixedCredentials final : public CredentialProvider {
public:
    explicit FixedCredentials(Credential credential) : m_credential(std::move(credential)) {}
    Result<std::optional<Credential>> credential_for(std::string_view) override { return m_credential; }

private:
    Credential m_credential;
};

// A token server on 127.0.0.1 that numbers the tokens it issues: "token-1", "token-2", …
class TokenServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto server = LocalHttpServer::start([this](const LocalRequest& request) {
            if (m_status != 200) return LocalResponse{.status = m_status, .body = m_error_body};
            std::string field = request.method == "POST" ? "access_token" : "token";
            return LocalResponse{.headers = {{"Content-Type", "application/json"}},
                                 .body = str_cat(R"({")", field, R"(":"token-)", ++m_issued, R"("})")};
        });
        ASSERT_TRUE(server) << server.error().message();
        m_server = std::move(*server);
    }
    std::vector<AuthChallenge> challenge() const {
        return parse_www_authenticate(
                   str_cat(R"(Bearer realm=")", m_server->url("/token"), R"(",service="test-registry")"))
            .value();
    }

    std::unique_ptr<LocalHttpServer> m_server;
    std::atomic<int> m_issued{0};
    int m_status = 200;
    std::string m_error_body;
    HttpClient m_http;
};

TEST_F(TokenServerTest, TokensAreCachedPerRegistryAndScope) {
    Authenticator authenticator(nullptr);
    auto pull = authenticator.authorize(m_http, "reg.example", "repository:a:pull", challenge());
    ASSERT_TRUE(pull) << pull.error().message();
    auto push = authenticator.authorize(m_http, "reg.example", "repository:a:pull,push", challenge());
    ASSERT_TRUE(push) << push.error().message();
    EXPECT_NE(*pull, *push);
    EXPECT_EQ(authenticator.cached("reg.example", "repository:a:pull"), *pull);
    EXPECT_EQ(authenticator.cached("reg.example", "repository:a:pull,push"), *push);
    EXPECT_EQ(authenticator.cached("other.example", "repository:a:pull"), "");
    EXPECT_EQ(m_server->requests().size(), 2u);
}

// What the client does on a 401 with a cached token: forget it, then authorize once more.
TEST_F(TokenServerTest, ForgetThenAuthorizeFetchesAFreshTokenForThatScopeOnly) {
    Authenticator authenticator(nullptr);
    ASSERT_EQ(authenticator.authorize(m_http, "reg.example", "repository:a:pull", challenge()).value(),
              "Bearer token-1");
    ASSERT_EQ(authenticator.authorize(m_http, "reg.example", "repository:b:pull", challenge()).value(),
              "Bearer token-2");
    authenticator.forget("reg.example", "repository:a:pull");
    EXPECT_EQ(authenticator.cached("reg.example", "repository:a:pull"), "");
    EXPECT_EQ(authenticator.cached("reg.example", "repository:b:pull"), "Bearer token-2");
    auto refreshed = authenticator.authorize(m_http, "reg.example", "repository:a:pull", challenge());
    ASSERT_TRUE(refreshed) << refreshed.error().message();
    EXPECT_EQ(*refreshed, "Bearer token-3");
    EXPECT_EQ(authenticator.cached("reg.example", "repository:a:pull"), "Bearer token-3");
    EXPECT_EQ(m_server->requests().size(), 3u);
}

TEST_F(TokenServerTest, PasswordCredentialsUseBasicOnAGet) {
    Authenticator authenticator(std::make_shared<FixedCredentials>(Credential{.username = "u", .password = "p"}));
    auto authorization = authenticator.authorize(m_http, "reg.example", "repository:a:pull", challenge());
    ASSERT_TRUE(authorization) << authorization.error().message();
    EXPECT_EQ(*authorization, "Bearer token-1");
    std::vector<LocalRequest> requests = m_server->requests();
    ASSERT_EQ(requests.size(), 1u);
    const LocalRequest& request = requests[0];
    EXPECT_EQ(request.method, "GET");
    EXPECT_EQ(request.header("Authorization"), "Basic " + base64_encode("u:p"));
    EXPECT_EQ(request.query("service"), std::vector<std::string>{"test-registry"});
    EXPECT_EQ(request.query("scope"), std::vector<std::string>{"repository:a:pull"});
}

TEST_F(TokenServerTest, IdentityTokenUsesThePostGrant) {
    Authenticator authenticator(std::make_shared<FixedCredentials>(Credential{.identity_token = "refresh-secret"}));
    auto authorization = authenticator.authorize(m_http, "reg.example", "repository:a:pull", challenge());
    ASSERT_TRUE(authorization) << authorization.error().message();
    EXPECT_EQ(*authorization, "Bearer token-1");
    std::vector<LocalRequest> requests = m_server->requests();
    ASSERT_EQ(requests.size(), 1u);
    const LocalRequest& request = requests[0];
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.header("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(request.body,
              "grant_type=refresh_token&refresh_token=refresh-secret&client_id=kiln&service=test-registry"
              "&scope=repository%3Aa%3Apull");
}

TEST_F(TokenServerTest, RefusedIdentityTokenNamesRealmStatusAndErrorButNotTheToken) {
    m_status = 400;
    m_error_body = R"({"error":"invalid_grant","error_description":"refresh token expired"})";
    Authenticator authenticator(std::make_shared<FixedCredentials>(Credential{.identity_token = "refresh-secret"}));
    auto authorization = authenticator.authorize(m_http, "reg.example", "repository:a:pull", challenge());
    ASSERT_FALSE(authorization);
    const std::string& message = authorization.error().message();
    EXPECT_NE(message.find("POST token from http://127.0.0.1:" + std::to_string(m_server->port())),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("HTTP 400"), std::string::npos) << message;
    EXPECT_NE(message.find("invalid_grant"), std::string::npos) << message;
    EXPECT_EQ(message.find("refresh-secret"), std::string::npos) << message;
    EXPECT_FALSE(authorization.error().retryable());
    EXPECT_EQ(authenticator.cached("reg.example", "repository:a:pull"), "");
}

}  // namespace
}  // namespace kiln
