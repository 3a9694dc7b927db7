// --registry-mirror and --registry-map: where a pull looks, in order.
#include "registry/mirrors.hpp"

#include <gtest/gtest.h>

#include "registry/client_internal.hpp"

namespace kiln {
namespace {

std::vector<std::string> candidates(const RegistryRoutes& routes, std::string_view reference) {
    std::vector<std::string> texts;
    for (const Reference& candidate : routes.candidates(Reference::parse(reference).value()))
        texts.push_back(candidate.str());
    return texts;
}

TEST(RegistryRoutesTest, WithoutRoutesAPullGoesToTheRegistryItself) {
    RegistryRoutes routes;
    EXPECT_EQ(candidates(routes, "busybox"), std::vector<std::string>{"docker.io/library/busybox:latest"});
}

TEST(RegistryRoutesTest, DockerHubMirrorsComeFirstInOrderThenDockerHub) {
    RegistryRoutes routes;
    ASSERT_TRUE(routes.add_mirror("mirror.gcr.io"));
    ASSERT_TRUE(routes.add_mirror("https://127.0.0.1:5000/hub/"));
    EXPECT_EQ(candidates(routes, "busybox:1.36"),
              (std::vector<std::string>{"mirror.gcr.io/library/busybox:1.36", "127.0.0.1:5000/hub/library/busybox:1.36",
                                        "docker.io/library/busybox:1.36"}));
}

TEST(RegistryRoutesTest, MirrorsApplyOnlyToDockerHub) {
    RegistryRoutes routes;
    ASSERT_TRUE(routes.add_mirror("mirror.gcr.io"));
    EXPECT_EQ(candidates(routes, "ghcr.io/team/app:v1"), std::vector<std::string>{"ghcr.io/team/app:v1"});
}

TEST(RegistryRoutesTest, SkippingTheFallbackLeavesOnlyTheMirrors) {
    RegistryRoutes routes;
    ASSERT_TRUE(routes.add_mirror("mirror.gcr.io"));
    routes.set_fallback(false);
    EXPECT_EQ(candidates(routes, "index.docker.io/library/alpine"),
              std::vector<std::string>{"mirror.gcr.io/library/alpine:latest"});
}

TEST(RegistryRoutesTest, MapRemapsAnyRegistryAndKeepsTheDigest) {
    RegistryRoutes routes;
    ASSERT_TRUE(routes.add_map("ghcr.io=127.0.0.1:5001;quay.io=127.0.0.1:5002/quay"));
    std::string digest = "sha256:" + std::string(64, 'a');
    EXPECT_EQ(candidates(routes, "quay.io/team/app@" + digest),
              (std::vector<std::string>{"127.0.0.1:5002/quay/team/app@" + digest, "quay.io/team/app@" + digest}));
    EXPECT_EQ(candidates(routes, "ghcr.io/a/b:1"),
              (std::vector<std::string>{"127.0.0.1:5001/a/b:1", "ghcr.io/a/b:1"}));
}

TEST(RegistryRoutesTest, MalformedValuesAreRefusedNamingTheFlag) {
    RegistryRoutes routes;
    auto no_equals = routes.add_map("ghcr.io");
    ASSERT_FALSE(no_equals);
    EXPECT_NE(no_equals.error().message().find("--registry-map"), std::string::npos);
    auto not_a_host = routes.add_mirror("not a host");
    ASSERT_FALSE(not_a_host);
    EXPECT_NE(not_a_host.error().message().find("--registry-mirror"), std::string::npos);
}

// A registry's rolling restart takes 10 to 30 s: the default retries (3) must outlast a minute, where they
// used to give up after about 2.6 s, while the first retry still comes within seconds.
TEST(RetryDelayTest, TheDefaultRetriesSpanAtLeastAMinuteAndTheFirstComesSoon) {
    RetryPolicy policy;
    ASSERT_EQ(policy.attempts, 4);
    for (int i = 0; i < 50; ++i) {
        std::chrono::milliseconds total{0};
        for (int attempt = 2; attempt <= policy.attempts; ++attempt)
            total += retry_delay(policy, attempt, std::chrono::milliseconds(0));
        EXPECT_GE(total, std::chrono::seconds(60));
        EXPECT_LE(total, std::chrono::seconds(75));
        EXPECT_LE(retry_delay(policy, 2, std::chrono::milliseconds(0)), std::chrono::seconds(4));
    }
}

TEST(RetryDelayTest, EachWaitIsFourTimesTheOneBeforeWithinTheWindow) {
    RetryPolicy policy{.attempts = 4, .window = std::chrono::milliseconds(63000)};
    for (int i = 0; i < 50; ++i) {
        auto first = retry_delay(policy, 2, std::chrono::milliseconds(0));
        EXPECT_GE(first.count(), 3000);
        EXPECT_LE(first.count(), 3750);
        auto third = retry_delay(policy, 4, std::chrono::milliseconds(0));
        EXPECT_GE(third.count(), 48000);
        EXPECT_LE(third.count(), 60000);
    }
}

TEST(RetryDelayTest, ManyRetriesStillWaitAMinimumAndOneRetryWaitsTheWholeWindow) {
    RetryPolicy many{.attempts = 40, .window = std::chrono::milliseconds(1000)};
    EXPECT_EQ(retry_delay(many, 2, std::chrono::milliseconds(0)), k_shortest_retry_delay);
    RetryPolicy one{.attempts = 2, .window = std::chrono::milliseconds(8000)};
    EXPECT_GE(retry_delay(one, 2, std::chrono::milliseconds(0)).count(), 8000);
}

TEST(RetryDelayTest, RetryAfterWinsUpToItsCap) {
    RetryPolicy policy{.window = std::chrono::milliseconds(100), .max_retry_after = std::chrono::milliseconds(5000)};
    EXPECT_EQ(retry_delay(policy, 2, std::chrono::milliseconds(3000)).count(), 3000);
    EXPECT_EQ(retry_delay(policy, 2, std::chrono::milliseconds(60000)).count(), 5000);
}

}  // namespace
}  // namespace kiln
