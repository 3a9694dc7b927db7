#include "registry/reference.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace kiln {
namespace {

const std::string k_hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// Short, readable case names for ctest (gtest_discover_tests names parameterized cases by their printed value).
std::string case_name(std::string_view input) {
    if (input.empty()) return "(empty)";
    return input.size() > 40 ? std::string(input.substr(0, 37)) + "..." : std::string(input);
}

struct GoodReference {
    std::string input;
    std::string registry;
    std::string repository;
    std::string tag;
    std::string digest;  // empty for none
    std::string normalized;
};

void PrintTo(const GoodReference& value, std::ostream* out) { *out << case_name(value.input); }

class GoodReferenceTest : public ::testing::TestWithParam<GoodReference> {};

TEST_P(GoodReferenceTest, ParsesAndNormalizesLikeDocker) {
    const GoodReference& expected = GetParam();
    auto reference = Reference::parse(expected.input);
    ASSERT_TRUE(reference) << reference.error().message();
    EXPECT_EQ(reference->registry(), expected.registry);
    EXPECT_EQ(reference->repository(), expected.repository);
    EXPECT_EQ(reference->tag(), expected.tag);
    EXPECT_EQ(reference->digest() ? reference->digest()->str() : "", expected.digest);
    EXPECT_EQ(reference->str(), expected.normalized);
    EXPECT_EQ(reference->name(), expected.registry + "/" + expected.repository);
    // The normalized form is a fixed point.
    auto reparsed = Reference::parse(reference->str());
    ASSERT_TRUE(reparsed) << reparsed.error().message();
    EXPECT_EQ(*reparsed, *reference);
}

INSTANTIATE_TEST_SUITE_P(
    Table, GoodReferenceTest,
    ::testing::Values(
        GoodReference{"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest"},
        GoodReference{"busybox:1.36", "docker.io", "library/busybox", "1.36", "", "docker.io/library/busybox:1.36"},
        GoodReference{"user/img", "docker.io", "user/img", "latest", "", "docker.io/user/img:latest"},
        GoodReference{"docker.io/library/busybox", "docker.io", "library/busybox", "latest", "",
                      "docker.io/library/busybox:latest"},
        GoodReference{"index.docker.io/busybox", "docker.io", "library/busybox", "latest", "",
                      "docker.io/library/busybox:latest"},
        GoodReference{"localhost/x", "localhost", "x", "latest", "", "localhost/x:latest"},
        GoodReference{"localhost:5000/x", "localhost:5000", "x", "latest", "", "localhost:5000/x:latest"},
        GoodReference{"127.0.0.1:5000/x:tag", "127.0.0.1:5000", "x", "tag", "", "127.0.0.1:5000/x:tag"},
        GoodReference{"reg.io/a/b@sha256:" + k_hex, "reg.io", "a/b", "", "sha256:" + k_hex,
                      "reg.io/a/b@sha256:" + k_hex},
        GoodReference{"reg.io/a/b:v1@sha256:" + k_hex, "reg.io", "a/b", "v1", "sha256:" + k_hex,
                      "reg.io/a/b:v1@sha256:" + k_hex},
        GoodReference{"busybox@sha256:" + k_hex, "docker.io", "library/busybox", "", "sha256:" + k_hex,
                      "docker.io/library/busybox@sha256:" + k_hex},
        GoodReference{"a-b.example.com/x_y/z__w/q-r--s.t:Tag_1.2-3", "a-b.example.com", "x_y/z__w/q-r--s.t",
                      "Tag_1.2-3", "", "a-b.example.com/x_y/z__w/q-r--s.t:Tag_1.2-3"},
        GoodReference{"[::1]:5000/app:1", "[::1]:5000", "app", "1", "", "[::1]:5000/app:1"},
        GoodReference{"Registry.Example/app", "Registry.Example", "app", "latest", "",
                      "Registry.Example/app:latest"},
        GoodReference{"example.com:443/team/app/web", "example.com:443", "team/app/web", "latest", "",
                      "example.com:443/team/app/web:latest"}));

struct BadReference {
    std::string input;
    std::string reason;  // a fragment of the error message
};

void PrintTo(const BadReference& value, std::ostream* out) { *out << case_name(value.input); }

class BadReferenceTest : public ::testing::TestWithParam<BadReference> {};

TEST_P(BadReferenceTest, IsRejectedWithTheInputQuoted) {
    const BadReference& bad = GetParam();
    auto reference = Reference::parse(bad.input);
    ASSERT_FALSE(reference) << bad.input << " parsed as " << reference->str();
    EXPECT_NE(reference.error().message().find("\"" + bad.input + "\""), std::string::npos)
        << reference.error().message();
    EXPECT_NE(reference.error().message().find(bad.reason), std::string::npos) << reference.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadReferenceTest,
    ::testing::Values(BadReference{"", "empty"}, BadReference{"Busybox", "must be lowercase"},
                      BadReference{"docker.io/Library/busybox", "must be lowercase"},
                      BadReference{"reg.io/team/App:1", "must be lowercase"},
                      BadReference{"busybox:", "invalid tag"}, BadReference{"busybox:-x", "invalid tag"},
                      BadReference{"busybox:a+b", "invalid tag"},
                      BadReference{"busybox:" + std::string(129, 'a'), "invalid tag"},
                      BadReference{"busybox@sha256:abc", "invalid digest"},
                      BadReference{"busybox@sha256:" + std::string(64, 'A'), "invalid digest"},
                      BadReference{"busybox@", "invalid digest"},
                      BadReference{"reg.io/a//b", "invalid repository name"},
                      BadReference{"reg.io/-a", "invalid repository name"},
                      BadReference{"reg.io/a_", "invalid repository name"},
                      BadReference{"reg.io/", "no repository"},
                      BadReference{"reg.io:port/x", "invalid registry"},
                      BadReference{"a_b.io/x", "invalid registry"},
                      BadReference{"reg.io/" + std::string(250, 'a'), "longer than 255"},
                      BadReference{k_hex, "image ID"}));

TEST(ReferenceTest, WithTagReplacesTagAndDropsDigest) {
    auto reference = Reference::parse("reg.io/a/b:v1@sha256:" + k_hex);
    ASSERT_TRUE(reference);
    auto tagged = reference->with_tag("v2");
    ASSERT_TRUE(tagged) << tagged.error().message();
    EXPECT_EQ(tagged->str(), "reg.io/a/b:v2");
    EXPECT_FALSE(reference->with_tag("bad tag"));
}

TEST(ReferenceTest, WithDigestPinsAndKeepsTag) {
    auto reference = Reference::parse("busybox");
    auto digest = Digest::parse("sha256:" + k_hex);
    ASSERT_TRUE(reference && digest);
    Reference pinned = reference->with_digest(*digest);
    EXPECT_EQ(pinned.str(), "docker.io/library/busybox:latest@sha256:" + k_hex);
    EXPECT_EQ(pinned.identifier(), "sha256:" + k_hex);
    EXPECT_EQ(reference->identifier(), "latest");
}

TEST(ReferenceTest, DockerHubApiLivesOnRegistry1) {
    EXPECT_EQ(Reference::parse("busybox")->api_host(), "registry-1.docker.io");
    EXPECT_EQ(Reference::parse("index.docker.io/library/busybox")->api_host(), "registry-1.docker.io");
    EXPECT_EQ(Reference::parse("127.0.0.1:5000/x")->api_host(), "127.0.0.1:5000");
}

TEST(ReferenceTest, RepositoryStringNamesTagOrDigest) {
    EXPECT_EQ(Reference::parse("busybox")->repository_str(), "library/busybox:latest");
    EXPECT_EQ(Reference::parse("reg.io/a@sha256:" + k_hex)->repository_str(), "a@sha256:" + k_hex);
}

}  // namespace
}  // namespace kiln
