#include "images/digest.hpp"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

const std::string k_hex64 = "5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

struct DigestCase {
    std::string text;
    bool valid;
    const char* why;
};

TEST(DigestParse, AcceptsAndRejectsByTheOciGrammar) {
    const DigestCase cases[] = {
        {"sha256:" + k_hex64, true, "sha256 with 64 lowercase hex"},
        {"sha384:" + std::string(96, 'a'), true, "sha384 with 96 hex"},
        {"sha512:" + std::string(128, '0'), true, "sha512 with 128 hex"},
        {"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", true, "unregistered algorithm, any encoding"},
        {"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", true, "unregistered algorithm"},
        {"sha256.foo-bar:" + k_hex64, true, "separators inside the algorithm"},
        {"sha256:" + k_hex64.substr(1), false, "63 hex characters"},
        {"sha256:" + k_hex64 + "0", false, "65 hex characters"},
        {"sha512:" + k_hex64, false, "sha512 with sha256's length"},
        {"sha256:5B0BCABD1ED22E9FB1310CF6C2DEC7CDEF19F0AD69EFA1F392E94A4333501270", false, "uppercase hex"},
        {"sha256:" + std::string(63, 'a') + "g", false, "a non-hex character"},
        {"SHA256:" + k_hex64, false, "uppercase algorithm"},
        {"sha256+foo+-b:" + k_hex64, false, "repeated separators in the algorithm"},
        {"+sha256:" + k_hex64, false, "algorithm starting with a separator"},
        {"sha256-:" + k_hex64, false, "algorithm ending with a separator"},
        {"sha256" + k_hex64, false, "missing colon"},
        {":" + k_hex64, false, "missing algorithm"},
        {"sha256:", false, "empty encoded part"},
        {"sha256:abc def", false, "space in the encoded part"},
        {"", false, "empty"},
    };
    for (const DigestCase& c : cases) {
        auto digest = Digest::parse(c.text);
        EXPECT_EQ(digest.has_value(), c.valid) << c.why << ": " << c.text;
        if (digest) {
            EXPECT_EQ(digest->str(), c.text) << c.why;
        } else {
            EXPECT_NE(digest.error().message().find("invalid digest"), std::string::npos) << digest.error().message();
        }
    }
}

TEST(DigestParse, SplitsAlgorithmAndEncodedPart) {
    auto digest = Digest::parse("sha256:" + k_hex64);
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_EQ(digest->algorithm(), "sha256");
    EXPECT_EQ(digest->encoded(), k_hex64);
    EXPECT_EQ(digest->short_str(), "sha256:5b0bcabd1ed2");
    EXPECT_FALSE(digest->empty());
    EXPECT_TRUE(Digest().empty());
}

TEST(DigestOfBytes, MatchesKnownSha256Answers) {
    EXPECT_EQ(Digest::of_bytes("").str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Digest::of_bytes("abc").str(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(Digest::of_bytes(std::string(1000000, 'a')).str(),
              "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(DigestOfBytes, ParsesBackToAnEqualDigest) {
    Digest computed = Digest::of_bytes("kiln");
    auto parsed = Digest::parse(computed.str());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, computed);
    EXPECT_NE(Digest::of_bytes("kiln!"), computed);
}

}  // namespace
}  // namespace kiln
