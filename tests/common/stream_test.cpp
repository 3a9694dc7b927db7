#include "common/stream.hpp"

#include <gtest/gtest.h>

#include "common/sha256.hpp"

namespace kiln {
namespace {

TEST(Sha256, MatchesKnownAnswers) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, StreamingEqualsOneShot) {
    Sha256 hash;
    hash.update("a");
    hash.update("bc");
    EXPECT_EQ(hash.finish_hex(), sha256_hex("abc"));
}

TEST(HashingWriter, HashesCountsAndForwards) {
    StringWriter sink;
    HashingWriter writer(&sink);
    ASSERT_TRUE(writer.write("ab"));
    ASSERT_TRUE(writer.write("c"));
    EXPECT_EQ(sink.bytes(), "abc");
    EXPECT_EQ(writer.size(), 3u);
    EXPECT_EQ(writer.finish_digest(), "sha256:" + sha256_hex("abc"));
}

TEST(CopyStream, CopiesEverythingAcrossBufferBoundaries) {
    std::string data(3 * (1 << 20) + 17, 'z');
    StringReader reader(data);
    StringWriter writer;
    auto copied = copy_stream(reader, writer);
    ASSERT_TRUE(copied);
    EXPECT_EQ(*copied, data.size());
    EXPECT_EQ(writer.bytes(), data);
}

TEST(ReadAll, RefusesMoreThanTheLimit) {
    StringReader reader(std::string(100, 'x'));
    EXPECT_FALSE(read_all(reader, 99));
}

}  // namespace
}  // namespace kiln
