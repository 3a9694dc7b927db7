#include "layers/compression.hpp"

// Writing compressed layers: gzip (ISA-L's igzip, or zlib for portable output), zstd or none, in fixed chunks on
// a worker thread; and reading ahead. Reading compressed layers is decompression.cpp's.
// gzip is ISA-L's igzip (Debian's libisal): it compressed a 204 MB Debian rootfs tar about 10× faster than
// zlib -1 at the same ratio (tests/bench/deflate_libraries_bench.cpp).
#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr size_t k_output_buffer_size = 256 << 10;
// Codecs are fed this much at a time, so that their output depends on the bytes alone.
constexpr size_t k_chunk_size = 1 << 20;
// Chunks in flight between the producing thread and a worker: one being filled, the others queued or in work.
constexpr size_t k_pipeline_chunks = 3;
constexpr int k_default_gzip_level = 1;
constexpr int k_default_zstd_level = 3;
constexpr int k_max_zstd_workers = 4;
// zstd's job size, fixed rather than derived from the level: its workers buffer a few jobs each, so this keeps a
// layer's peak memory low (a 2 GB file stays far under 100 MB) whatever the level. The output depends on it,
// never on the worker count.
constexpr int k_zstd_job_size = 2 << 20;


// One compression format, fed whole chunks of k_chunk_size bytes (the last may be shorter or empty), writing
// its output to the inner Writer.
class Codec {
public:
    explicit Codec(Writer& inner) : m_inner(inner), m_output(k_output_buffer_size) {}
    virtual ~Codec() = default;
    // Compresses `size` bytes; `last` ends the stream after them.
    virtual Status compress(const char* data, size_t size, bool last) = 0;

protected:
    Status flush_output(size_t used) {
        if (used == 0) return {};
        return m_inner.write(m_output.data(), used);
    }
    Writer& m_inner;
    Buffer m_output;
};

class GzipCodec final : public Codec {
public:
    // isal_deflate_init sets what the stream needs; its buffers are ISA-L's to fill.
    explicit GzipCodec(Writer& inner) : Codec(inner), m_stream(std::make_unique_for_overwrite<isal_zstream>()) {}

    Status init(int level) {
        if (level < 1 || level > 9) return fail(str_cat("gzip: compression level ", level, " is not within 1–9"));
        ::isal_deflate_init(m_stream.get());
        // See CompressionOptions::level.
        int isal_level = level <= 3 ? 1 : level <= 6 ? 2 : 3;
        size_t level_buffer_size = isal_level == 1   ? ISAL_DEF_LVL1_DEFAULT
                                   : isal_level == 2 ? ISAL_DEF_LVL2_DEFAULT
                                                     : ISAL_DEF_LVL3_DEFAULT;
        m_level_buffer = Buffer(level_buffer_size);
        m_stream->level = static_cast<uint32_t>(isal_level);
        m_stream->level_buf = reinterpret_cast<uint8_t*>(m_level_buffer.data());
        m_stream->level_buf_size = static_cast<uint32_t>(m_level_buffer.size());
        // ISA-L writes the trailer; the header is written here so that every byte of it is spelled out.
        m_stream->gzip_flag = IGZIP_GZIP_NO_HDR;
        // Magic, deflate, no flags, mtime 0, no extra flags, OS unknown (255).
        static constexpr char k_header[10] = {'\x1f', '\x8b', '\x08', 0, 0, 0, 0, 0, 0, '\xff'};
        return m_inner.write(k_header, sizeof k_header);
    }

    Status compress(const char* data, size_t size, bool last) override {
        m_stream->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data));
        m_stream->avail_in = static_cast<uint32_t>(size);
        m_stream->end_of_stream = last ? 1 : 0;
        m_stream->flush = NO_FLUSH;
        while (true) {
            m_stream->next_out = reinterpret_cast<uint8_t*>(m_output.data());
            m_stream->avail_out = static_cast<uint32_t>(m_output.size());
            int ret = ::isal_deflate(m_stream.get());
            if (ret != COMP_OK) return fail(str_cat("gzip: deflate failed (ISA-L error ", ret, ")"));
            KILN_TRY(flush_output(m_output.size() - m_stream->avail_out));
            bool done = last ? m_stream->internal_state.state == ZSTATE_END
                             : m_stream->avail_in == 0 && m_stream->avail_out > 0;
            if (done) return {};
        }
    }

private:
    // About 300 KiB of state: on the heap.
    std::unique_ptr<isal_zstream> m_stream;
    Buffer m_level_buffer;
};

// gzip through zlib, for CompressionOptions::portable. zlib is plain C, so its output is the same on every CPU
// and architecture; ISA-L's is not (x86-64 with and without SSE4.2 and arm64 each give other bytes). zlib
// writes raw deflate here; the header is GzipCodec's and the trailer is written by hand.
class PortableGzipCodec final : public Codec {
public:
    explicit PortableGzipCodec(Writer& inner) : Codec(inner) {}
    ~PortableGzipCodec() override {
        if (m_initialized) ::deflateEnd(&m_stream);
    }

    Status init(int level) {
        if (level < 1 || level > 9) return fail(str_cat("gzip: compression level ", level, " is not within 1–9"));
        // Raw deflate (negative window bits), the default window and memory level.
        if (::deflateInit2(&m_stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return fail("gzip: cannot initialise zlib");
        m_initialized = true;
        static constexpr char k_header[10] = {'\x1f', '\x8b', '\x08', 0, 0, 0, 0, 0, 0, '\xff'};
        return m_inner.write(k_header, sizeof k_header);
    }

    Status compress(const char* data, size_t size, bool last) override {
        m_crc = ::crc32_z(m_crc, reinterpret_cast<const Bytef*>(data), size);
        m_size += size;
        m_stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
        m_stream.avail_in = static_cast<uInt>(size);
        while (true) {
            m_stream.next_out = reinterpret_cast<Bytef*>(m_output.data());
            m_stream.avail_out = static_cast<uInt>(m_output.size());
            int ret = ::deflate(&m_stream, last ? Z_FINISH : Z_NO_FLUSH);
            if (ret == Z_STREAM_ERROR) return fail("gzip: deflate failed (zlib)");
            KILN_TRY(flush_output(m_output.size() - m_stream.avail_out));
            if (last ? ret == Z_STREAM_END : m_stream.avail_in == 0 && m_stream.avail_out > 0) break;
        }
        if (!last) return {};
        // CRC-32 and the size modulo 2^32, little-endian.
        char trailer[8];
        for (int i = 0; i < 4; ++i) {
            trailer[i] = static_cast<char>((m_crc >> (8 * i)) & 0xff);
            trailer[4 + i] = static_cast<char>((m_size >> (8 * i)) & 0xff);
        }
        return m_inner.write(trailer, sizeof trailer);
    }

private:
    z_stream m_stream{};
    bool m_initialized = false;
    uLong m_crc = ::crc32(0, nullptr, 0);
    std::uint64_t m_size = 0;
};

struct ZstdCctxDeleter {
    void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};

class ZstdCodec final : public Codec {
public:
    explicit ZstdCodec(Writer& inner) : Codec(inner) {}

    Status init(int level, int workers) {
        if (level < 1 || level > ZSTD_maxCLevel())
            return fail(str_cat("zstd: compression level ", level, " is not within 1–", ZSTD_maxCLevel()));
        if (workers <= 0) {
            unsigned cores = std::thread::hardware_concurrency();
            workers = std::clamp(static_cast<int>(cores), 1, k_max_zstd_workers);
        }
        m_ctx.reset(ZSTD_createCCtx());
        if (!m_ctx) return fail("zstd: cannot create a compression context");
        size_t ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_compressionLevel, level);
        if (!ZSTD_isError(ret)) ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_checksumFlag, 1);
        if (!ZSTD_isError(ret)) ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_nbWorkers, workers);
        if (!ZSTD_isError(ret)) ret = ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_jobSize, k_zstd_job_size);
        if (ZSTD_isError(ret)) return fail(str_cat("zstd: ", ZSTD_getErrorName(ret)));
        return {};
    }

    Status compress(const char* data, size_t size, bool last) override {
        ZSTD_inBuffer in{data, size, 0};
        // Always stream: a first call with ZSTD_e_end would take zstd's one-shot path instead.
        while (in.pos < in.size) KILN_TRY(run(in, ZSTD_e_continue));
        if (!last) return {};
        size_t remaining = 1;
        while (remaining != 0) {
            KILN_ASSIGN(remaining, run(in, ZSTD_e_end));
        }
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

// No compression: the chunks go to the inner Writer as they are (a tar stream arrives in 512-byte pieces).
class PassthroughCodec final : public Codec {
public:
    explicit PassthroughCodec(Writer& inner) : Codec(inner) {}
    Status compress(const char* data, size_t size, bool) override {
        if (size == 0) return {};
        return m_inner.write(data, size);
    }
};

// Cuts the written bytes into k_chunk_size chunks for a Codec; subclasses decide where the codec runs.
class ChunkingCompressor : public Compressor {
public:
    using Compressor::write;
    Status write(const char* buffer, size_t size) override {
        if (m_finished) return fail("compressor: write after finish()");
        while (size > 0) {
            size_t n = std::min(size, k_chunk_size - m_used);
            std::memcpy(m_chunk.data() + m_used, buffer, n);
            m_used += n;
            buffer += n;
            size -= n;
            if (m_used == k_chunk_size) {
                KILN_TRY(submit(false));
                m_used = 0;
            }
        }
        return {};
    }

    Status finish() override {
        if (m_finished) return fail("compressor: write after finish()");
        m_finished = true;
        KILN_TRY(submit(true));
        return wait_done();
    }

protected:
    ChunkingCompressor() : m_chunk(k_chunk_size) {}
    // Compresses the m_used bytes of m_chunk (which it may swap for another buffer of k_chunk_size bytes).
    virtual Status submit(bool last) = 0;
    // Returns once the codec has seen the last chunk, with its first failure.
    virtual Status wait_done() = 0;

    Buffer m_chunk;
    size_t m_used = 0;

private:
    bool m_finished = false;
};

// Runs the codec on the writing thread.
class InlineCompressor final : public ChunkingCompressor {
public:
    explicit InlineCompressor(std::unique_ptr<Codec> codec) : m_codec(std::move(codec)) {}

private:
    Status submit(bool last) override { return m_codec->compress(m_chunk.data(), m_used, last); }
    Status wait_done() override { return {}; }

    std::unique_ptr<Codec> m_codec;
};

// Runs the codec on a worker thread: the writing thread (tar, diffID hashing) and the codec (compression,
// digest hashing, output) overlap. Two cores then write a gzip layer about as fast as the codec alone runs.
class PipelinedCompressor final : public ChunkingCompressor {
public:
    explicit PipelinedCompressor(std::unique_ptr<Codec> codec) : m_codec(std::move(codec)) {
        for (size_t i = 1; i < k_pipeline_chunks; ++i) m_free.emplace_back(k_chunk_size);
        m_worker = std::thread([this] { work(); });
    }

    ~PipelinedCompressor() override {
        {
            std::lock_guard lock(m_mutex);
            m_abandoned = true;
        }
        m_changed.notify_all();
        if (m_worker.joinable()) m_worker.join();
    }

private:
    struct Job {
        Buffer bytes;
        size_t size = 0;
        bool last = false;
    };

    Status submit(bool last) override {
        std::unique_lock lock(m_mutex);
        m_changed.wait(lock, [&] { return !m_free.empty() || m_error; });
        if (m_error) return fail(*m_error);
        Buffer next = std::move(m_free.back());
        m_free.pop_back();
        m_jobs.push_back(Job{std::exchange(m_chunk, std::move(next)), m_used, last});
        lock.unlock();
        m_changed.notify_all();
        return {};
    }

    Status wait_done() override {
        m_worker.join();
        if (m_error) return fail(*m_error);
        return {};
    }

    void work() {
        while (true) {
            std::unique_lock lock(m_mutex);
            m_changed.wait(lock, [&] { return !m_jobs.empty() || m_abandoned; });
            if (m_abandoned) return;
            Job job = std::move(m_jobs.front());
            m_jobs.pop_front();
            bool failed = m_error.has_value();
            lock.unlock();
            Status status = failed ? Status{} : m_codec->compress(job.bytes.data(), job.size, job.last);
            lock.lock();
            if (!status && !m_error) m_error = std::move(status.error());
            m_free.push_back(std::move(job.bytes));
            lock.unlock();
            m_changed.notify_all();
            if (job.last) return;
        }
    }

    std::unique_ptr<Codec> m_codec;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Job> m_jobs;
    std::vector<Buffer> m_free;
    std::optional<Error> m_error;
    bool m_abandoned = false;
    std::thread m_worker;
};

// Reads the inner Reader ahead on a worker thread, k_chunk_size bytes at a time.
class ReadAheadReader final : public Reader {
public:
    explicit ReadAheadReader(Reader& inner) : m_inner(inner) {
        for (size_t i = 0; i < k_pipeline_chunks; ++i) m_free.emplace_back(k_chunk_size);
        m_worker = std::thread([this] { work(); });
    }

    ~ReadAheadReader() override {
        {
            std::lock_guard lock(m_mutex);
            m_abandoned = true;
        }
        m_changed.notify_all();
        m_worker.join();
    }

    Result<size_t> read(char* buffer, size_t size) override {
        if (size == 0) return size_t{0};
        if (m_offset == m_current.size) {
            std::unique_lock lock(m_mutex);
            if (!m_current.bytes.empty()) m_free.push_back(std::move(m_current.bytes));
            m_current = {};
            m_offset = 0;
            m_changed.notify_all();
            m_changed.wait(lock, [&] { return !m_full.empty() || m_error || m_ended; });
            if (m_full.empty()) {
                if (m_error) return fail(*m_error);
                return size_t{0};
            }
            m_current = std::move(m_full.front());
            m_full.pop_front();
        }
        size_t n = std::min(size, m_current.size - m_offset);
        std::memcpy(buffer, m_current.bytes.data() + m_offset, n);
        m_offset += n;
        return n;
    }

private:
    struct Chunk {
        Buffer bytes;
        size_t size = 0;
    };

    void work() {
        while (true) {
            std::unique_lock lock(m_mutex);
            m_changed.wait(lock, [&] { return !m_free.empty() || m_abandoned; });
            if (m_abandoned) return;
            Chunk chunk{std::move(m_free.back()), 0};
            m_free.pop_back();
            lock.unlock();
            // Fill the chunk, so that the reading side sees large pieces.
            std::optional<Error> error;
            bool ended = false;
            while (chunk.size < chunk.bytes.size()) {
                auto n = m_inner.read(chunk.bytes.data() + chunk.size, chunk.bytes.size() - chunk.size);
                if (!n) {
                    error = std::move(n.error());
                    break;
                }
                if (*n == 0) {
                    ended = true;
                    break;
                }
                chunk.size += *n;
            }
            lock.lock();
            if (chunk.size > 0) m_full.push_back(std::move(chunk));
            m_error = std::move(error);
            m_ended = ended;
            lock.unlock();
            m_changed.notify_all();
            if (m_error || m_ended) return;
        }
    }

    Reader& m_inner;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Chunk> m_full;
    std::vector<Buffer> m_free;
    std::optional<Error> m_error;
    bool m_ended = false;
    bool m_abandoned = false;
    // Owned by the reading side.
    Chunk m_current;
    size_t m_offset = 0;
    std::thread m_worker;
};

}  // namespace


Result<std::unique_ptr<Compressor>> make_compressor(Writer& inner, const CompressionOptions& options) {
    switch (options.compression) {
        case Compression::gzip: {
            if (options.portable) {
                auto codec = std::make_unique<PortableGzipCodec>(inner);
                KILN_TRY(codec->init(options.level.value_or(k_default_gzip_level)));
                return std::unique_ptr<Compressor>(std::make_unique<PipelinedCompressor>(std::move(codec)));
            }
            auto codec = std::make_unique<GzipCodec>(inner);
            KILN_TRY(codec->init(options.level.value_or(k_default_gzip_level)));
            return std::unique_ptr<Compressor>(std::make_unique<PipelinedCompressor>(std::move(codec)));
        }
        case Compression::zstd: {
            // zstd's own workers compress; the writing thread only hands chunks over.
            auto codec = std::make_unique<ZstdCodec>(inner);
            KILN_TRY(codec->init(options.level.value_or(k_default_zstd_level), options.zstd_workers));
            return std::unique_ptr<Compressor>(std::make_unique<InlineCompressor>(std::move(codec)));
        }
        case Compression::none:
            return std::unique_ptr<Compressor>(
                std::make_unique<InlineCompressor>(std::make_unique<PassthroughCodec>(inner)));
    }
    return fail("unknown compression");
}

std::unique_ptr<Reader> make_read_ahead_reader(Reader& inner) { return std::make_unique<ReadAheadReader>(inner); }

}  // namespace kiln
