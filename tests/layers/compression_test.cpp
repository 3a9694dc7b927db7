#include "layers/compression.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <memory>
#include <random>

#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// Serves a string a few bytes at a time, as a network stream would.
class ChunkReader final : public Reader {
public:
    ChunkReader(std::string bytes, size_t chunk) : m_bytes(std::move(bytes)), m_chunk(chunk) {}
    Result<size_t> read(char* buffer, size_t size) override {
        size_t n = std::min({size, m_chunk, m_bytes.size() - m_offset});
        std::memcpy(buffer, m_bytes.data() + m_offset, n);
        m_offset += n;
        return n;
    }

private:
    std::string m_bytes;
    size_t m_chunk;
    size_t m_offset = 0;
};

// Compressible but not trivial: words from a small vocabulary in pseudo-random order.
std::string sample_text(size_t size) {
    static const char* words[] = {"layer ", "tar ", "kiln ", "digest ", "sha256 ", "rootfs\n", "whiteout "};
    std::mt19937 random(42);
    std::string text;
    while (text.size() < size) text += words[random() % 7];
    text.resize(size);
    return text;
}

Result<std::string> compress(const std::string& input, CompressionOptions options) {
    StringWriter sink;
    KILN_ASSIGN(auto compressor, make_compressor(sink, options));
    // Odd-sized writes exercise the buffering.
    for (size_t offset = 0; offset < input.size(); offset += 7777)
        KILN_TRY(compressor->write(input.data() + offset, std::min<size_t>(7777, input.size() - offset)));
    KILN_TRY(compressor->finish());
    return sink.take();
}

Result<std::string> decompress(const std::string& input, Compression compression, size_t chunk = 1 << 16) {
    ChunkReader source(input, chunk);
    KILN_ASSIGN(auto reader, make_decompressor(source, compression));
    return read_all(*reader, 64 << 20);
}

TEST(DetectCompression, RecognisesMagicBytes) {
    EXPECT_EQ(detect_compression(std::string("\x1f\x8b\x08\x00", 4)), Compression::gzip);
    EXPECT_EQ(detect_compression("\x28\xb5\x2f\xfd rest"), Compression::zstd);
    EXPECT_EQ(detect_compression("ustar"), Compression::none);
    EXPECT_EQ(detect_compression("\x1f"), Compression::none);
    EXPECT_EQ(detect_compression(""), Compression::none);
}

TEST(PeekingReader, ReplaysPeekedBytesBeforeTheRest) {
    ChunkReader source("\x28\xb5\x2f\xfd and more", 1);
    PeekingReader reader(source);
    auto compression = reader.detect();
    ASSERT_TRUE(compression) << compression.error().message();
    EXPECT_EQ(*compression, Compression::zstd);
    auto all = read_all(reader, 1024);
    ASSERT_TRUE(all);
    EXPECT_EQ(*all, "\x28\xb5\x2f\xfd and more");
}

TEST(PeekingReader, ShortStreamIsNotCompressed) {
    ChunkReader source("ab", 1);
    PeekingReader reader(source);
    EXPECT_EQ(*reader.detect(), Compression::none);
    EXPECT_EQ(*read_all(reader, 10), "ab");
}

class RoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(RoundTrip, DecompressingGivesBackTheInput) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{100'000}, size_t{3'000'000}}) {
        std::string input = sample_text(size);
        auto compressed = compress(input, {.compression = GetParam()});
        ASSERT_TRUE(compressed) << compressed.error().message();
        auto output = decompress(*compressed, GetParam(), 1000);
        ASSERT_TRUE(output) << output.error().message();
        EXPECT_EQ(output->size(), input.size());
        EXPECT_TRUE(*output == input) << "size " << size;
    }
}

TEST_P(RoundTrip, AutoDecompressorDetectsTheFormat) {
    std::string input = sample_text(50'000);
    auto compressed = compress(input, {.compression = GetParam()});
    ASSERT_TRUE(compressed);
    ChunkReader source(*compressed, 3);
    auto reader = make_auto_decompressor(source);
    ASSERT_TRUE(reader) << reader.error().message();
    auto output = read_all(**reader, 1 << 20);
    ASSERT_TRUE(output) << output.error().message();
    EXPECT_TRUE(*output == input);
}

TEST_P(RoundTrip, SameInputGivesSameBytes) {
    std::string input = sample_text(200'000);
    EXPECT_EQ(*compress(input, {.compression = GetParam()}), *compress(input, {.compression = GetParam()}));
}

// The compressor's buffers are left uninitialised (Buffer): its output must not depend on what they held.
TEST_P(RoundTrip, SameBytesWhateverTheMemoryHeldBefore) {
    std::string input = sample_text(1'500'000);
    auto reference = compress(input, {.compression = GetParam()});
    ASSERT_TRUE(reference) << reference.error().message();
    for (unsigned char fill : {0x00, 0xa5, 0xff}) {
        // Freed blocks of the buffers' sizes, filled: the next allocations of those sizes may reuse them.
        std::vector<std::unique_ptr<char[]>> blocks;
        for (size_t size : {size_t{1} << 20, size_t{1} << 20, size_t{1} << 20, size_t{300} << 10, size_t{256} << 10,
                            size_t{2} << 20}) {
            blocks.push_back(std::make_unique_for_overwrite<char[]>(size));
            std::memset(blocks.back().get(), fill, size);
        }
        blocks.clear();
        auto again = compress(input, {.compression = GetParam()});
        ASSERT_TRUE(again) << again.error().message();
        EXPECT_TRUE(*again == *reference) << "after freeing memory filled with " << int{fill};
    }
}

TEST_P(RoundTrip, SameBytesWhateverTheWriteSizes) {
    // Past one codec chunk (1 MiB), so that chunk boundaries fall inside writes.
    std::string input = sample_text(2'500'000);
    auto reference = compress(input, {.compression = GetParam()});
    ASSERT_TRUE(reference) << reference.error().message();
    for (size_t piece : {size_t{1}, size_t{511}, size_t{65536}, input.size()}) {
        StringWriter sink;
        auto compressor = make_compressor(sink, {.compression = GetParam()});
        ASSERT_TRUE(compressor);
        // One-byte writes only for the start: they are slow and the rest is covered by the other sizes.
        size_t end = piece == 1 ? 300'000 : input.size();
        for (size_t offset = 0; offset < end; offset += piece)
            ASSERT_TRUE((*compressor)->write(input.data() + offset, std::min(piece, end - offset)));
        if (end < input.size()) {
            ASSERT_TRUE((*compressor)->write(input.data() + end, input.size() - end));
        }
        ASSERT_TRUE((*compressor)->finish());
        EXPECT_TRUE(sink.bytes() == *reference) << "writes of " << piece << " bytes";
    }
}

TEST_P(RoundTrip, DestroyedUnfinishedDoesNotHang) {
    StringWriter sink;
    auto compressor = make_compressor(sink, {.compression = GetParam()});
    ASSERT_TRUE(compressor);
    std::string input = sample_text(3'000'000);
    ASSERT_TRUE((*compressor)->write(input));
    compressor->reset();
}

TEST_P(RoundTrip, FailureOfTheInnerWriterIsReported) {
    // Accepts `budget` bytes, then fails every write.
    class FailingWriter final : public Writer {
    public:
        using Writer::write;
        Status write(const char*, size_t size) override {
            if (size > m_budget) return fail("disk full");
            m_budget -= size;
            return {};
        }

    private:
        size_t m_budget = 1000;
    } sink;
    auto compressor = make_compressor(sink, {.compression = GetParam()});
    ASSERT_TRUE(compressor);
    // Incompressible enough that the output passes the budget.
    std::mt19937 random(7);
    std::string input(4'000'000, '\0');
    for (char& c : input) c = static_cast<char>(random());
    Status status = (*compressor)->write(input);
    if (status) status = (*compressor)->finish();
    ASSERT_FALSE(status);
    EXPECT_NE(status.error().message().find("disk full"), std::string::npos) << status.error().message();
}

TEST_P(RoundTrip, WriteAfterFinishFails) {
    StringWriter sink;
    auto compressor = make_compressor(sink, {.compression = GetParam()});
    ASSERT_TRUE(compressor);
    ASSERT_TRUE((*compressor)->finish());
    EXPECT_FALSE((*compressor)->write("late"));
}

INSTANTIATE_TEST_SUITE_P(Compressions, RoundTrip,
                         ::testing::Values(Compression::none, Compression::gzip, Compression::zstd),
                         [](const auto& param_info) {
                             return std::string(compression_name(param_info.param));
                         });

TEST(Gzip, HeaderHasNoTimestampNoNameAndUnknownOs) {
    auto compressed = compress("hello", {.compression = Compression::gzip});
    ASSERT_TRUE(compressed);
    ASSERT_GE(compressed->size(), 10u);
    EXPECT_EQ(compressed->substr(0, 3), std::string("\x1f\x8b\x08", 3));
    EXPECT_EQ((*compressed)[3], '\0') << "no FNAME/FEXTRA/FCOMMENT flags";
    EXPECT_EQ(compressed->substr(4, 4), std::string(4, '\0')) << "mtime must be 0";
    EXPECT_EQ(static_cast<unsigned char>((*compressed)[9]), 255u);
}

TEST(Gzip, LevelIsConfigurableAndValidated) {
    std::string input = sample_text(1'000'000);
    auto fast = compress(input, {.compression = Compression::gzip, .level = 1});
    auto best = compress(input, {.compression = Compression::gzip, .level = 9});
    ASSERT_TRUE(fast && best);
    EXPECT_LT(best->size(), fast->size());
    StringWriter sink;
    EXPECT_FALSE(make_compressor(sink, {.compression = Compression::gzip, .level = 0}));
    EXPECT_FALSE(make_compressor(sink, {.compression = Compression::zstd, .level = 99}));
}

TEST(Gzip, ConcatenatedMembersDecodeAsOneStream) {
    auto first = compress("first part, ", {.compression = Compression::gzip});
    auto second = compress("second part", {.compression = Compression::gzip});
    auto output = decompress(*first + *second, Compression::gzip, 5);
    ASSERT_TRUE(output) << output.error().message();
    EXPECT_EQ(*output, "first part, second part");
}

TEST(Gzip, TruncatedStreamIsAnError) {
    auto compressed = compress(sample_text(100'000), {.compression = Compression::gzip});
    auto output = decompress(compressed->substr(0, compressed->size() - 10), Compression::gzip);
    ASSERT_FALSE(output);
    EXPECT_NE(output.error().message().find("gzip"), std::string::npos);
}

TEST(Gzip, GarbageAfterTheLastMemberIsAnError) {
    auto compressed = compress("data", {.compression = Compression::gzip});
    EXPECT_FALSE(decompress(*compressed + "garbage!", Compression::gzip));
}

TEST(Gzip, EmptyInputIsAnError) {
    EXPECT_FALSE(decompress("", Compression::gzip));
}

TEST(Zstd, TruncatedStreamIsAnError) {
    auto compressed = compress(sample_text(100'000), {.compression = Compression::zstd});
    EXPECT_FALSE(decompress(compressed->substr(0, compressed->size() - 10), Compression::zstd));
    EXPECT_FALSE(decompress("", Compression::zstd));
}

TEST(Zstd, ConcatenatedFramesDecodeAsOneStream) {
    auto first = compress("one ", {.compression = Compression::zstd});
    auto second = compress("two", {.compression = Compression::zstd});
    EXPECT_EQ(*decompress(*first + *second, Compression::zstd, 2), "one two");
}

TEST(Zstd, OutputIsTheSameForAnyWorkerCount) {
    // 20 MB spans several of zstd's jobs at level 3, so the workers really split the input.
    for (size_t size : {size_t{0}, size_t{100}, size_t{3'000'000}, size_t{20'000'000}}) {
        std::string input = sample_text(size);
        auto one = compress(input, {.compression = Compression::zstd, .zstd_workers = 1});
        auto two = compress(input, {.compression = Compression::zstd, .zstd_workers = 2});
        auto three = compress(input, {.compression = Compression::zstd, .zstd_workers = 3});
        auto automatic = compress(input, {.compression = Compression::zstd});
        ASSERT_TRUE(one && two && three && automatic);
        EXPECT_TRUE(*one == *two) << "size " << size;
        EXPECT_TRUE(*one == *three) << "size " << size;
        EXPECT_TRUE(*one == *automatic) << "size " << size;
    }
}

TEST(Zstd, WorkersProduceAValidStream) {
    std::string input = sample_text(2'000'000);
    auto compressed = compress(input, {.compression = Compression::zstd, .zstd_workers = 2});
    ASSERT_TRUE(compressed) << compressed.error().message();
    EXPECT_TRUE(*decompress(*compressed, Compression::zstd) == input);
}

TEST(Gzip, EveryLevelRoundTrips) {
    std::string input = sample_text(1'500'000);
    for (int level = 1; level <= 9; ++level) {
        auto compressed = compress(input, {.compression = Compression::gzip, .level = level});
        ASSERT_TRUE(compressed) << compressed.error().message();
        auto output = decompress(*compressed, Compression::gzip, 4096);
        ASSERT_TRUE(output) << "level " << level << ": " << output.error().message();
        EXPECT_TRUE(*output == input) << "level " << level;
    }
}

TEST(Gzip, CorruptChecksumIsAnError) {
    auto compressed = compress(sample_text(10'000), {.compression = Compression::gzip});
    ASSERT_TRUE(compressed);
    // The trailer is CRC-32 then ISIZE; flip a bit of the CRC.
    (*compressed)[compressed->size() - 8] ^= 1;
    auto output = decompress(*compressed, Compression::gzip);
    ASSERT_FALSE(output);
    EXPECT_NE(output.error().message().find("gzip"), std::string::npos);
}

TEST(ReadAhead, YieldsTheInnerStreamUnchanged) {
    std::string input = sample_text(5'000'000);
    ChunkReader source(input, 1000);
    auto reader = make_read_ahead_reader(source);
    auto output = read_all(*reader, 8 << 20);
    ASSERT_TRUE(output) << output.error().message();
    EXPECT_TRUE(*output == input);
    // End of stream stays the end.
    char byte;
    EXPECT_EQ(*reader->read(&byte, 1), 0u);
}

TEST(ReadAhead, ReportsTheInnerFailureAfterTheBytesBeforeIt) {
    class FailingReader final : public Reader {
    public:
        Result<size_t> read(char* buffer, size_t size) override {
            if (m_served == 3'000'000) return fail("connection reset");
            size_t n = std::min<size_t>(size, 3'000'000 - m_served);
            std::memset(buffer, 'x', n);
            m_served += n;
            return n;
        }

    private:
        size_t m_served = 0;
    } source;
    auto reader = make_read_ahead_reader(source);
    std::vector<char> buffer(1 << 16);
    size_t total = 0;
    Result<size_t> n = size_t{0};
    while ((n = reader->read(buffer.data(), buffer.size())) && *n > 0) total += *n;
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().message(), "connection reset");
    EXPECT_EQ(total, 3'000'000u);
}

TEST(ReadAhead, DestroyedBeforeTheEndDoesNotHang) {
    ChunkReader source(sample_text(20'000'000), 1 << 16);
    auto reader = make_read_ahead_reader(source);
    char buffer[100];
    ASSERT_TRUE(reader->read(buffer, sizeof buffer));
    reader.reset();
}

// Raw deflate of `input` by the system zlib at `level`, as a reference independent of kiln's codec.
std::string zlib_raw_deflate(const std::string& input, int level) {
    z_stream stream{};
    EXPECT_EQ(::deflateInit2(&stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string output(::deflateBound(&stream, input.size()), '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream.avail_in = static_cast<uInt>(input.size());
    stream.next_out = reinterpret_cast<Bytef*>(output.data());
    stream.avail_out = static_cast<uInt>(output.size());
    EXPECT_EQ(::deflate(&stream, Z_FINISH), Z_STREAM_END);
    output.resize(stream.total_out);
    ::deflateEnd(&stream);
    return output;
}

TEST(PortableGzip, IsZlibsDeflateOfTheInputInAGzipMember) {
    // zlib is plain C: its bytes are the same on every CPU, which is what --reproducible needs.
    std::string input = sample_text(2'500'000);
    for (int level : {1, 6}) {
        auto compressed = compress(input, {.compression = Compression::gzip, .level = level, .portable = true});
        ASSERT_TRUE(compressed) << compressed.error().message();
        ASSERT_GT(compressed->size(), 18u);
        EXPECT_EQ(compressed->substr(0, 10), std::string("\x1f\x8b\x08\0\0\0\0\0\0\xff", 10));
        EXPECT_TRUE(compressed->substr(10, compressed->size() - 18) == zlib_raw_deflate(input, level)) << level;
        auto output = decompress(*compressed, Compression::gzip);
        ASSERT_TRUE(output) << output.error().message();
        EXPECT_TRUE(*output == input);
        auto gunzip = run_process({"gzip", "-dc"}, {.stdin_bytes = *compressed});
        ASSERT_TRUE(gunzip && gunzip->exit_code == 0) << "gzip rejects the trailer";
        EXPECT_TRUE(gunzip->stdout_bytes == input);
    }
}

TEST(PortableGzip, SameBytesWhateverTheWriteSizes) {
    std::string input = sample_text(2'500'000);
    CompressionOptions options{.compression = Compression::gzip, .portable = true};
    auto reference = compress(input, options);
    ASSERT_TRUE(reference) << reference.error().message();
    for (size_t piece : {size_t{511}, size_t{65536}}) {
        StringWriter sink;
        auto compressor = make_compressor(sink, options);
        ASSERT_TRUE(compressor);
        for (size_t offset = 0; offset < input.size(); offset += piece)
            ASSERT_TRUE((*compressor)->write(input.data() + offset, std::min(piece, input.size() - offset)));
        ASSERT_TRUE((*compressor)->finish());
        EXPECT_TRUE(sink.bytes() == *reference) << "writes of " << piece << " bytes";
    }
}

// Interoperability with the reference command-line tools, in both directions.
class CommandLineTools : public ::testing::TestWithParam<Compression> {
protected:
    std::string tool() const { return GetParam() == Compression::gzip ? "gzip" : "zstd"; }
};

TEST_P(CommandLineTools, DecodeWhatKilnWrites) {
    std::string input = sample_text(500'000);
    auto compressed = compress(input, {.compression = GetParam()});
    ASSERT_TRUE(compressed);
    auto result = run_process({tool(), "-dc"}, {.stdin_bytes = *compressed});
    ASSERT_TRUE(result) << result.error().message();
    ASSERT_EQ(result->exit_code, 0) << result->stderr_bytes;
    EXPECT_TRUE(result->stdout_bytes == input);
}

TEST_P(CommandLineTools, KilnDecodesWhatTheyWrite) {
    std::string input = sample_text(500'000);
    auto result = run_process({tool(), "-c"}, {.stdin_bytes = input});
    ASSERT_TRUE(result) << result.error().message();
    ASSERT_EQ(result->exit_code, 0) << result->stderr_bytes;
    auto output = decompress(result->stdout_bytes, GetParam());
    ASSERT_TRUE(output) << output.error().message();
    EXPECT_TRUE(*output == input);
}

INSTANTIATE_TEST_SUITE_P(Tools, CommandLineTools, ::testing::Values(Compression::gzip, Compression::zstd),
                         [](const auto& param_info) {
                             return std::string(compression_name(param_info.param));
                         });

}  // namespace
}  // namespace kiln
