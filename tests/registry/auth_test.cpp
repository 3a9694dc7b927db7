#include "registry/auth.hpp"

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace kiln
