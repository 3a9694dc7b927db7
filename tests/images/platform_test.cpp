#include "images/platform.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

struct ParseCase {
    const char* text;
    const char* os;
    const char* architecture;
    const char* variant;
};

TEST(PlatformParse, NormalisesArchitectureNames) {
    const ParseCase cases[] = {
        {"linux/amd64", "linux", "amd64", ""},     {"linux/arm64/v8", "linux", "arm64", "v8"},
        {"linux/arm/v7", "linux", "arm", "v7"},    {"linux/aarch64", "linux", "arm64", ""},
        {"linux/x86_64", "linux", "amd64", ""},    {"Linux/AMD64", "linux", "amd64", ""},
        {"linux/i686", "linux", "386", ""},        {"windows/amd64", "windows", "amd64", ""},
    };
    for (const ParseCase& c : cases) {
        auto platform = Platform::parse(c.text);
        ASSERT_TRUE(platform) << c.text << ": " << platform.error().message();
        EXPECT_EQ(platform->os, c.os) << c.text;
        EXPECT_EQ(platform->architecture, c.architecture) << c.text;
        EXPECT_EQ(platform->variant, c.variant) << c.text;
    }
}

TEST(PlatformParse, RejectsMalformedText) {
    for (const char* text : {"", "linux", "linux/", "/amd64", "linux/arm/v7/extra"}) {
        auto platform = Platform::parse(text);
        ASSERT_FALSE(platform) << text;
        EXPECT_NE(platform.error().message().find("os/arch"), std::string::npos) << platform.error().message();
    }
}

TEST(PlatformStr, RoundTripsThroughParse) {
    for (const char* text : {"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/s390x"}) {
        auto platform = Platform::parse(text);
        ASSERT_TRUE(platform);
        EXPECT_EQ(platform->str(), text);
    }
}

struct SatisfiesCase {
    const char* image;
    const char* wanted;
    bool satisfies;
};

TEST(PlatformSatisfies, MatchesVariantsTheWayContainerdDoes) {
    const SatisfiesCase cases[] = {
        {"linux/arm64", "linux/arm64/v8", true},     // v8 is arm64's implicit variant
        {"linux/arm64/v8", "linux/arm64", true},     //
        {"linux/arm64/v8", "linux/aarch64", true},   // alias on the wanted side
        {"linux/amd64", "linux/amd64/v1", true},     // v1 is amd64's implicit variant
        {"linux/amd64", "linux/x86_64", true},       //
        {"linux/arm/v7", "linux/arm/v7", true},      //
        {"linux/arm/7", "linux/arm/v7", true},       // "7" and "v7" are one variant
        {"linux/arm/v7", "linux/arm", true},         // no wanted variant: any will do
        {"linux/arm/v6", "linux/arm/v7", false},     //
        {"linux/arm64", "linux/amd64", false},       //
        {"windows/amd64", "linux/amd64", false},     //
        {"linux/arm/v7", "linux/arm64", false},      //
    };
    for (const SatisfiesCase& c : cases) {
        auto image = Platform::parse(c.image);
        auto wanted = Platform::parse(c.wanted);
        ASSERT_TRUE(image && wanted);
        EXPECT_EQ(image->satisfies(*wanted), c.satisfies) << c.image << " for " << c.wanted;
    }
}

TEST(PlatformJson, RoundTripsEveryField) {
    Platform platform{.os = "windows",
                      .architecture = "amd64",
                      .variant = "",
                      .os_version = "10.0.17763.1040",
                      .os_features = {"win32k"}};
    auto parsed = Platform::from_json(platform.to_json());
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(*parsed, platform);
    EXPECT_EQ(platform.to_json().dump(), R"({"architecture":"amd64","os":"windows","os.features":["win32k"],"os.version":"10.0.17763.1040"})");
}

TEST(PlatformJson, RequiresArchitecture) {
    auto parsed = Platform::from_json(nlohmann::json{{"os", "linux"}});
    ASSERT_FALSE(parsed);
    EXPECT_NE(parsed.error().message().find("architecture"), std::string::npos) << parsed.error().message();
}

}  // namespace
}  // namespace kiln
