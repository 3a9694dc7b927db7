// Compares the deflate implementations Debian 12 offers on one input (a rootfs tar): zlib, ISA-L and
// libdeflate, compressing and decompressing, next to kiln's own gzip streams (layers/compression.hpp). This is
// the measurement behind kiln's choice of ISA-L; it is a benchmark, not a test, and ctest never runs it.
//
//   kiln_deflate_bench FILE [RUNS]
//
// Prints one line per case: "<case>\t<MB/s of uncompressed bytes>\t<compressed size>\t<ratio>", the median of
// RUNS runs (default 3). Every decompression is checked against the input; a mismatch exits 1.

#include <isa-l/igzip_lib.h>
#include <zlib.h>
#ifdef KILN_BENCH_LIBDEFLATE
#include <libdeflate.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/files.hpp"
#include "common/stream.hpp"
#include "layers/compression.hpp"

namespace kiln {
namespace {

constexpr size_t k_piece = 1 << 20;

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "kiln_deflate_bench: %s\n", message.c_str());
    std::exit(1);
}

double median_seconds(int runs, const std::function<void()>& body) {
    std::vector<double> times;
    for (int i = 0; i < runs; ++i) {
        auto start = std::chrono::steady_clock::now();
        body();
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

void report(const char* name, size_t input_size, size_t compressed_size, double seconds) {
    std::printf("%s\t%.0f\t%zu\t%.3f\n", name, static_cast<double>(input_size) / seconds / 1e6, compressed_size,
                static_cast<double>(input_size) / static_cast<double>(compressed_size));
    std::fflush(stdout);
}

std::string zlib_compress(const std::string& input, int level) {
    z_stream stream{};
    if (deflateInit2(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("zlib init");
    std::string output;
    std::vector<char> buffer(k_piece);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream.avail_in = static_cast<uInt>(input.size());
    int ret;
    do {
        stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
        stream.avail_out = static_cast<uInt>(buffer.size());
        ret = deflate(&stream, Z_FINISH);
        output.append(buffer.data(), buffer.size() - stream.avail_out);
    } while (ret == Z_OK || ret == Z_BUF_ERROR);
    if (ret != Z_STREAM_END) die("zlib deflate");
    deflateEnd(&stream);
    return output;
}

void zlib_decompress_and_check(const std::string& compressed, const std::string& expected) {
    z_stream stream{};
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) die("zlib init");
    std::vector<char> buffer(k_piece);
    size_t offset = 0;
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    stream.avail_in = static_cast<uInt>(compressed.size());
    int ret;
    do {
        stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
        stream.avail_out = static_cast<uInt>(buffer.size());
        ret = inflate(&stream, Z_NO_FLUSH);
        size_t n = buffer.size() - stream.avail_out;
        if (offset + n > expected.size() || std::memcmp(buffer.data(), expected.data() + offset, n) != 0)
            die("zlib inflate: output differs");
        offset += n;
    } while (ret == Z_OK);
    if (ret != Z_STREAM_END || offset != expected.size()) die("zlib inflate failed");
    inflateEnd(&stream);
}

std::string isal_compress(const std::string& input, int level) {
    isal_zstream stream;
    isal_deflate_init(&stream);
    std::vector<uint8_t> level_buffer(ISAL_DEF_LVL3_DEFAULT);
    stream.level = static_cast<uint32_t>(level);
    stream.level_buf = level_buffer.data();
    stream.level_buf_size = static_cast<uint32_t>(level_buffer.size());
    stream.gzip_flag = IGZIP_GZIP;
    std::string output;
    std::vector<char> buffer(k_piece);
    for (size_t offset = 0; offset < input.size() || stream.internal_state.state != ZSTATE_END;) {
        size_t n = std::min(k_piece, input.size() - offset);
        stream.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(input.data() + offset));
        stream.avail_in = static_cast<uint32_t>(n);
        stream.end_of_stream = offset + n == input.size();
        do {
            stream.next_out = reinterpret_cast<uint8_t*>(buffer.data());
            stream.avail_out = static_cast<uint32_t>(buffer.size());
            if (isal_deflate(&stream) != COMP_OK) die("isal_deflate");
            output.append(buffer.data(), buffer.size() - stream.avail_out);
        } while (stream.avail_in > 0 || stream.avail_out == 0 ||
                 (stream.end_of_stream && stream.internal_state.state != ZSTATE_END));
        offset += n;
    }
    return output;
}

void isal_decompress_and_check(const std::string& compressed, const std::string& expected) {
    auto state_memory = std::make_unique<inflate_state>();
    inflate_state* state = state_memory.get();
    isal_inflate_init(state);
    state->crc_flag = ISAL_GZIP;
    state->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(compressed.data()));
    state->avail_in = static_cast<uint32_t>(compressed.size());
    std::vector<char> buffer(k_piece);
    size_t offset = 0;
    while (state->block_state != ISAL_BLOCK_FINISH) {
        state->next_out = reinterpret_cast<uint8_t*>(buffer.data());
        state->avail_out = static_cast<uint32_t>(buffer.size());
        if (isal_inflate(state) < 0) die("isal_inflate");
        size_t n = buffer.size() - state->avail_out;
        if (n == 0 && state->block_state != ISAL_BLOCK_FINISH) die("isal_inflate: no progress");
        if (offset + n > expected.size() || std::memcmp(buffer.data(), expected.data() + offset, n) != 0)
            die("isal_inflate: output differs");
        offset += n;
    }
    if (offset != expected.size()) die("isal_inflate: short output");
}

#ifdef KILN_BENCH_LIBDEFLATE
std::string libdeflate_compress(const std::string& input, int level) {
    libdeflate_compressor* compressor = libdeflate_alloc_compressor(level);
    std::string output(libdeflate_gzip_compress_bound(compressor, input.size()), '\0');
    size_t n = libdeflate_gzip_compress(compressor, input.data(), input.size(), output.data(), output.size());
    libdeflate_free_compressor(compressor);
    if (n == 0) die("libdeflate compress");
    output.resize(n);
    return output;
}

void libdeflate_decompress_and_check(const std::string& compressed, const std::string& expected) {
    libdeflate_decompressor* decompressor = libdeflate_alloc_decompressor();
    std::string output(expected.size(), '\0');
    size_t actual = 0;
    auto ret = libdeflate_gzip_decompress(decompressor, compressed.data(), compressed.size(), output.data(),
                                          output.size(), &actual);
    libdeflate_free_decompressor(decompressor);
    if (ret != LIBDEFLATE_SUCCESS || output != expected) die("libdeflate decompress");
}
#endif

// Counts what kiln's compressor writes, keeping nothing.
class CountingWriter final : public Writer {
public:
    using Writer::write;
    Status write(const char*, size_t size) override {
        m_size += size;
        return {};
    }
    size_t size() const { return m_size; }

private:
    size_t m_size = 0;
};

size_t kiln_compress(const std::string& input, Compression compression, int level) {
    CountingWriter sink;
    auto compressor = make_compressor(sink, {.compression = compression, .level = level});
    if (!compressor) die(compressor.error().message());
    for (size_t offset = 0; offset < input.size(); offset += 10240)
        if (!(*compressor)->write(input.data() + offset, std::min<size_t>(10240, input.size() - offset)))
            die("kiln compress");
    if (!(*compressor)->finish()) die("kiln compress");
    return sink.size();
}

// Serves a string without copying it first.
class ViewReader final : public Reader {
public:
    explicit ViewReader(const std::string& bytes) : m_bytes(bytes) {}
    Result<size_t> read(char* buffer, size_t size) override {
        size_t n = std::min(size, m_bytes.size() - m_offset);
        std::memcpy(buffer, m_bytes.data() + m_offset, n);
        m_offset += n;
        return n;
    }

private:
    const std::string& m_bytes;
    size_t m_offset = 0;
};

void kiln_decompress_and_check(const std::string& compressed, const std::string& expected) {
    ViewReader source(compressed);
    auto reader = make_auto_decompressor(source);
    if (!reader) die(reader.error().message());
    std::vector<char> buffer(1 << 16);
    size_t offset = 0;
    while (true) {
        auto n = (*reader)->read(buffer.data(), buffer.size());
        if (!n) die(n.error().message());
        if (*n == 0) break;
        if (offset + *n > expected.size() || std::memcmp(buffer.data(), expected.data() + offset, *n) != 0)
            die("kiln decompress: output differs");
        offset += *n;
    }
    if (offset != expected.size()) die("kiln decompress: short output");
}

int run(int argc, char** argv) {
    if (argc < 2) die("usage: kiln_deflate_bench FILE [RUNS]");
    int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
    auto input_or = read_file(argv[1], size_t{4} << 30);
    if (!input_or) die(input_or.error().message());
    const std::string input = std::move(*input_or);
    std::string compressed;
    double seconds = 0;

    std::printf("# compression\n");
    seconds = median_seconds(runs, [&] { compressed = zlib_compress(input, 1); });
    report("zlib -1", input.size(), compressed.size(), seconds);
    const std::string zlib_output = compressed;
    for (int level : {0, 1, 2, 3}) {
        seconds = median_seconds(runs, [&] { compressed = isal_compress(input, level); });
        std::string name = "isa-l -" + std::to_string(level);
        report(name.c_str(), input.size(), compressed.size(), seconds);
    }
    const std::string isal_output = isal_compress(input, 1);
#ifdef KILN_BENCH_LIBDEFLATE
    for (int level : {1, 6}) {
        seconds = median_seconds(runs, [&] { compressed = libdeflate_compress(input, level); });
        std::string name = "libdeflate -" + std::to_string(level) + " (whole buffer)";
        report(name.c_str(), input.size(), compressed.size(), seconds);
    }
#endif
    for (int level : {1, 6, 9}) {
        size_t size = 0;
        seconds = median_seconds(runs, [&] { size = kiln_compress(input, Compression::gzip, level); });
        std::string name = "kiln gzip --compression-level " + std::to_string(level);
        report(name.c_str(), input.size(), size, seconds);
    }
    {
        size_t size = 0;
        seconds = median_seconds(runs, [&] { size = kiln_compress(input, Compression::zstd, 3); });
        report("kiln zstd -3", input.size(), size, seconds);
    }

    std::printf("# decompression of isa-l -1's output\n");
    seconds = median_seconds(runs, [&] { zlib_decompress_and_check(isal_output, input); });
    report("zlib inflate", input.size(), isal_output.size(), seconds);
    seconds = median_seconds(runs, [&] { isal_decompress_and_check(isal_output, input); });
    report("isa-l inflate", input.size(), isal_output.size(), seconds);
#ifdef KILN_BENCH_LIBDEFLATE
    seconds = median_seconds(runs, [&] { libdeflate_decompress_and_check(isal_output, input); });
    report("libdeflate (whole buffer)", input.size(), isal_output.size(), seconds);
#endif
    seconds = median_seconds(runs, [&] { kiln_decompress_and_check(isal_output, input); });
    report("kiln gzip reader", input.size(), isal_output.size(), seconds);
    // zlib's own output too: kiln must read what other tools write.
    kiln_decompress_and_check(zlib_output, input);
    return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::run(argc, argv); }
