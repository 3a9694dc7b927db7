#include "common/base64.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(Base64, EncodesRfc4648Vectors) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64_encode("user:pa ss"), "dXNlcjpwYSBzcw==");
}

TEST(Base64, DecodesWhatItEncodesIncludingBinary) {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
    EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
}

TEST(Base64, RejectsUnpaddedStrayAndMisplacedPadding) {
    EXPECT_FALSE(base64_decode("Zm9vYg"));
    EXPECT_FALSE(base64_decode("Zm9v YmFy"));
    EXPECT_FALSE(base64_decode("Zg=a"));
    EXPECT_FALSE(base64_decode("Zg==Zm9v"));
    EXPECT_FALSE(base64_decode("Z==="));
    EXPECT_FALSE(base64_decode("Zm9v_-=="));
}

}  // namespace
}  // namespace kiln
