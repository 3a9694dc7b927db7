#include "layers/compression.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr size_t k_input_buffer_size = 128 << 10;
constexpr size_t k_output_buffer_size = 256 << 10;
constexpr int k_default_gzip_level = 6;
constexpr int k_default_zstd_level = 3;

// Refills `buffer` from `inner`; sets `at_end` when the source is exhausted.
Result<size_t> refill(Reader& inner, std::vector<char>& buffer, bool& at_end) {
    KILN_ASSIGN(size_t n, inner.read(buffer.data(), buffer.size()));
    if (n == 0) at_end = true;
    return n;
}

class GzipReader final : public Reader {
public:
    explicit GzipReader(Reader& inner) : m_inner(inner), m_input(k_input_buffer_size) {}
    ~GzipReader() override {
        if (m_initialised) ::inflateEnd(&m_stream);
    }

    Status init() {
        // 16 + 15: a gzip wrapper (not zlib or raw deflate) with the largest window.
        if (::inflateInit2(&m_stream, 16 + MAX_WBITS) != Z_OK) return fail("gzip: cannot initialise zlib");
        m_initialised = true;
        return {};
    }

    Result<size_t> read(char* buffer, size_t size) override {
        if (size == 0) return size_t{0};
        while (true) {
            if (m_stream.avail_in == 0 && !m_at_end) {
                KILN_ASSIGN(size_t n, refill(m_inner, m_input, m_at_end));
                m_stream.next_in = reinterpret_cast<Bytef*>(m_input.data());
                m_stream.avail_in = static_cast<uInt>(n);
            }
            if (m_member_done) {
                if (m_stream.avail_in == 0 && m_at_end) return size_t{0};
                // Another member follows: a concatenated gzip stream.
                if (::inflateReset(&m_stream) != Z_OK) return fail("gzip: cannot reset zlib");
                m_member_done = false;
            }
            if (m_stream.avail_in == 0 && m_at_end) return fail("gzip: unexpected end of compressed data");
            m_stream.next_out = reinterpret_cast<Bytef*>(buffer);
            m_stream.avail_out = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
            uInt available = m_stream.avail_out;
            int ret = ::inflate(&m_stream, Z_NO_FLUSH);
            size_t produced = available - m_stream.avail_out;
            if (ret == Z_STREAM_END) {
                m_member_done = true;
            } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
                return fail(str_cat("gzip: corrupt data: ", m_stream.msg ? m_stream.msg : "inflate failed"));
            }
            if (produced > 0) return produced;
        }
    }

private:
    Reader& m_inner;
    std::vector<char> m_input;
    z_stream m_stream{};
    bool m_initialised = false;
    bool m_at_end = false;
    bool m_member_done = false;
};

struct ZstdDctxDeleter {
    void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

class ZstdReader final : public Reader {
public:
    explicit ZstdReader(Reader& inner) : m_inner(inner), m_input(ZSTD_DStreamInSize()) {}

    Status init() {
        m_ctx.reset(ZSTD_createDCtx());
        if (!m_ctx) return fail("zstd: cannot create a decompression context");
        return {};
    }

    Result<size_t> read(char* buffer, size_t size) override {
        if (size == 0) return size_t{0};
        while (true) {
            if (m_in.pos == m_in.size && !m_at_end) {
                KILN_ASSIGN(size_t n, refill(m_inner, m_input, m_at_end));
                m_in = ZSTD_inBuffer{m_input.data(), n, 0};
            }
            ZSTD_outBuffer out{buffer, size, 0};
            bool input_exhausted = m_in.pos == m_in.size && m_at_end;
            if (input_exhausted && m_frame_done) return size_t{0};
            size_t ret = ZSTD_decompressStream(m_ctx.get(), &out, &m_in);
            if (ZSTD_isError(ret)) return fail(str_cat("zstd: corrupt data: ", ZSTD_getErrorName(ret)));
            // 0 means a frame was completely decoded and flushed; another may follow.
            m_frame_done = ret == 0;
            if (out.pos > 0) return out.pos;
            if (input_exhausted && !m_frame_done) return fail("zstd: unexpected end of compressed data");
        }
    }

private:
    Reader& m_inner;
    std::vector<char> m_input;
    std::unique_ptr<ZSTD_DCtx, ZstdDctxDeleter> m_ctx;
    ZSTD_inBuffer m_in{nullptr, 0, 0};
    bool m_at_end = false;
    // An empty input is not a zstd stream: start as "inside a frame".
    bool m_frame_done = false;
};

// Passes bytes through unchanged (an uncompressed layer).
class PassthroughReader final : public Reader {
public:
    explicit PassthroughReader(Reader& inner) : m_inner(inner) {}
    Result<size_t> read(char* buffer, size_t size) override { return m_inner.read(buffer, size); }

private:
    Reader& m_inner;
};

// Owns a PeekingReader and the decompressor reading from it.
class AutoDecompressReader final : public Reader {
public:
    explicit AutoDecompressReader(Reader& inner) : m_peeking(inner) {}
    Status init() {
        KILN_ASSIGN(Compression compression, m_peeking.detect());
        KILN_ASSIGN(m_decompressor, make_decompressor(m_peeking, compression));
        return {};
    }
    Result<size_t> read(char* buffer, size_t size) override { return m_decompressor->read(buffer, size); }

private:
    PeekingReader m_peeking;
    std::unique_ptr<Reader> m_decompressor;
};

// Collects compressed output and hands it to the inner Writer in large pieces.
class BufferedCompressor : public Compressor {
protected:
    explicit BufferedCompressor(Writer& inner) : m_inner(inner), m_output(k_output_buffer_size) {}
    Status flush_output(size_t used) {
        if (used == 0) return {};
        return m_inner.write(m_output.data(), used);
    }
    Status check_open() const {
        if (m_finished) return fail("compressor: write after finish()");
        return {};
    }
    Writer& m_inner;
    std::vector<char> m_output;
    bool m_finished = false;
};

class GzipCompressor final : public BufferedCompressor {
public:
    explicit GzipCompressor(Writer& inner) : BufferedCompressor(inner) {}
    ~GzipCompressor() override {
        if (m_initialised) ::deflateEnd(&m_stream);
    }

    Status init(int level) {
        if (level < 1 || level > 9)
            return fail(str_cat("gzip: compression level ", level, " is not within 1–9"));
        if (::deflateInit2(&m_stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return fail("gzip: cannot initialise zlib");
        m_initialised = true;
        // Spelled out so the bytes never depend on the platform zlib was built for.
        m_header.time = 0;
        m_header.os = 255;
        if (::deflateSetHeader(&m_stream, &m_header) != Z_OK) return fail("gzip: cannot set the header");
        return {};
    }

    Status write(const char* buffer, size_t size) override {
        KILN_TRY(check_open());
        while (size > 0) {
            uInt chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
            m_stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(buffer));
            m_stream.avail_in = chunk;
            KILN_TRY(run(Z_NO_FLUSH));
            buffer += chunk;
            size -= chunk;
        }
        return {};
    }

    Status finish() override {
        KILN_TRY(check_open());
        m_stream.next_in = nullptr;
        m_stream.avail_in = 0;
        KILN_TRY(run(Z_FINISH));
        KILN_TRY(flush_output(m_output.size() - m_stream.avail_out));
        m_finished = true;
        return {};
    }

private:
    // Deflates the pending input; with Z_FINISH, until the trailer is written. Full buffers go to the writer.
    Status run(int flush) {
        while (true) {
            if (m_stream.next_out == nullptr || m_stream.avail_out == 0) {
                if (m_stream.next_out != nullptr) KILN_TRY(flush_output(m_output.size()));
                m_stream.next_out = reinterpret_cast<Bytef*>(m_output.data());
                m_stream.avail_out = static_cast<uInt>(m_output.size());
            }
            int ret = ::deflate(&m_stream, flush);
            if (ret == Z_STREAM_ERROR) return fail("gzip: deflate failed");
            if (flush == Z_FINISH ? ret == Z_STREAM_END : (m_stream.avail_in == 0 && m_stream.avail_out > 0))
                return {};
        }
    }

    z_stream m_stream{};
    gz_header m_header{};
    bool m_initialised = false;
};

struct ZstdCctxDeleter {
    void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};

class ZstdCompressor final : public BufferedCompressor {
public:
    explicit ZstdCompressor(Writer& inner) : BufferedCompressor(inner) {}

    Status init(int level, int workers) {
        if (level < 1 || level > ZSTD_maxCLevel())
            return fail(str_cat("zstd: compression level ", level, " is not within 1–", ZSTD_maxCLevel()));
        m_ctx.reset(ZSTD_createCCtx());
        if (!m_ctx) return fail("zstd: cannot create a compression context");
        size_t ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_compressionLevel, level);
        if (!ZSTD_isError(ret)) ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_checksumFlag, 1);
        if (!ZSTD_isError(ret) && workers > 0)
            ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_nbWorkers, workers);
        if (ZSTD_isError(ret)) return fail(str_cat("zstd: ", ZSTD_getErrorName(ret)));
        return {};
    }

    Status write(const char* buffer, size_t size) override {
        KILN_TRY(check_open());
        ZSTD_inBuffer in{buffer, size, 0};
        while (in.pos < in.size) KILN_TRY(run(in, ZSTD_e_continue));
        return {};
    }

    Status finish() override {
        KILN_TRY(check_open());
        ZSTD_inBuffer in{nullptr, 0, 0};
        size_t remaining = 1;
        while (remaining != 0) {
            KILN_ASSIGN(remaining, run(in, ZSTD_e_end));
        }
        m_finished = true;
        return {};
    }

private:
    // One compression step; output is handed to the writer straight away (the buffer is reused).
    Result<size_t> run(ZSTD_inBuffer& in, ZSTD_EndDirective directive) {
        ZSTD_outBuffer out{m_output.data(), m_output.size(), 0};
        size_t ret = ZSTD_compressStream2(m_ctx.get(), &out, &in, directive);
        if (ZSTD_isError(ret)) return fail(str_cat("zstd: ", ZSTD_getErrorName(ret)));
        KILN_TRY(flush_output(out.pos));
        return ret;
    }

    std::unique_ptr<ZSTD_CCtx, ZstdCctxDeleter> m_ctx;
};

// No compression, but the same large writes to the inner Writer: a tar stream arrives in 512-byte pieces.
class PassthroughCompressor final : public BufferedCompressor {
public:
    explicit PassthroughCompressor(Writer& inner) : BufferedCompressor(inner) {}

    Status write(const char* buffer, size_t size) override {
        KILN_TRY(check_open());
        if (m_used + size > m_output.size()) {
            KILN_TRY(flush_output(std::exchange(m_used, 0)));
            if (size >= m_output.size()) return m_inner.write(buffer, size);
        }
        std::memcpy(m_output.data() + m_used, buffer, size);
        m_used += size;
        return {};
    }

    Status finish() override {
        KILN_TRY(check_open());
        KILN_TRY(flush_output(std::exchange(m_used, 0)));
        m_finished = true;
        return {};
    }

private:
    size_t m_used = 0;
};

}  // namespace

Compression detect_compression(std::string_view first_bytes) {
    if (first_bytes.starts_with(std::string_view("\x1f\x8b\x08", 3))) return Compression::gzip;
    if (first_bytes.starts_with(std::string_view("\x28\xb5\x2f\xfd", 4))) return Compression::zstd;
    return Compression::none;
}

Result<std::string_view> PeekingReader::peek(size_t size) {
    size = std::min(size, k_max_peek);
    if (m_end - m_begin < size && m_begin > 0) {
        std::memmove(m_peeked, m_peeked + m_begin, m_end - m_begin);
        m_end -= m_begin;
        m_begin = 0;
    }
    while (m_end - m_begin < size) {
        KILN_ASSIGN(size_t n, m_inner.read(m_peeked + m_end, size - (m_end - m_begin)));
        if (n == 0) break;
        m_end += n;
    }
    return std::string_view(m_peeked + m_begin, std::min(size, m_end - m_begin));
}

Result<Compression> PeekingReader::detect() {
    KILN_ASSIGN(std::string_view magic, peek(4));
    return detect_compression(magic);
}

Result<size_t> PeekingReader::read(char* buffer, size_t size) {
    if (m_begin < m_end) {
        size_t n = std::min(size, m_end - m_begin);
        std::memcpy(buffer, m_peeked + m_begin, n);
        m_begin += n;
        return n;
    }
    return m_inner.read(buffer, size);
}

Result<std::unique_ptr<Reader>> make_decompressor(Reader& inner, Compression compression) {
    switch (compression) {
        case Compression::gzip: {
            auto reader = std::make_unique<GzipReader>(inner);
            KILN_TRY(reader->init());
            return std::unique_ptr<Reader>(std::move(reader));
        }
        case Compression::zstd: {
            auto reader = std::make_unique<ZstdReader>(inner);
            KILN_TRY(reader->init());
            return std::unique_ptr<Reader>(std::move(reader));
        }
        case Compression::none:
            return std::unique_ptr<Reader>(std::make_unique<PassthroughReader>(inner));
    }
    return fail("unknown compression");
}

Result<std::unique_ptr<Reader>> make_auto_decompressor(Reader& inner) {
    auto reader = std::make_unique<AutoDecompressReader>(inner);
    KILN_TRY(reader->init());
    return std::unique_ptr<Reader>(std::move(reader));
}

Result<std::unique_ptr<Compressor>> make_compressor(Writer& inner, const CompressionOptions& options) {
    switch (options.compression) {
        case Compression::gzip: {
            auto compressor = std::make_unique<GzipCompressor>(inner);
            KILN_TRY(compressor->init(options.level.value_or(k_default_gzip_level)));
            return std::unique_ptr<Compressor>(std::move(compressor));
        }
        case Compression::zstd: {
            auto compressor = std::make_unique<ZstdCompressor>(inner);
            KILN_TRY(compressor->init(options.level.value_or(k_default_zstd_level), options.zstd_workers));
            return std::unique_ptr<Compressor>(std::move(compressor));
        }
        case Compression::none:
            return std::unique_ptr<Compressor>(std::make_unique<PassthroughCompressor>(inner));
    }
    return fail("unknown compression");
}

}  // namespace kiln
